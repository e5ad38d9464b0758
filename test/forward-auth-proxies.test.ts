// keygate behind the proxies platform teams already run: a real nginx (auth_request) and a real
// Caddy (forward_auth), each started from the recipe shipped in deploy/ with only its addresses
// changed, in front of a real `keygate serve` and a recording upstream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caddyRecipe, startCaddy } from './support/caddy.js';
import { pollUntil, scrape, metricSum } from './support/gateway.js';
import { httpRequest, type SimpleResponse } from './support/http-request.js';
import { ADMIN_TOKEN, PEPPER, startKeygate, type Keygate } from './support/keygate.js';
import { nginxRecipe, startNginx } from './support/nginx.js';
import { requireBinary } from './support/proxy-binaries.js';
import { startNode, uniquePrefix, useCleanup } from './support/redis-nodes.js';
import { requireRedis, startRedis } from './support/redis-server.js';
import { closedPort, headerValue, startUpstream, type RecordingUpstream } from './support/upstream.js';

const MAX_STALENESS_MS = 2_000;

const hostPort = (url: string): string => url.replace(/^http:\/\//, '');

interface Proxy { url: string; stop(): Promise<void>; log(): string }

/**
 * `budgetOnAllowed`: whether the proxy puts keygate's RateLimit-* on an allowed answer (nginx's
 * recipe does; Caddy's forward_auth copies the decision's headers onto the request only).
 */
function suite(name: string, install: string, budgetOnAllowed: boolean, start: (keygate: string, api: string) => Promise<Proxy>): void {
  describe.skipIf(!requireBinary(name, install))(`keygate behind ${name}`, () => {
    let api: RecordingUpstream;
    let kg: Keygate;
    let proxy: Proxy;
    let workspaceId: string;

    beforeAll(async () => {
      api = await startUpstream('api');
      kg = await startKeygate({
        config: (dataDir) => ({
          // The proxy connects from 127.0.0.1; clients come from other loopback addresses.
          gateway: { listen: { host: '127.0.0.1', port: 0 }, trustedProxies: ['127.0.0.1/32'] },
          admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'ops', token: ADMIN_TOKEN }] },
          store: { driver: 'embedded', path: dataDir },
          secrets: { pepper: PEPPER },
          propagation: { maxStalenessMs: MAX_STALENESS_MS },
          upstreams: { api: { url: api.url } },
          routes: [
            { name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' },
            { name: 'send-events', method: 'POST', path: '/v1/events', upstream: 'api', permission: 'events.create', events: { field: 'action' } },
            { name: 'stats', method: 'GET', path: '/v1/stats', upstream: 'api', permission: 'stats.read' },
          ],
        }),
      });
      proxy = await start(hostPort(kg.gatewayUrl!), hostPort(api.url));
      workspaceId = (await kg.admin('POST', '/v1/workspaces', { name: name })).body.id as string;
    }, 60_000);

    afterAll(async () => {
      await proxy?.stop();
      await kg?.stop();
      await api?.close();
    });

    const createKey = async (fields: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> => {
      const res = await kg.admin('POST', '/v1/keys', { workspaceId, name: 'k', permissions: ['events.*'], ...fields });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return { id: res.body.key.id as string, secret: res.body.secret as string };
    };
    const call = (path: string, headers: Record<string, string> = {}, opts: { method?: string; from?: string; body?: string } = {}): Promise<SimpleResponse> =>
      httpRequest(proxy.url + path, { method: opts.method ?? 'GET', headers, ...(opts.from ? { localAddress: opts.from } : {}), ...(opts.body !== undefined ? { body: opts.body } : {}) });
    const expectError = (res: SimpleResponse, status: number, code: string): void => {
      expect(res.status, `${res.text}\n${proxy.log()}`).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.requestId).toMatch(/.+/);
      expect(res.headers['x-request-id']).toBe(res.body.error.requestId);
    };
    const upstreamSaw = (n: number) => api.requests.slice(n);

    it('lets an allowed request through with the identity headers, without the credential or a client\'s own X-Keygate-*', async () => {
      const { id, secret } = await createKey();
      const before = api.requests.length;
      const res = await call('/v1/events?page=2', { 'x-api-key': secret, 'x-keygate-key-id': 'key_forged', 'x-keygate-profile': 'someone-else' });
      expect(res.status, `${res.text}\n${proxy.log()}`).toBe(200);
      expect(res.body.url).toBe('/v1/events?page=2');
      const seen = upstreamSaw(before);
      expect(seen).toHaveLength(1);
      const h = seen[0]!.rawHeaders;
      expect(headerValue(h, 'x-keygate-key-id')).toBe(id);
      expect(headerValue(h, 'x-keygate-workspace-id')).toBe(workspaceId);
      expect(headerValue(h, 'x-keygate-key-type')).toBe('workspace');
      expect(headerValue(h, 'x-keygate-environment')).toBe('live');
      expect(headerValue(h, 'x-keygate-profile') ?? '').toBe('');
      expect(headerValue(h, 'x-request-id')).toMatch(/.+/);
      expect(headerValue(h, 'x-api-key')).toBeUndefined();
      const bearer = await call('/v1/events', { authorization: `Bearer ${secret}` });
      expect(bearer.status).toBe(200);
      expect(headerValue(api.requests.at(-1)!.rawHeaders, 'authorization')).toBeUndefined();
    });

    it('refuses an unknown key with keygate\'s 401: its JSON body and WWW-Authenticate, nothing forwarded', async () => {
      const before = api.requests.length;
      const res = await call('/v1/events', { 'x-api-key': 'kg_live_000000000000000000000000_000000' });
      expectError(res, 401, 'UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="keygate"');
      expectError(await call('/v1/events'), 401, 'UNAUTHENTICATED');
      expect(upstreamSaw(before)).toEqual([]);
    });

    it('refuses a key without the route\'s permission with 403 PERMISSION_DENIED, and a body-policy route with BODY_POLICY_NOT_DECIDABLE', async () => {
      const { secret } = await createKey({ permissions: ['events.read'] });
      const before = api.requests.length;
      expectError(await call('/v1/stats', { 'x-api-key': secret }), 403, 'PERMISSION_DENIED');
      expectError(await call('/v1/events', { 'x-api-key': secret, 'content-type': 'application/json' }, { method: 'POST', body: '{"action":"a"}' }), 403, 'BODY_POLICY_NOT_DECIDABLE');
      expect(upstreamSaw(before)).toEqual([]);
    });

    it('reads the client IP from the proxy\'s X-Forwarded-For (a trusted proxy), and never from a client\'s own', async () => {
      const { secret } = await createKey({ ipAllowlist: ['127.0.0.9/32'] });
      expect((await call('/v1/events', { 'x-api-key': secret }, { from: '127.0.0.9' })).status).toBe(200);
      expectError(await call('/v1/events', { 'x-api-key': secret }, { from: '127.0.0.7' }), 403, 'IP_NOT_ALLOWED');
      // A client claiming an allowed address in its own X-Forwarded-For is still itself.
      expectError(await call('/v1/events', { 'x-api-key': secret, 'x-forwarded-for': '127.0.0.9' }, { from: '127.0.0.7' }), 403, 'IP_NOT_ALLOWED');
    });

    it('passes a rate-limited client keygate\'s 429 with Retry-After and RateLimit-*, and the budget on allowed answers', async () => {
      const { secret } = await createKey({ rateLimit: { limit: 2, windowSeconds: 60 } });
      const first = await call('/v1/events', { 'x-api-key': secret });
      expect(first.status).toBe(200);
      if (budgetOnAllowed) {
        expect(first.headers['ratelimit-limit']).toBe('2');
        expect(first.headers['ratelimit-remaining']).toBe('1');
      }
      expect((await call('/v1/events', { 'x-api-key': secret })).status).toBe(200);
      const before = api.requests.length;
      const limited = await call('/v1/events', { 'x-api-key': secret });
      expectError(limited, 429, 'RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.headers['ratelimit-limit']).toBe('2');
      expect(limited.headers['ratelimit-remaining']).toBe('0');
      expect(upstreamSaw(before)).toEqual([]);
    });

    it('refuses a disabled or deleted key within the propagation bound', async () => {
      const disabled = await createKey();
      const deleted = await createKey();
      expect((await call('/v1/events', { 'x-api-key': disabled.secret })).status).toBe(200);
      expect((await call('/v1/events', { 'x-api-key': deleted.secret })).status).toBe(200);
      expect((await kg.admin('PATCH', `/v1/keys/${disabled.id}`, { enabled: false })).status).toBe(200);
      expect((await kg.admin('DELETE', `/v1/keys/${deleted.id}`)).status).toBe(204);
      const off = await pollUntil(() => call('/v1/events', { 'x-api-key': disabled.secret }), (r) => r.status !== 200, MAX_STALENESS_MS);
      expect(off.ok, `still ${off.value.status} after ${off.ms} ms`).toBe(true);
      expectError(off.value, 403, 'KEY_DISABLED');
      const gone = await pollUntil(() => call('/v1/events', { 'x-api-key': deleted.secret }), (r) => r.status !== 200, MAX_STALENESS_MS);
      expect(gone.ok, `still ${gone.value.status} after ${gone.ms} ms`).toBe(true);
      expectError(gone.value, 401, 'UNAUTHENTICATED');
    });

    it('counts each decision as a request of the original route', async () => {
      const { secret } = await createKey();
      const before = metricSum(await scrape(kg), 'keygate_requests_total', { route: 'list-events', outcome: 'OK' });
      for (let i = 0; i < 3; i++) expect((await call('/v1/events', { 'x-api-key': secret })).status).toBe(200);
      expect(metricSum(await scrape(kg), 'keygate_requests_total', { route: 'list-events', outcome: 'OK' }) - before).toBe(3);
    });
  });
}

