// Forward-auth decisions (`/auth/forward`, `/auth/envoy/…`) on the in-process gateway: the
// original request's route and stages, decided instead of forwarded. The real nginx and Caddy
// in front of keygate are in test/forward-auth-proxies.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type GatewayHarness } from './support/gateway-harness.js';
import { httpRequest, type SimpleResponse } from './support/http-request.js';
import { simpleAuthSignature } from './support/tokens.js';

const ROUTES = `
  - { name: list-events, method: GET, path: /v1/events, upstream: events, permission: events.read }
  - { name: send-events, method: POST, path: /v1/events, upstream: events, permission: events.create, events: { field: action } }
  - { name: get-profile, method: GET, path: "/v1/profiles/{profileId}", upstream: events, permission: profiles.read, profileScope: profileId }
  - { name: stats, method: GET, path: /v1/stats, upstream: events, permission: stats.read, keyTypes: [workspace] }
  - { name: put-blob, method: PUT, path: "/v1/blobs/*", upstream: events, permission: blobs.write }
`;

let gw: GatewayHarness | null = null;
afterEach(async () => {
  await gw?.close();
  gw = null;
});

async function start(opts: { trustedProxies?: string[] } = {}): Promise<GatewayHarness> {
  gw = await startGateway({ routes: ROUTES, ...opts });
  return gw;
}

/** nginx auth_request's shape: the original method and URI in X-Original-*. */
function nginxAsks(g: GatewayHarness, method: string, uri: string, headers: Record<string, string> = {}, localAddress?: string): Promise<SimpleResponse> {
  return httpRequest(`${g.url}/auth/forward`, { headers: { 'x-original-method': method, 'x-original-uri': uri, ...headers }, ...(localAddress ? { localAddress } : {}) });
}

async function requests(g: GatewayHarness, route: string, outcome: string): Promise<number> {
  const metric = await g.metrics.requests.get();
  return metric.values.find((v) => v.labels.route === route && v.labels.outcome === outcome)?.value ?? 0;
}

function expectRefusal(res: SimpleResponse, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
  expect(res.headers['cache-control']).toBe('no-store');
  // The error body rides in a header too, for nginx, which never passes a subrequest's body on.
  expect(JSON.parse(res.headers['x-keygate-error'] as string)).toEqual(res.body);
}

