import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, requireRedis, startRedis } from './support/redis-server.js';
import { createKey, createWorkspace, expectError, sleep } from './support/admin.js';
import { gw, metricSum, scrape, type GatewayResponse } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import {
  metricOf, redisNodeConfig, statusCounts, stopNode, uniquePrefix, untilStatus,
} from './support/redis-nodes.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;

/**
 * `total` GET /v1/events with `secret`, `concurrency` at a time, alternating between the
 * gateways; returns every response with the index of the gateway that answered it.
 */
async function spread(gateways: readonly Keygate[], secret: string, total: number, concurrency: number): Promise<Array<GatewayResponse & { node: number }>> {
  const out: Array<GatewayResponse & { node: number }> = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < total; i = next++) {
      const node = i % gateways.length;
      out.push({ ...(await gw(gateways[node]!, '/v1/events', { headers: { 'x-api-key': secret } })), node });
    }
  }));
  return out;
}

/** Each node admitted some requests and refused some: the budget is one, shared. */
function expectBothNodesAdmittedAndRefused(responses: ReadonlyArray<{ status: number; node: number }>): void {
  for (const node of [0, 1]) {
    const mine = statusCounts(responses.filter((r) => r.node === node).map((r) => r.status));
    expect(mine[200] ?? 0, `node ${node}: ${JSON.stringify(mine)}`).toBeGreaterThan(0);
    expect(mine[429] ?? 0, `node ${node}: ${JSON.stringify(mine)}`).toBeGreaterThan(0);
  }
}

/** Which process answered: request ids start with a per-process prefix (diagnostic only). */
const workerOf = (res: GatewayResponse): string => (res.headers.get('x-request-id') ?? '').slice(0, 8);