suite('nginx', 'apt-get install nginx-light', true, async (keygate, api) => startNginx(nginxRecipe(keygate, api)));
suite('caddy', 'apt-get install caddy', false, async (keygate, api) => startCaddy(caddyRecipe(keygate, api)));

describe.skipIf(!requireBinary('nginx', 'apt-get install nginx-light'))('nginx with keygate unreachable', () => {
  it('fails closed: 500 with a JSON error, nothing forwarded', async () => {
    const api = await startUpstream('api');
    const nginx = await startNginx(nginxRecipe(`127.0.0.1:${await closedPort()}`, hostPort(api.url)));
    try {
      const res = await httpRequest(`${nginx.url}/v1/events`, { headers: { 'x-api-key': 'kg_live_000000000000000000000000_000000' } });
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe('INTERNAL');
      expect(api.requests).toEqual([]);
    } finally {
      await nginx.stop();
      await api.close();
    }
  });
});

describe.skipIf(!requireBinary('nginx', 'apt-get install nginx-light') || !requireRedis())('nginx in front of one of two keygate nodes on Redis', () => {
  const defer = useCleanup();

  it('refuses a key disabled through the other node within maxStalenessMs, and both nodes share its rate limit', async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const events = await startUpstream('events');
    const eventsTest = await startUpstream('events-test');
    defer(() => events.close());
    defer(() => eventsTest.close());
    const opts = {
      events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('fa'), propagation: { maxStalenessMs: MAX_STALENESS_MS },
      gateway: { trustedProxies: ['127.0.0.1/32'] },
    };
    const admin = await startNode(defer, opts);
    const decider = await startNode(defer, opts);
    const nginx = await startNginx(nginxRecipe(hostPort(decider.gatewayUrl!), hostPort(events.url)));
    defer(() => nginx.stop());
    const workspaceId = (await admin.admin('POST', '/v1/workspaces', { name: 'fa' })).body.id as string;
    const created = await admin.admin('POST', '/v1/keys', { workspaceId, name: 'k', permissions: ['events.read'], rateLimit: { limit: 3, windowSeconds: 60 } });
    const { secret } = created.body as { secret: string };
    const call = (): Promise<SimpleResponse> => httpRequest(`${nginx.url}/v1/events`, { headers: { 'x-api-key': secret } });
    expect((await call()).status).toBe(200);
    // The other node's proxied request draws on the same budget on Redis.
    expect((await httpRequest(`${admin.gatewayUrl!}/v1/events`, { headers: { 'x-api-key': secret } })).status).toBe(200);
    const second = await call();
    expect(second.status).toBe(200);
    expect(second.headers['ratelimit-remaining']).toBe('0');
    expect((await call()).status).toBe(429);

    const other = await admin.admin('POST', '/v1/keys', { workspaceId, name: 'k2', permissions: ['events.read'] });
    const secret2 = other.body.secret as string;
    const call2 = (): Promise<SimpleResponse> => httpRequest(`${nginx.url}/v1/events`, { headers: { 'x-api-key': secret2 } });
    expect((await call2()).status).toBe(200);
    const disabledAt = Date.now();
    expect((await admin.admin('PATCH', `/v1/keys/${other.body.key.id as string}`, { enabled: false })).status).toBe(200);
    const off = await pollUntil(call2, (r) => r.status !== 200, MAX_STALENESS_MS, 10);
    expect(off.ok, `still ${off.value.status} ${Date.now() - disabledAt} ms after the change`).toBe(true);
    expect(off.value.status).toBe(403);
    expect(off.value.body.error.code).toBe('KEY_DISABLED');
  });
});