describe('/auth/forward: the decision for the original request', () => {
  it('allows a key the route admits: 200 without a body, the identity headers and no-store, and nothing forwarded', async () => {
    const g = await start();
    const secret = g.addKey({ id: 'key_fa', permissions: ['events.read'] });
    const res = await nginxAsks(g, 'GET', '/v1/events?page=2', { 'x-api-key': secret });
    expect(res.status, res.text).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers['x-keygate-key-id']).toBe('key_fa');
    expect(res.headers['x-keygate-workspace-id']).toBe('3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b');
    expect(res.headers['x-keygate-key-type']).toBe('workspace');
    expect(res.headers['x-keygate-environment']).toBe('live');
    expect(res.headers['x-keygate-profile']).toBe('');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-request-id']).toMatch(/.+/);
    expect(res.headers['ratelimit-limit']).toBeUndefined();
    expect(g.upstreamRequests).toEqual([]);
  });

  it('decides on the original method whatever the check request\'s own method is', async () => {
    const g = await start();
    const secret = g.addKey({ permissions: ['blobs.write'] });
    for (const method of ['GET', 'POST', 'HEAD', 'PUT']) {
      const res = await httpRequest(`${g.url}/auth/forward`, { method, headers: { 'x-original-method': 'PUT', 'x-original-uri': '/v1/blobs/a/b.png', 'x-api-key': secret } });
      expect(res.status, `${method}: ${res.text}`).toBe(200);
    }
    expect((await nginxAsks(g, 'GET', '/v1/blobs/a/b.png', { 'x-api-key': secret })).status).toBe(404);
  });

  it('reads ingress-nginx\'s absolute X-Original-URL, and Traefik\'s and Caddy\'s X-Forwarded-Method and -Uri', async () => {
    const g = await start();
    const secret = g.addKey({ permissions: ['events.read'] });
    const ingress = await httpRequest(`${g.url}/auth/forward`, { headers: { 'x-original-method': 'GET', 'x-original-url': 'https://api.example.com/v1/events?x=1', 'x-api-key': secret } });
    expect(ingress.status, ingress.text).toBe(200);
    const traefik = await httpRequest(`${g.url}/auth/forward`, {
      headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/v1/events', 'x-forwarded-host': 'api.example.com', 'x-forwarded-proto': 'https', 'x-api-key': secret },
    });
    expect(traefik.status, traefik.text).toBe(200);
    // X-Original-* win when both came: here they name a route the key may not call.
    const both = await httpRequest(`${g.url}/auth/forward`, {
      headers: { 'x-original-method': 'GET', 'x-original-uri': '/v1/stats', 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/v1/events', 'x-api-key': secret },
    });
    expectRefusal(both, 403, 'PERMISSION_DENIED');
  });

  it('refuses a check request that does not name the original request, naming the header it lacks', async () => {
    const g = await start();
    const secret = g.addKey();
    const none = await httpRequest(`${g.url}/auth/forward`, { headers: { 'x-api-key': secret } });
    expectRefusal(none, 400, 'BAD_REQUEST');
    expect(none.body.error.message).toContain('X-Original-Method with X-Original-URI');
    const noMethod = await httpRequest(`${g.url}/auth/forward`, { headers: { 'x-original-uri': '/v1/events', 'x-api-key': secret } });
    expectRefusal(noMethod, 400, 'BAD_REQUEST');
    expect(noMethod.body.error.message).toBe('X-Original-Method is required with X-Original-URI.');
    const noUri = await httpRequest(`${g.url}/auth/forward`, { headers: { 'x-forwarded-method': 'GET', 'x-api-key': secret } });
    expect(noUri.body.error.message).toBe('X-Forwarded-Uri is required with X-Forwarded-Method.');
    const twice = await httpRequest(`${g.url}/auth/forward`, { headers: { 'x-original-method': 'GET', 'x-original-uri': ['/v1/events', '/v1/stats'], 'x-api-key': secret } });
    expectRefusal(twice, 400, 'BAD_REQUEST');
    expect(twice.body.error.message).toBe('X-Original-URI came more than once.');
    const badMethod = await nginxAsks(g, 'GE T', '/v1/events', { 'x-api-key': secret });
    expect(badMethod.body.error.message).toBe('X-Original-Method is not an HTTP method.');
  });

  it('checks the original path as strictly as a proxied one: dot segments and encoded slashes are 400', async () => {
    const g = await start();
    const secret = g.addKey();
    for (const uri of ['/v1/blobs/../events', '/v1/blobs/%2e%2e/x', '/v1/blobs/a%2fb', 'v1/events']) {
      const res = await nginxAsks(g, 'PUT', uri, { 'x-api-key': secret });
      expectRefusal(res, 400, 'BAD_REQUEST');
    }
  });

  it('refuses as the proxy path does: unknown key 401 with its challenge, wrong permission 403, no route 404', async () => {
    const g = await start();
    const secret = g.addKey({ permissions: ['events.read'] });
    const unknown = await nginxAsks(g, 'GET', '/v1/events', { 'x-api-key': 'kg_live_000000000000000000000000_000000' });
    expectRefusal(unknown, 401, 'UNAUTHENTICATED');
    expect(unknown.headers['www-authenticate']).toBe('Bearer realm="keygate"');
    const proxied = await httpRequest(`${g.url}/v1/events`, { headers: { 'x-api-key': 'kg_live_000000000000000000000000_000000' } });
    expect(proxied.headers['www-authenticate']).toBe(unknown.headers['www-authenticate']);
    expect({ ...proxied.body.error, requestId: null }).toEqual({ ...unknown.body.error, requestId: null });
    expectRefusal(await nginxAsks(g, 'GET', '/v1/events'), 401, 'UNAUTHENTICATED');
    expectRefusal(await nginxAsks(g, 'GET', '/v1/stats', { 'x-api-key': secret }), 403, 'PERMISSION_DENIED');
    expectRefusal(await nginxAsks(g, 'GET', '/v1/nowhere', { 'x-api-key': secret }), 404, 'ROUTE_NOT_FOUND');
    expectRefusal(await nginxAsks(g, 'GET', '/v1/stats', { 'x-api-key': g.addKey({ type: 'profile' }) }), 403, 'KEY_TYPE_NOT_ALLOWED');
    expectRefusal(await nginxAsks(g, 'GET', '/v1/events', { 'x-api-key': g.addKey({ enabled: false }) }), 403, 'KEY_DISABLED');
    expect(g.upstreamRequests).toEqual([]);
  });

  it('refuses a route with a body policy with BODY_POLICY_NOT_DECIDABLE, whatever the key', async () => {
    const g = await start();
    const secret = g.addKey();
    const res = await nginxAsks(g, 'POST', '/v1/events', { 'x-api-key': secret });
    expectRefusal(res, 403, 'BODY_POLICY_NOT_DECIDABLE');
    expect(res.body.error.message).toContain('checks request bodies');
    expectRefusal(await nginxAsks(g, 'POST', '/v1/events'), 403, 'BODY_POLICY_NOT_DECIDABLE');
    // The proxy path still serves the route, body checks and all.
    const proxied = await httpRequest(`${g.url}/v1/events`, { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body: '{"action":"a"}' });
    expect(proxied.status).toBe(200);
  });

  it('decides a body-policy route that says decideWithoutBody with every check but the body policy', async () => {
    const g = gw = await startGateway({ routes: `
  - { name: send-events, method: POST, path: /v1/events, upstream: events, permission: events.create, events: { field: action }, decideWithoutBody: true }
  - { name: update-profile, method: PATCH, path: "/v1/profiles/{profileId}", upstream: events, permission: profiles.update, profileAttributes: true }
` });
    const secret = g.addKey({ permissions: ['events.create'], eventDenylist: ['*'] });
    const res = await nginxAsks(g, 'POST', '/v1/events', { 'x-api-key': secret });
    expect(res.status, res.text).toBe(200);
    expectRefusal(await nginxAsks(g, 'POST', '/v1/events', { 'x-api-key': g.addKey({ permissions: ['events.read'] }) }), 403, 'PERMISSION_DENIED');
    expectRefusal(await nginxAsks(g, 'PATCH', '/v1/profiles/p1', { 'x-api-key': secret }), 403, 'BODY_POLICY_NOT_DECIDABLE');
    // The proxy path still checks the body.
    const proxied = await httpRequest(`${g.url}/v1/events`, { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body: '{"action":"a"}' });
    expect(proxied.body.error.code).toBe('EVENT_NOT_ALLOWED');
  });

  it('counts a decision as a proxied request of its route: metrics, usage, and one rate-limit budget', async () => {
    const g = await start();
    const secret = g.addKey({ id: 'key_rl', rateLimit: { limit: 3, windowSeconds: 60 } });
    const first = await nginxAsks(g, 'GET', '/v1/events', { 'x-api-key': secret });
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-limit']).toBe('3');
    expect(first.headers['ratelimit-remaining']).toBe('2');
    expect((await httpRequest(`${g.url}/v1/events`, { headers: { 'x-api-key': secret } })).status).toBe(200);
    expect((await httpRequest(`${g.url}/auth/envoy/v1/events`, { headers: { 'x-api-key': secret } })).headers['ratelimit-remaining']).toBe('0');
    const limited = await nginxAsks(g, 'GET', '/v1/events', { 'x-api-key': secret });
    expectRefusal(limited, 429, 'RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers['ratelimit-remaining']).toBe('0');
    expect(await requests(g, 'list-events', 'OK')).toBe(3);
    expect(await requests(g, 'list-events', 'RATE_LIMITED')).toBe(1);
    await g.close();
    gw = null;
    const usage = g.usage.filter((u) => u.keyId === 'key_rl');
    const total = (outcome: string): number => usage.reduce((a, u) => a + (u.byOutcome[outcome] ?? 0), 0);
    expect(total('OK')).toBe(3);
    expect(total('RATE_LIMITED')).toBe(1);
  });

  it('holds a simple-auth token to its own profile on a profileScope route, and names the profile', async () => {
    const g = await start();
    const salt = 'salt-0123456789';
    const secret = g.addKey({ type: 'profile', simpleAuth: { enabled: true, salt } });
    const minted = await fetch(`${g.url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiKey: secret, identity: { customId: 'user-42' }, signature: simpleAuthSignature(salt, 'user-42') }),
    });
    const { token } = await minted.json() as { token: string };
    const own = await nginxAsks(g, 'GET', '/v1/profiles/user-42', { authorization: `Bearer ${token}` });
    expect(own.status, own.text).toBe(200);
    expect(own.headers['x-keygate-profile']).toBe('user-42');
    expectRefusal(await nginxAsks(g, 'GET', '/v1/profiles/user-43', { authorization: `Bearer ${token}` }), 403, 'PROFILE_SCOPE');
  });

  it('reads the client IP from X-Forwarded-For only when the proxy is in trustedProxies', async () => {
    const trusting = await start({ trustedProxies: ['127.0.0.5/32'] });
    const secret = trusting.addKey({ ipAllowlist: ['10.0.0.0/8'] });
    const ask = (g: GatewayHarness, from: string, xff: string): Promise<SimpleResponse> => nginxAsks(g, 'GET', '/v1/events', { 'x-api-key': secret, 'x-forwarded-for': xff }, from);
    expect((await ask(trusting, '127.0.0.5', '10.1.2.3')).status).toBe(200);
    expectRefusal(await ask(trusting, '127.0.0.5', '192.0.2.7'), 403, 'IP_NOT_ALLOWED');
    // The same header from a peer that is not a trusted proxy is not believed.
    expectRefusal(await ask(trusting, '127.0.0.6', '10.1.2.3'), 403, 'IP_NOT_ALLOWED');
    await trusting.close();
    const untrusting = await start();
    const secret2 = untrusting.addKey({ ipAllowlist: ['10.0.0.0/8'] });
    const res = await nginxAsks(untrusting, 'GET', '/v1/events', { 'x-api-key': secret2, 'x-forwarded-for': '10.1.2.3' }, '127.0.0.5');
    expectRefusal(res, 403, 'IP_NOT_ALLOWED');
  });

  it('escapes a non-ASCII message in X-Keygate-Error, and the header still reads as the body', async () => {
    const g = await start();
    const res = await nginxAsks(g, 'GET', '/v1/events', { 'x-api-key': g.addKey({ permissions: ['events.read'] }) });
    expect(res.status).toBe(200);
    const { errorHeader } = await import('../src/data-plane/decide/decision-routes.js');
    const header = errorHeader('BAD_REQUEST', 'identität → “x”', 'r1');
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(JSON.parse(header)).toEqual({ error: { code: 'BAD_REQUEST', message: 'identität → “x”', requestId: 'r1' } });
  });
});

describe('/auth/envoy/<path>: Envoy ext_authz over HTTP', () => {
  /**
   * The check request as Envoy's HTTP ext_authz filter sends it (envoy.extensions.filters.http.
   * ext_authz.v3.HttpService, docs "Authorization service" / "HTTP service"): the original
   * method, `path_prefix` before the original path and query, the original Host as the
   * authority, the headers the `allowed_headers` matcher lets through (Authorization by
   * default, here X-Api-Key too), Content-Length: 0 (no body unless with_request_body), and
   * x-envoy-* headers of its own.
   */
  function envoyChecks(g: GatewayHarness, method: string, pathAndQuery: string, headers: Record<string, string>): Promise<SimpleResponse> {
    return httpRequest(`${g.url}/auth/envoy${pathAndQuery}`, {
      method,
      headers: {
        host: 'api.example.com', 'content-length': '0', 'x-envoy-internal': 'true', 'x-envoy-expected-rq-timeout-ms': '250',
        'x-request-id': '2a4c1e3f-envoy', 'x-forwarded-proto': 'https', ...headers,
      },
    });
  }

  it('decides the original method and the path after the prefix, query and all', async () => {
    const g = await start();
    const secret = g.addKey({ id: 'key_envoy', permissions: ['events.read', 'blobs.write'] });
    const get = await envoyChecks(g, 'GET', '/v1/events?since=2026-01-01', { 'x-api-key': secret });
    expect(get.status, get.text).toBe(200);
    // What allowed_upstream_headers copies onto the original request.
    expect(get.headers['x-keygate-key-id']).toBe('key_envoy');
    expect(get.headers['x-keygate-environment']).toBe('live');
    expect((await envoyChecks(g, 'PUT', '/v1/blobs/x/y', { authorization: `Bearer ${secret}` })).status).toBe(200);
    expect((await envoyChecks(g, 'HEAD', '/v1/events', { 'x-api-key': secret })).status).toBe(200);
    expect(g.upstreamRequests).toEqual([]);
  });

  it('answers a refusal Envoy passes to the client as is: status, JSON body and headers', async () => {
    const g = await start();
    const secret = g.addKey({ permissions: ['events.read'] });
    expectRefusal(await envoyChecks(g, 'GET', '/v1/stats', { 'x-api-key': secret }), 403, 'PERMISSION_DENIED');
    const unknown = await envoyChecks(g, 'GET', '/v1/events', {});
    expectRefusal(unknown, 401, 'UNAUTHENTICATED');
    expect(unknown.headers['www-authenticate']).toBe('Bearer realm="keygate"');
    expectRefusal(await envoyChecks(g, 'POST', '/v1/events', { 'x-api-key': secret }), 403, 'BODY_POLICY_NOT_DECIDABLE');
    expectRefusal(await envoyChecks(g, 'GET', '', { 'x-api-key': secret }), 404, 'ROUTE_NOT_FOUND');
    // A check request whose own target is refused never gets as far as a decision.
    const dots = await envoyChecks(g, 'GET', '/v1/blobs/%2e%2e/events', { 'x-api-key': secret });
    expect(dots.status).toBe(400);
    expect(dots.body.error.code).toBe('BAD_REQUEST');
  });

  it('leaves paths that only start like the prefix to the routes', async () => {
    const g = await start();
    const res = await httpRequest(`${g.url}/auth/envoyx/v1/events`, { headers: { 'x-api-key': g.addKey() } });
    expect(res.status).toBe(404);
    expect(res.headers['x-keygate-error']).toBeUndefined();
  });
});