describe.skipIf(!requireRedis())('two keygate nodes on one Redis', () => {
  let redis: RedisServer;
  let a: Keygate;
  let b: Keygate;
  let ws: string;

  beforeAll(async () => {
    ({ events, eventsTest } = pair);
    redis = await startRedis();
    const keyPrefix = uniquePrefix('nodes');
    const opts = { events, eventsTest, url: redis.url, keyPrefix, propagation: { maxStalenessMs: 30_000 } };
    // A rotated signing key signs at once here (tokens.rotationDelaySeconds: 0), to time its propagation.
    const config = (dir: string) => ({ ...redisNodeConfig(opts)(dir), tokens: { rotationDelaySeconds: 0 } });
    a = await startKeygate({ config });
    b = await startKeygate({ config });
    ws = await createWorkspace(a, 'nodes');
  });

  afterAll(async () => {
    if (b) await stopNode(b);
    if (a) await stopNode(a);
    await redis?.cleanup();
  });

  /** B answers 200 for the key twice, the second time from its cache. */
  async function cachedOnB(secret: string): Promise<void> {
    expect((await gw(b, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
    const hits = await metricOf(b, 'keygate_key_cache_hits_total');
    expect((await gw(b, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
    expect(await metricOf(b, 'keygate_key_cache_hits_total'), 'the second request was a cache hit').toBeGreaterThan(hits);
  }

  it('enforces a DELETE made on node A on node B within 1 s (401 UNAUTHENTICATED)', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'to-delete', permissions: ['*'] });
    await cachedOnB(k.secret);
    const sent = Date.now();
    expect((await a.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const committed = Date.now();
    const { res, ms, ok } = await untilStatus(b, k.secret, 401, committed, 3_000);
    console.log(`propagation: DELETE on A enforced on B ${ms} ms after the 204 (${ms + committed - sent} ms after the request was sent)`);
    expect(ok, `B still answered ${res.status} after ${ms} ms`).toBe(true);
    expectError(res, 401, 'UNAUTHENTICATED');
    expect(ms).toBeLessThan(1_000);
    expect((await gw(b, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(401);
  });

  it('enforces a PATCH {enabled: false} made on node A on node B within 1 s (403 KEY_DISABLED)', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'to-disable', permissions: ['*'] });
    await cachedOnB(k.secret);
    const patch = await a.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    const committed = Date.now();
    const { res, ms, ok } = await untilStatus(b, k.secret, 403, committed, 3_000);
    console.log(`propagation: PATCH {enabled:false} on A enforced on B ${ms} ms after the 200`);
    expect(ok, `B still answered ${res.status} after ${ms} ms`).toBe(true);
    expectError(res, 403, 'KEY_DISABLED');
    expect(ms).toBeLessThan(1_000);
  });

  it('stops the old secret on node B within 1 s of a rotation on node A with gracePeriodSeconds 0; the new secret works on B', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'to-rotate', permissions: ['*'] });
    await cachedOnB(k.secret);
    const rot = await a.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    const committed = Date.now();
    const { res, ms, ok } = await untilStatus(b, k.secret, 401, committed, 3_000);
    console.log(`propagation: rotation on A stopped the old secret on B ${ms} ms after the 200`);
    expect(ok, `B still answered ${res.status} after ${ms} ms`).toBe(true);
    expectError(res, 401, 'UNAUTHENTICATED');
    expect(ms).toBeLessThan(1_000);
    expect((await gw(b, '/v1/events', { headers: { 'x-api-key': rot.body.secret } })).status).toBe(200);
    expect((await gw(a, '/v1/events', { headers: { 'x-api-key': rot.body.secret } })).status).toBe(200);
  });

  it("enforces an owner's disabling made on node A on node B within 1 s (403 KEY_SUSPENDED)", async () => {
    const owner = await a.admin('POST', '/v1/owners', { name: 'nodes-owner', permissions: ['*'] });
    expect(owner.status, JSON.stringify(owner.body)).toBe(201);
    const k = await createKey(a, { workspaceId: ws, name: 'owned', permissions: ['*'], ownerId: owner.body.id });
    await cachedOnB(k.secret);
    expect((await a.admin('PATCH', `/v1/owners/${owner.body.id}`, { status: 'disabled' })).status).toBe(200);
    const committed = Date.now();
    const { res, ms, ok } = await untilStatus(b, k.secret, 403, committed, 3_000);
    console.log(`propagation: owner disabled on A enforced on B ${ms} ms after the 200`);
    expect(ok, `B still answered ${res.status} after ${ms} ms`).toBe(true);
    expectError(res, 403, 'KEY_SUSPENDED');
    expect(ms).toBeLessThan(1_000);
  });

  it('verifies on node B a token minted on node A, and answers 401 TOKEN_INVALID on B within 1 s of the key being deleted on A', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'token-key', permissions: ['*'] });
    const minted = await gw(a, '/auth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: k.secret }) });
    expect(minted.status, minted.text).toBe(200);
    const auth = { authorization: `Bearer ${minted.body.token as string}` };
    expect((await gw(b, '/v1/events', { headers: auth })).status).toBe(200);
    expect((await gw(b, '/v1/events', { headers: auth })).status).toBe(200);
    expect((await a.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const committed = Date.now();
    let res = await gw(b, '/v1/events', { headers: auth });
    while (res.status === 200 && Date.now() - committed < 3_000) {
      await sleep(5);
      res = await gw(b, '/v1/events', { headers: auth });
    }
    const ms = Date.now() - committed;
    console.log(`propagation: token of a key deleted on A refused on B after ≤ ${ms} ms`);
    expectError(res, 401, 'TOKEN_INVALID');
    expect(ms).toBeLessThan(1_000);
  });

  it('verifies on node B, within 1 s, tokens signed with a signing key rotated on node A', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'signing-rotation', permissions: ['*'] });
    const rot = await a.admin('POST', '/v1/signing-keys/rotate');
    expect(rot.status, JSON.stringify(rot.body)).toBe(201);
    const committed = Date.now();
    // A signs with the new key at once; B verifies that token once it has loaded the key from the store.
    let minted = await gw(a, '/auth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: k.secret }) });
    expect(minted.status, minted.text).toBe(200);
    const kid = JSON.parse(Buffer.from(String(minted.body.token).split('.')[0]!, 'base64url').toString('utf8')).kid as string;
    expect(kid).toBe(rot.body.id);
    let res = await gw(b, '/v1/events', { headers: { authorization: `Bearer ${minted.body.token as string}` } });
    while (res.status !== 200 && Date.now() - committed < 3_000) {
      await sleep(10);
      res = await gw(b, '/v1/events', { headers: { authorization: `Bearer ${minted.body.token as string}` } });
    }
    const ms = Date.now() - committed;
    console.log(`propagation: a token signed with the key rotated on A verified on B after ≤ ${ms} ms`);
    expect(res.status, res.text).toBe(200);
    expect(ms).toBeLessThan(1_000);
    const jwks = await gw(b, '/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect((jwks.body.keys as Array<{ kid: string }>).map((x) => x.kid)).toContain(rot.body.id);
    minted = await gw(b, '/auth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: k.secret }) });
    expect(minted.status, minted.text).toBe(200);
    expect((await gw(a, '/v1/events', { headers: { authorization: `Bearer ${minted.body.token as string}` } })).status).toBe(200);
  });

  it('holds a rate limit across both nodes: 1200 concurrent requests against limit 400 admit 400 ± 1%, the rest 429 RATE_LIMITED with Retry-After and RateLimit-*', async () => {
    const limit = 400;
    const k = await createKey(a, { workspaceId: ws, name: 'shared-limit', permissions: ['*'], rateLimit: { limit, windowSeconds: 3600 } });
    const started = Date.now();
    const responses = await spread([a, b], k.secret, 3 * limit, 32);
    const counts = statusCounts(responses.map((r) => r.status));
    console.log(`rate limit ${limit}/3600 s over two nodes: ${JSON.stringify(counts)} in ${Date.now() - started} ms`);
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['200', '429']);
    expect(counts[200]!).toBeGreaterThanOrEqual(limit * 0.99);
    expect(counts[200]!).toBeLessThanOrEqual(limit * 1.01);
    expectBothNodesAdmittedAndRefused(responses);
    const refused = responses.filter((r) => r.status === 429);
    for (const r of refused) {
      expectError(r, 429, 'RATE_LIMITED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(r.headers.get('ratelimit-limit')).toBe(String(limit));
      expect(r.headers.get('ratelimit-remaining')).toBe('0');
      expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
  });

  it('sends RateLimit-* on every answer of a limited key from the shared counters, alternating nodes, mints counted too (regression)', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'shared-headers', permissions: ['*'], rateLimit: { limit: 10, windowSeconds: 3600 } });
    const remaining: string[] = [];
    for (const node of [a, b, a, b]) {
      const res = await gw(node, '/v1/events', { headers: { 'x-api-key': k.secret } });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('10');
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
      remaining.push(res.headers.get('ratelimit-remaining') ?? 'none');
    }
    expect(remaining).toEqual(['9', '8', '7', '6']);
    const minted = await gw(b, '/auth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: k.secret }) });
    expect(minted.status, minted.text).toBe(200);
    expect(minted.headers.get('ratelimit-remaining')).toBe('5');
    expect((await gw(a, '/v1/events', { headers: { 'x-api-key': k.secret } })).headers.get('ratelimit-remaining')).toBe('4');
  });

  it('holds a daily quota across both nodes: 600 concurrent requests against quota 200 admit 200 ± 1%, the rest 429 QUOTA_EXCEEDED', async () => {
    const limit = 200;
    const k = await createKey(a, { workspaceId: ws, name: 'shared-quota', permissions: ['*'], quota: { limit, period: 'day' } });
    const responses = await spread([a, b], k.secret, 3 * limit, 32);
    const counts = statusCounts(responses.map((r) => r.status));
    console.log(`quota ${limit}/day over two nodes: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).sort(), JSON.stringify(counts)).toEqual(['200', '429']);
    expect(counts[200]!).toBeGreaterThanOrEqual(limit * 0.99);
    expect(counts[200]!).toBeLessThanOrEqual(limit * 1.01);
    expectBothNodesAdmittedAndRefused(responses);
    for (const r of responses.filter((x) => x.status === 429)) {
      expectError(r, 429, 'QUOTA_EXCEEDED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(r.headers.get('ratelimit-limit')).toBe(String(limit));
      expect(r.headers.get('ratelimit-remaining')).toBe('0');
    }
    const usage = await b.admin('GET', `/v1/keys/${k.key.id}/usage`);
    expect(usage.status).toBe(200);
    expect(usage.body.quota).toMatchObject({ limit, period: 'day', used: counts[200], remaining: 0 });
  });

  it('lists both nodes on GET /v1/nodes of either node, each with the store version it applied after the writes', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'nodes-list', permissions: ['*'] });
    expect((await a.admin('PATCH', `/v1/keys/${k.key.id}`, { description: 'changed' })).status).toBe(200);
    await sleep(100);
    // Each node's own view of the store version it has applied, after the writes.
    const versions = [metricSum(await scrape(a), 'keygate_store_version'), metricSum(await scrape(b), 'keygate_store_version')];
    const target = Math.max(...versions);
    expect(target, 'at least the workspace, the key and the PATCH were committed').toBeGreaterThanOrEqual(3);
    const ids = [a.proc.pid, b.proc.pid].map((pid) => `:${pid}`);
    const started = Date.now();
    let items: any[] = [];
    while (Date.now() - started < 7_000) {
      const res = await a.admin('GET', '/v1/nodes');
      expect(res.status).toBe(200);
      items = res.body.items as any[];
      const mine = ids.map((suffix) => items.find((n) => String(n.id).endsWith(suffix)));
      if (mine.every((n) => n !== undefined && n.appliedVersion >= target)) break;
      await sleep(200);
    }
    console.log(`GET /v1/nodes after ${Date.now() - started} ms (target version ${target}): ${JSON.stringify(items)}`);
    for (const suffix of ids) {
      const node = items.find((n) => String(n.id).endsWith(suffix));
      expect(node, `node …${suffix} is listed`).toBeDefined();
      expect(node.role).toBe('gateway');
      expect(node.appliedVersion).toBeGreaterThanOrEqual(target);
      expect(Date.now() - Date.parse(node.reportedAt)).toBeLessThan(15_000);
    }
    const fromB = await b.admin('GET', '/v1/nodes');
    expect(fromB.status).toBe(200);
    expect((fromB.body.items as any[]).map((n) => n.id).sort()).toEqual(items.map((n) => n.id).sort());
  });

  it('observes keygate_propagation_lag_seconds on node B for a change made on node A', async () => {
    const before = metricSum(await scrape(b), 'keygate_propagation_lag_seconds_count');
    const k = await createKey(a, { workspaceId: ws, name: 'lag', permissions: ['*'] });
    expect((await a.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false })).status).toBe(200);
    let text = '';
    const started = Date.now();
    while (Date.now() - started < 3_000) {
      text = await scrape(b);
      if (metricSum(text, 'keygate_propagation_lag_seconds_count') >= before + 2) break;
      await sleep(50);
    }
    const count = metricSum(text, 'keygate_propagation_lag_seconds_count');
    const sum = metricSum(text, 'keygate_propagation_lag_seconds_sum');
    console.log(`keygate_propagation_lag_seconds on B: count ${count}, mean ${(sum / count * 1000).toFixed(1)} ms`);
    expect(text).toMatch(/^# TYPE keygate_propagation_lag_seconds histogram$/m);
    expect(count).toBeGreaterThanOrEqual(before + 2);
    expect(metricSum(text, 'keygate_propagation_lag_seconds_bucket', { le: '+Inf' })).toBe(count);
    expect(sum / count, 'mean lag under 1 s').toBeLessThan(1);
  });
});

describe.skipIf(!requireRedis())('a node with gateway.workers: 2 and a second node on one Redis', () => {
  let redis: RedisServer;
  let a: Keygate;
  let b: Keygate;
  let ws: string;

  beforeAll(async () => {
    ({ events, eventsTest } = pair);
    redis = await startRedis();
    const keyPrefix = uniquePrefix('workers');
    const opts = { events, eventsTest, url: redis.url, keyPrefix, propagation: { maxStalenessMs: 30_000 } };
    a = await startKeygate({ config: redisNodeConfig({ ...opts, gateway: { workers: 2 } }) });
    b = await startKeygate({ config: redisNodeConfig(opts) });
    ws = await createWorkspace(b, 'workers');
  });

  afterAll(async () => {
    if (b) await stopNode(b);
    if (a) await stopNode(a);
    await redis?.cleanup();
  });

  const batch = async (secret: string, n: number): Promise<GatewayResponse[]> => {
    const out: GatewayResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await gw(a, '/v1/events', { headers: { 'x-api-key': secret, connection: 'close' } }));
    return out;
  };

  it("enforces a DELETE made on node B on both of node A's workers within 1 s", async () => {
    const k = await createKey(b, { workspaceId: ws, name: 'workers-delete', permissions: ['*'] });
    // Both workers serve (and cache) the key.
    const seen = new Set<string>();
    for (let i = 0; i < 200 && seen.size < 2; i++) {
      const res = await gw(a, '/v1/events', { headers: { 'x-api-key': k.secret, connection: 'close' } });
      expect(res.status, res.text).toBe(200);
      seen.add(workerOf(res));
    }
    expect(seen.size, 'both workers answered').toBe(2);
    expect((await b.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const committed = Date.now();
    let last: GatewayResponse[] = [];
    let ms = 0;
    for (;;) {
      const batchStart = Date.now();
      last = await batch(k.secret, 20);
      ms = batchStart - committed;
      if (last.every((r) => r.status === 401) || Date.now() - committed > 5_000) break;
    }
    console.log(`propagation: DELETE on B enforced on every worker of A within ${ms} ms`);
    expect(last.map((r) => r.status)).toEqual(Array(20).fill(401));
    expect(ms).toBeLessThan(1_000);
    const again = await batch(k.secret, 20);
    expect(again.map((r) => r.status)).toEqual(Array(20).fill(401));
    expect(new Set([...last, ...again].map(workerOf)).size, 'both workers answered').toBe(2);
  });

  it("enforces a PATCH {enabled: false} made on node B on both of node A's workers within 1 s", async () => {
    const k = await createKey(b, { workspaceId: ws, name: 'workers-disable', permissions: ['*'] });
    const warm = await batch(k.secret, 20);
    expect(warm.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect((await b.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false })).status).toBe(200);
    const committed = Date.now();
    let last: GatewayResponse[] = [];
    let ms = 0;
    for (;;) {
      const batchStart = Date.now();
      last = await batch(k.secret, 20);
      ms = batchStart - committed;
      if (last.every((r) => r.status === 403) || Date.now() - committed > 5_000) break;
    }
    console.log(`propagation: PATCH on B enforced on every worker of A within ${ms} ms`);
    expect(last.map((r) => r.body?.error?.code)).toEqual(Array(20).fill('KEY_DISABLED'));
    expect(ms).toBeLessThan(1_000);
  });
});

describe.skipIf(!requireRedis())('nodes leaving a Redis store', () => {
  let redis: RedisServer;
  const nodes: Keygate[] = [];

  beforeAll(async () => {
    ({ events, eventsTest } = pair);
    redis = await startRedis();
    const opts = { events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('leaving') };
    for (let i = 0; i < 3; i++) nodes.push(await startKeygate({ config: redisNodeConfig(opts) }));
  });

  afterAll(async () => {
    for (const kg of nodes) await stopNode(kg);
    await redis?.cleanup();
  });

  const listedPids = async (kg: Keygate): Promise<number[]> => {
    const res = await kg.admin('GET', '/v1/nodes');
    expect(res.status).toBe(200);
    return (res.body.items as any[]).map((n) => Number(String(n.id).split(':').pop())).sort((x, y) => x - y);
  };

  async function untilListed(kg: Keygate, want: number[], ms: number): Promise<number> {
    const started = Date.now();
    const sorted = [...want].sort((x, y) => x - y);
    for (;;) {
      const got = await listedPids(kg);
      if (JSON.stringify(got) === JSON.stringify(sorted)) return Date.now() - started;
      if (Date.now() - started > ms) throw new Error(`GET /v1/nodes still lists ${JSON.stringify(got)} after ${ms} ms, want ${JSON.stringify(sorted)}`);
      await sleep(200);
    }
  }

  it('drops a node stopped with SIGTERM at once, and one killed with SIGKILL within 15 s of its last report (regression: both stayed listed for a day)', async () => {
    const [a, b, c] = nodes as [Keygate, Keygate, Keygate];
    const pid = (kg: Keygate): number => kg.proc.pid!;
    await untilListed(a, [pid(a), pid(b), pid(c)], 10_000);

    expect(await c.stop('SIGTERM')).toBe(0);
    const afterStop = await untilListed(a, [pid(a), pid(b)], 2_000);
    console.log(`GET /v1/nodes dropped the SIGTERMed node after ${afterStop} ms`);

    const killedAt = Date.now();
    expect(await b.stop('SIGKILL')).toBeNull();
    // Its last report, which nothing refreshes now.
    const last = ((await a.admin('GET', '/v1/nodes')).body.items as any[]).find((n) => n.id.endsWith(`:${pid(b)}`));
    expect(last, 'the killed node is listed until its report ages out').toBeDefined();
    await untilListed(a, [pid(a)], 20_000);
    const droppedAt = Date.now();
    const sinceReport = droppedAt - Date.parse(last.reportedAt);
    console.log(`GET /v1/nodes dropped the SIGKILLed node ${droppedAt - killedAt} ms after the kill, ${sinceReport} ms after its last report`);
    expect(sinceReport).toBeGreaterThan(15_000);
    expect(sinceReport).toBeLessThan(17_000); // 15 s, and the polling (200 ms plus the request) on a busy machine
  });
});
