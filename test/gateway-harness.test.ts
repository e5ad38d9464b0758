import { afterEach, describe, expect, it } from 'vitest';
import type { FinalHandler } from '../src/data-plane/pipeline/context.js';
import { startGateway, type GatewayHarness } from './support/gateway-harness.js';

let gw: GatewayHarness | null = null;
afterEach(async () => {
  await gw?.close();
  gw = null;
});

async function mint(g: GatewayHarness, secret: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${g.url}/auth/token`, { method: 'POST', headers: { 'x-api-key': secret }, ...init });
}

/** The value of keygate_requests_total for a route and outcome (0 when never counted). */
async function requests(g: GatewayHarness, route: string, outcome: string): Promise<number> {
  const metric = await g.metrics.requests.get();
  return metric.values.find((v) => v.labels.route === route && v.labels.outcome === outcome)?.value ?? 0;
}

describe('in-process gateway: the token route runs the stages of every request', () => {
  it('mints for an active key, and the token is admitted on a route and forwarded with its identity', async () => {
    gw = await startGateway();
    const secret = gw.addKey({ id: 'key_ok' });
    const res = await mint(gw, secret);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { token, tokenType } = await res.json() as { token: string; tokenType: string };
    expect(tokenType).toBe('Bearer');
    const fwd = await fetch(`${gw.url}/v1/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(fwd.status).toBe(200);
    expect(gw.upstreamRequests.at(-1)?.headers['x-keygate-key-id']).toBe('key_ok');
    expect(await requests(gw, 'auth-token', 'OK')).toBe(1);
  });

  it('refuses a disabled key with KEY_DISABLED (the key-status stage), counted under the route', async () => {
    gw = await startGateway();
    const res = await mint(gw, gw.addKey({ enabled: false }));
    expect(res.status).toBe(403);
    expect((await res.json() as { error: { code: string } }).error.code).toBe('KEY_DISABLED');
    expect(await requests(gw, 'auth-token', 'KEY_DISABLED')).toBe(1);
  });

  it('refuses a client outside the key\'s allowlist with IP_NOT_ALLOWED (the IP stage)', async () => {
    gw = await startGateway();
    const res = await mint(gw, gw.addKey({ ipAllowlist: ['10.0.0.0/8'] }));
    expect(res.status).toBe(403);
    expect((await res.json() as { error: { code: string } }).error.code).toBe('IP_NOT_ALLOWED');
  });

  it('answers 405 with Allow on another method, and a token credential is a 400', async () => {
    gw = await startGateway();
    const get = await fetch(`${gw.url}/auth/token`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const token = await mint(gw, 'ignored', { headers: { authorization: 'Bearer a.b.c' } });
    expect(token.status).toBe(400);
    expect((await token.json() as { error: { message: string } }).error.message).toBe('Exchange an API key, not a token.');
  });

  it('counts a mint against the key\'s rate limit', async () => {
    gw = await startGateway();
    const secret = gw.addKey({ rateLimit: { limit: 1, windowSeconds: 60 } });
    expect((await mint(gw, secret)).status).toBe(200);
    const limited = await fetch(`${gw.url}/v1/events`, { headers: { 'x-api-key': secret } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).not.toBeNull();
    expect(gw.upstreamRequests).toHaveLength(0);
  });
});

describe('in-process gateway: routes and final handlers', () => {
  it('takes a HEAD request on the GET route and forwards it as HEAD', async () => {
    gw = await startGateway();
    const res = await fetch(`${gw.url}/v1/events`, { method: 'HEAD', headers: { 'x-api-key': gw.addKey() } });
    expect(res.status).toBe(200);
    expect(gw.upstreamRequests.map((r) => r.method)).toEqual(['HEAD']);
  });

  it('answers with a route\'s own final handler after its stages, accounted like any answer, nothing forwarded', async () => {
    const decide: FinalHandler = (ctx, end) => end.json(ctx, 200, JSON.stringify({ allow: true, keyId: ctx.policy?.keyId }));
    gw = await startGateway({ finals: { 'list-events': decide } });
    const denied = await fetch(`${gw.url}/v1/events`, { headers: { 'x-api-key': gw.addKey({ permissions: ['profiles.read'] }) } });
    expect(denied.status).toBe(403);
    const res = await fetch(`${gw.url}/v1/events`, { headers: { 'x-api-key': gw.addKey({ id: 'key_dec' }) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(await res.json()).toEqual({ allow: true, keyId: 'key_dec' });
    expect(gw.upstreamRequests).toHaveLength(0);
    expect(await requests(gw, 'list-events', 'OK')).toBe(1);
    expect(await requests(gw, 'list-events', 'PERMISSION_DENIED')).toBe(1);
  });

  it('answers an unknown path 404 ROUTE_NOT_FOUND under the unmatched route', async () => {
    gw = await startGateway();
    const res = await fetch(`${gw.url}/nowhere`);
    expect(res.status).toBe(404);
    expect((await res.json() as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');
    expect(await requests(gw, 'unmatched', 'ROUTE_NOT_FOUND')).toBe(1);
  });
});
