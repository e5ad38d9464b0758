// POST /auth/verify on the in-process gateway: a service asks about a key it was given.
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type GatewayHarness } from './support/gateway-harness.js';
import { httpRequest, type SimpleResponse } from './support/http-request.js';

let gw: GatewayHarness | null = null;
afterEach(async () => {
  await gw?.close();
  gw = null;
});

function verify(g: GatewayHarness, body: unknown, headers: Record<string, string> = {}, localAddress?: string): Promise<SimpleResponse> {
  return httpRequest(`${g.url}/auth/verify`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), ...(localAddress ? { localAddress } : {}),
  });
}

async function requests(g: GatewayHarness, route: string, outcome: string): Promise<number> {
  const metric = await g.metrics.requests.get();
  return metric.values.find((v) => v.labels.route === route && v.labels.outcome === outcome)?.value ?? 0;
}

const NOBODY = { keyId: null, workspaceId: null, type: null, environment: null, permissions: [], ratelimit: null };

describe('POST /auth/verify', () => {
  it('answers a valid key with its identity and permissions', async () => {
    const g = gw = await startGateway();
    const key = g.addKey({ id: 'key_v', permissions: ['events.read', 'profiles.*'] });
    const res = await verify(g, { key });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      valid: true, code: 'OK', keyId: 'key_v', workspaceId: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', type: 'workspace', environment: 'live',
      permissions: ['events.read', 'profiles.*'], ratelimit: null,
    });
    expect(res.headers['cache-control']).toBe('no-store');
    expect(JSON.stringify(res.body)).not.toContain(key);
    expect(await requests(g, 'auth-verify', 'OK')).toBe(1);
  });

  it('checks a named permission against the key', async () => {
    const g = gw = await startGateway();
    const key = g.addKey({ permissions: ['events.*'] });
    expect((await verify(g, { key, permission: 'events.create' })).body.valid).toBe(true);
    const denied = await verify(g, { key, permission: 'profiles.read' });
    expect(denied.status).toBe(200);
    expect(denied.body).toMatchObject({ valid: false, code: 'PERMISSION_DENIED', keyId: expect.stringMatching(/^key_/) });
  });

  it('refuses unknown, disabled and expired keys with their codes, and a key from outside its allowlist', async () => {
    const g = gw = await startGateway();
    expect((await verify(g, { key: 'kg_live_000000000000000000000000_000000' })).body).toEqual({ valid: false, code: 'UNAUTHENTICATED', ...NOBODY });
    expect((await verify(g, { key: 'not a key' })).body).toEqual({ valid: false, code: 'UNAUTHENTICATED', ...NOBODY });
    expect((await verify(g, { key: g.addKey({ id: 'key_off', enabled: false }) })).body).toMatchObject({ valid: false, code: 'KEY_DISABLED', keyId: 'key_off' });
    expect((await verify(g, { key: g.addKey({ expiresAt: '2001-01-01T00:00:00.000Z' }) })).body).toMatchObject({ valid: false, code: 'KEY_EXPIRED' });
    expect((await verify(g, { key: g.addKey({ ipAllowlist: ['10.0.0.0/8'] }) })).body).toMatchObject({ valid: false, code: 'IP_NOT_ALLOWED' });
    expect(await requests(g, 'auth-verify', 'KEY_DISABLED')).toBe(1);
  });

  it('reads the client IP from X-Forwarded-For only when the caller is a trusted proxy', async () => {
    const g = gw = await startGateway({ trustedProxies: ['127.0.0.5/32'] });
    const key = g.addKey({ ipAllowlist: ['10.0.0.0/8'] });
    expect((await verify(g, { key }, { 'x-forwarded-for': '10.9.9.9' }, '127.0.0.5')).body.code).toBe('OK');
    expect((await verify(g, { key }, { 'x-forwarded-for': '10.9.9.9' }, '127.0.0.6')).body.code).toBe('IP_NOT_ALLOWED');
  });

  it('verifies a minted token as the key it speaks for', async () => {
    const g = gw = await startGateway();
    const key = g.addKey({ id: 'key_tok', permissions: ['events.read'] });
    const { token } = await (await fetch(`${g.url}/auth/token`, { method: 'POST', headers: { 'x-api-key': key } })).json() as { token: string };
    expect((await verify(g, { key: token, permission: 'events.read' })).body).toMatchObject({ valid: true, keyId: 'key_tok' });
    const forged = `${token.slice(0, -4)}AAAA`;
    expect((await verify(g, { key: forged })).body).toMatchObject({ valid: false, code: 'TOKEN_INVALID' });
  });

  it('counts against the key\'s rate limit: the budget in the answer, and RATE_LIMITED past it', async () => {
    const g = gw = await startGateway();
    const key = g.addKey({ id: 'key_lim', rateLimit: { limit: 2, windowSeconds: 60 } });
    const first = await verify(g, { key });
    expect(first.body.ratelimit).toMatchObject({ limit: 2, remaining: 1 });
    expect(first.headers['ratelimit-remaining']).toBe('1');
    expect((await httpRequest(`${g.url}/v1/events`, { headers: { 'x-api-key': key } })).status).toBe(200);
    const limited = await verify(g, { key });
    expect(limited.status).toBe(200);
    expect(limited.body).toMatchObject({ valid: false, code: 'RATE_LIMITED', keyId: 'key_lim', ratelimit: { limit: 2, remaining: 0 } });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('takes the key from the body only: a credential header on the verify request is not the key verified', async () => {
    const g = gw = await startGateway();
    const key = g.addKey({ id: 'key_body' });
    const res = await verify(g, { key }, { 'x-api-key': g.addKey({ id: 'key_header' }) });
    expect(res.body).toMatchObject({ valid: true, keyId: 'key_body' });
  });

  it('refuses a malformed verify request with an error naming the problem', async () => {
    const g = gw = await startGateway();
    const get = await httpRequest(`${g.url}/auth/verify`);
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const text = await httpRequest(`${g.url}/auth/verify`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(text.status).toBe(415);
    expect((await verify(g, '{"key":')).body.error.code).toBe('INVALID_BODY');
    const missing = await verify(g, {});
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('key');
    const badPermission = await verify(g, { key: 'x', permission: 'not a permission' });
    expect(badPermission.body.error.message).toContain('permission: must be a permission name');
    const unknown = await verify(g, { key: 'x', extra: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('extra');
    const big = await verify(g, { key: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
  });
});
