import { beforeAll, describe, expect, it } from 'vitest';
import { requireRedis, startRedis, startTcpProxy } from './support/redis-server.js';
import { createKey, createWorkspace, expectError, sleep } from './support/admin.js';
import { gw, type GatewayResponse } from './support/gateway.js';
import type { Keygate } from './support/keygate.js';
import {
  alive, metricOf, startNode, statusCounts, timedGet, uniquePrefix, untilStatus, useCleanup,
} from './support/redis-nodes.js';
import { bearer, mintToken } from './support/tokens.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
beforeAll(() => {
  ({ events, eventsTest } = pair);
});

type Timed = GatewayResponse & { startedAt: number; ms: number };

/** Requests `secret` on `kg` back to back (`loops` at a time) until `until()`; every response, timed. */
async function steady(kg: Keygate, secret: string, until: () => boolean, loops = 2, pauseMs = 5): Promise<Timed[]> {
  const out: Timed[] = [];
  await Promise.all(Array.from({ length: loops }, async () => {
    while (!until()) {
      out.push(await timedGet(kg, secret));
      await sleep(pauseMs);
    }
  }));
  return out;
}

describe.skipIf(!requireRedis())('a node cut off from Redis', () => {
  const defer = useCleanup();

  it('stops answering 200 for a key deleted elsewhere within maxStalenessMs, answers 503 STORE_UNAVAILABLE until reconnected, then 401', async () => {
    const maxStalenessMs = 2_000;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const proxy = await startTcpProxy(redis.port);
    defer(() => proxy.close());
    const keyPrefix = uniquePrefix('cut');
    const a = await startNode(defer, { events, eventsTest, url: redis.url, keyPrefix, propagation: { maxStalenessMs } });
    const b = await startNode(defer, { events, eventsTest, url: proxy.url, keyPrefix, propagation: { maxStalenessMs } });
    const ws = await createWorkspace(a, 'cut');
    const k = await createKey(a, { workspaceId: ws, name: 'deleted-while-cut', permissions: ['*'] });
    const survivor = await createKey(a, { workspaceId: ws, name: 'survives-the-cut', permissions: ['*'] });
    expect((await timedGet(b, k.secret)).status).toBe(200);
    expect((await timedGet(b, survivor.secret)).status).toBe(200);

    proxy.cut();
    const cutAt = Date.now();
    expect((await a.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const deletedAt = Date.now();
    // A key B has never seen, created after the cut: B cannot check it.
    const unseen = await createKey(a, { workspaceId: ws, name: 'created-while-cut', permissions: ['*'] });

    const bound = deletedAt + maxStalenessMs + 300;
    const responses = await steady(b, k.secret, () => Date.now() > bound + 700);
    const unseenWhileCut = [await timedGet(b, unseen.secret), await timedGet(b, unseen.secret)];
    const survivorWhileCut = await timedGet(b, survivor.secret);

    const last200 = Math.max(...responses.filter((r) => r.status === 200).map((r) => r.startedAt), cutAt);
    const maxMs = Math.max(...responses.map((r) => r.ms));
    console.log(`cut: ${responses.length} requests on B, ${JSON.stringify(statusCounts(responses.map((r) => r.status)))}; `
      + `last 200 started ${last200 - deletedAt} ms after the delete (bound ${maxStalenessMs} + 300 ms); slowest ${maxMs} ms`);
    for (const r of responses) {
      expect([200, 503], r.text).toContain(r.status);
      if (r.status === 200) expect(r.startedAt, 'a 200 after the staleness bound').toBeLessThanOrEqual(bound);
    }
    const late = responses.filter((r) => r.startedAt > bound);
    expect(late.length).toBeGreaterThan(0);
    for (const r of late) expectError(r, 503, 'STORE_UNAVAILABLE');
    expect(maxMs, 'no request waits long on a Redis it cannot reach').toBeLessThan(1_000);
    // Never-seen and cached keys alike cannot be checked now.
    for (const r of unseenWhileCut) expectError(r, 503, 'STORE_UNAVAILABLE');
    expectError(survivorWhileCut, 503, 'STORE_UNAVAILABLE');
    expect(alive(b)).toBe(true);

    proxy.restore();
    const restoredAt = Date.now();
    const { res, ms, ok } = await untilStatus(b, k.secret, 401, restoredAt, 5_000, 20);
    console.log(`cut: B answered 401 for the deleted key ${ms} ms after the connection came back`);
    expect(ok, `B still answered ${res.status} ${res.text}`).toBe(true);
    expectError(res, 401, 'UNAUTHENTICATED');
    expect(ms).toBeLessThan(3_000);
    expect((await timedGet(b, unseen.secret)).status).toBe(200);
    expect((await timedGet(b, survivor.secret)).status).toBe(200);
  });

  it('stops every worker of a node with gateway.workers: 2 from answering 200 for a key deleted elsewhere within maxStalenessMs of being cut off', async () => {
    const maxStalenessMs = 2_000;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const proxy = await startTcpProxy(redis.port);
    defer(() => proxy.close());
    const keyPrefix = uniquePrefix('cut-workers');
    const a = await startNode(defer, { events, eventsTest, url: proxy.url, keyPrefix, propagation: { maxStalenessMs }, gateway: { workers: 2 } });
    const b = await startNode(defer, { events, eventsTest, url: redis.url, keyPrefix, propagation: { maxStalenessMs } });
    const ws = await createWorkspace(b, 'cut-workers');
    const k = await createKey(b, { workspaceId: ws, name: 'deleted-while-cut', permissions: ['*'] });
    const closeGet = async (): Promise<Timed> => {
      const startedAt = Date.now();
      const res = await gw(a, '/v1/events', { headers: { 'x-api-key': k.secret, connection: 'close' } });
      return { ...res, startedAt, ms: Date.now() - startedAt };
    };
    const warm = await Promise.all(Array.from({ length: 20 }, closeGet));
    expect(warm.map((r) => r.status)).toEqual(Array(20).fill(200));

    proxy.cut();
    expect((await b.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const deletedAt = Date.now();
    const bound = deletedAt + maxStalenessMs + 300;
    const responses: Timed[] = [];
    while (Date.now() < bound + 700) {
      responses.push(await closeGet());
      await sleep(5);
    }
    const last200 = Math.max(deletedAt, ...responses.filter((r) => r.status === 200).map((r) => r.startedAt));
    const late = responses.filter((r) => r.startedAt > bound);
    console.log(`cut (workers: 2): ${JSON.stringify(statusCounts(responses.map((r) => r.status)))}; last 200 started ${last200 - deletedAt} ms after the delete; `
      + `${new Set(late.map((r) => (r.headers.get('x-request-id') ?? '').slice(0, 8))).size} processes answered past the bound`);
    for (const r of responses) {
      expect([200, 503], r.text).toContain(r.status);
      if (r.status === 200) expect(r.startedAt, 'a 200 after the staleness bound').toBeLessThanOrEqual(bound);
    }
    expect(late.length).toBeGreaterThan(10);
    for (const r of late) expectError(r, 503, 'STORE_UNAVAILABLE');

    proxy.restore();
    const restoredAt = Date.now();
    let after = await closeGet();
    while (after.status !== 401 && Date.now() - restoredAt < 5_000) {
      await sleep(20);
      after = await closeGet();
    }
    expectError(after, 401, 'UNAUTHENTICATED');
    const again = await Promise.all(Array.from({ length: 20 }, closeGet));
    expect(again.map((r) => r.status)).toEqual(Array(20).fill(401));
  });

  it('answers 503 STORE_UNAVAILABLE, never 200 or 401, for a key it has never seen while cut off, even before maxStalenessMs', async () => {
    const maxStalenessMs = 30_000;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const proxy = await startTcpProxy(redis.port);
    defer(() => proxy.close());
    const keyPrefix = uniquePrefix('cut-unseen');
    const a = await startNode(defer, { events, eventsTest, url: redis.url, keyPrefix, propagation: { maxStalenessMs } });
    const b = await startNode(defer, { events, eventsTest, url: proxy.url, keyPrefix, propagation: { maxStalenessMs } });
    const ws = await createWorkspace(a, 'cut-unseen');
    const known = await createKey(a, { workspaceId: ws, name: 'known', permissions: ['*'] });
    expect((await timedGet(b, known.secret)).status).toBe(200);
    // A secret whose checksum is wrong is refused without any lookup, cut off or not.
    const badChecksum = 'kg_live_000000000000000000000000_000000';

    proxy.cut();
    const unseen = await createKey(a, { workspaceId: ws, name: 'unseen', permissions: ['*'] });
    const responses: Timed[] = [];
    for (let i = 0; i < 10; i++) responses.push(await timedGet(b, unseen.secret));
    for (const r of responses) expectError(r, 503, 'STORE_UNAVAILABLE');
    // Within maxStalenessMs the cached key still works.
    expect((await timedGet(b, known.secret)).status).toBe(200);
    expect(Math.max(...responses.map((r) => r.ms))).toBeLessThan(1_000);
    expectError(await timedGet(b, badChecksum), 401, 'UNAUTHENTICATED');

    proxy.restore();
    const { res, ok } = await untilStatus(b, unseen.secret, 200, Date.now(), 5_000, 20);
    expect(ok, `B answered ${res.status} ${res.text}`).toBe(true);
  });
});

/** Admin `POST /v1/workspaces` until it answers 201; the time it took and every status seen. */
async function untilAdminWrites(kg: Keygate, since: number, timeoutMs: number): Promise<{ ms: number; ok: boolean; statuses: number[] }> {
  const statuses: number[] = [];
  for (;;) {
    const res = await kg.admin('POST', '/v1/workspaces', { name: 'after-recovery' });
    statuses.push(res.status);
    if (res.status === 201) return { ms: Date.now() - since, ok: true, statuses };
    expectError(res, 503, 'STORE_UNAVAILABLE');
    if (Date.now() - since > timeoutMs) return { ms: Date.now() - since, ok: false, statuses };
    await sleep(100);
  }
}

describe.skipIf(!requireRedis())('a node whose Redis dies or hangs', () => {
  const defer = useCleanup();

  it("keeps serving cached keys within 1 s per request when Redis is killed (onStoreError 'local'), refuses writes and unseen keys with 503, and recovers after a restart", async () => {
    const redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    defer(() => redis.cleanup());
    const kg = await startNode(defer, {
      events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('kill'),
      propagation: { maxStalenessMs: 30_000 }, rateLimit: { onStoreError: 'local' },
    });
    const ws = await createWorkspace(kg, 'kill');
    const k = await createKey(kg, { workspaceId: ws, name: 'busy', permissions: ['*'], rateLimit: { limit: 1000, windowSeconds: 60 } });
    const unseen = await createKey(kg, { workspaceId: ws, name: 'never-used-before-the-kill', permissions: ['*'] });
    expect((await timedGet(kg, k.secret)).status).toBe(200);

    let stop = false;
    const load = steady(kg, k.secret, () => stop, 2, 10);
    await sleep(300);
    const fallbacksBefore = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');
    await redis.kill();
    const killedAt = Date.now();
    await sleep(1_000);
    const write = await kg.admin('POST', '/v1/workspaces', { name: 'while-dead' });
    const unseenRes = await timedGet(kg, unseen.secret);
    await sleep(1_000);
    stop = true;
    const responses = await load;
    const fallbacksDuring = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');

    const afterKill = responses.filter((r) => r.startedAt >= killedAt);
    const maxMs = Math.max(...afterKill.map((r) => r.ms));
    console.log(`kill: ${afterKill.length} requests after the kill, ${JSON.stringify(statusCounts(afterKill.map((r) => r.status)))}, `
      + `slowest ${maxMs} ms; fallbacks ${fallbacksBefore} → ${fallbacksDuring}`);
    expect(alive(kg)).toBe(true);
    expect(afterKill.length).toBeGreaterThan(20);
    expect(statusCounts(afterKill.map((r) => r.status))).toEqual({ 200: afterKill.length });
    expect(maxMs, 'a dead Redis adds no seconds to a request').toBeLessThan(1_000);
    expect(fallbacksDuring).toBeGreaterThan(fallbacksBefore);
    expectError(write, 503, 'STORE_UNAVAILABLE');
    expectError(unseenRes, 503, 'STORE_UNAVAILABLE');

    await redis.restart();
    const restartedAt = Date.now();
    const recovered = await untilAdminWrites(kg, restartedAt, 5_000);
    console.log(`kill: admin writes answered 201 again ${recovered.ms} ms after Redis came back (${recovered.statuses.length} attempts)`);
    expect(recovered.ok).toBe(true);
    expect((await timedGet(kg, unseen.secret)).status).toBe(200);
    // The shared counters answer again: no more fallbacks.
    const c1 = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');
    for (let i = 0; i < 20; i++) expect((await timedGet(kg, k.secret)).status).toBe(200);
    expect(await metricOf(kg, 'keygate_rate_limit_fallbacks_total')).toBe(c1);
  });

  it("answers 429 with onStoreError 'deny' and admits beyond the limit with onStoreError 'allow' while Redis is down", async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const base = { events, eventsTest, url: redis.url, propagation: { maxStalenessMs: 30_000 } };
    const deny = await startNode(defer, { ...base, keyPrefix: uniquePrefix('deny'), rateLimit: { onStoreError: 'deny' } });
    const allow = await startNode(defer, { ...base, keyPrefix: uniquePrefix('allow'), rateLimit: { onStoreError: 'allow' } });
    const denyKey = await createKey(deny, { workspaceId: await createWorkspace(deny, 'deny'), name: 'deny', permissions: ['*'], rateLimit: { limit: 1000, windowSeconds: 60 } });
    const allowKey = await createKey(allow, { workspaceId: await createWorkspace(allow, 'allow'), name: 'allow', permissions: ['*'], rateLimit: { limit: 3, windowSeconds: 3600 } });
    expect((await timedGet(deny, denyKey.secret)).status).toBe(200);
    const up = [];
    for (let i = 0; i < 4; i++) up.push((await timedGet(allow, allowKey.secret)).status);
    expect(up).toEqual([200, 200, 200, 429]);

    await redis.kill();
    const denied: Timed[] = [];
    const allowed: Timed[] = [];
    for (let i = 0; i < 10; i++) {
      denied.push(await timedGet(deny, denyKey.secret));
      allowed.push(await timedGet(allow, allowKey.secret));
    }
    console.log(`deny: ${JSON.stringify(statusCounts(denied.map((r) => r.status)))}; allow: ${JSON.stringify(statusCounts(allowed.map((r) => r.status)))}; `
      + `slowest ${Math.max(...[...denied, ...allowed].map((r) => r.ms))} ms`);
    for (const r of denied) {
      expectError(r, 429, 'RATE_LIMITED');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(r.headers.get('ratelimit-limit')).toBe('1000');
    }
    expect(allowed.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(Math.max(...[...denied, ...allowed].map((r) => r.ms))).toBeLessThan(1_000);
    expect(await metricOf(deny, 'keygate_rate_limit_fallbacks_total')).toBeGreaterThanOrEqual(10);
    expect(await metricOf(allow, 'keygate_rate_limit_fallbacks_total')).toBeGreaterThanOrEqual(10);
  });

  it("splits a rate limit between two nodes with onStoreError 'local' while Redis is down: each admits its half, together no more than the limit", async () => {
    const limit = 20;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const opts = {
      events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('local-share'),
      propagation: { maxStalenessMs: 30_000 }, rateLimit: { onStoreError: 'local' as const },
    };
    const a = await startNode(defer, opts);
    const aStarted = Date.now();
    const b = await startNode(defer, opts);
    const k = await createKey(a, { workspaceId: await createWorkspace(a, 'local-share'), name: 'shared', permissions: ['*'], rateLimit: { limit, windowSeconds: 3600 } });
    expect((await timedGet(a, k.secret)).status).toBe(200);
    expect((await timedGet(b, k.secret)).status).toBe(200);
    // Nodes count each other through their reports (every 5 s): let A report once more after B started.
    await sleep(Math.max(0, aStarted + 5_500 - Date.now()));

    await redis.kill();
    const byNode = [];
    for (const node of [a, b]) {
      const statuses: number[] = [];
      for (let i = 0; i < limit; i++) statuses.push((await timedGet(node, k.secret)).status);
      byNode.push(statusCounts(statuses));
    }
    const admitted = byNode.reduce((n, c) => n + (c[200] ?? 0), 0);
    console.log(`local fallback, limit ${limit} over two nodes with Redis down: A ${JSON.stringify(byNode[0])}, B ${JSON.stringify(byNode[1])}, admitted ${admitted}`);
    for (const c of byNode) {
      expect(c[200] ?? 0, 'each node admits its share').toBeGreaterThan(0);
      expect(c[429] ?? 0, 'each node refuses beyond its share').toBeGreaterThan(0);
    }
    expect(admitted).toBeLessThanOrEqual(limit);
    expect(admitted).toBeGreaterThanOrEqual(limit / 2);
  });

  it('keeps every request under 1 s while Redis hangs (SIGSTOP), refuses admin writes with 503, and recovers after it resumes', async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const kg = await startNode(defer, {
      events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('pause'),
      propagation: { maxStalenessMs: 30_000 }, rateLimit: { onStoreError: 'local' },
    });
    const ws = await createWorkspace(kg, 'pause');
    const k = await createKey(kg, { workspaceId: ws, name: 'busy', permissions: ['*'], rateLimit: { limit: 1000, windowSeconds: 60 } });
    const unseen = await createKey(kg, { workspaceId: ws, name: 'never-used-before-the-hang', permissions: ['*'] });
    expect((await timedGet(kg, k.secret)).status).toBe(200);

    let stop = false;
    const load = steady(kg, k.secret, () => stop, 2, 10);
    await sleep(300);
    const fallbacksBefore = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');
    redis.pause();
    defer(() => { if (redis.running) redis.resume(); });
    const pausedAt = Date.now();
    const writeStarted = Date.now();
    const write = await kg.admin('POST', '/v1/workspaces', { name: 'while-hung' });
    const writeMs = Date.now() - writeStarted;
    const unseenRes = await timedGet(kg, unseen.secret);
    await sleep(Math.max(0, 2_000 - (Date.now() - pausedAt)));
    stop = true;
    const responses = await load;
    const fallbacksDuring = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');

    const afterPause = responses.filter((r) => r.startedAt >= pausedAt);
    const maxMs = Math.max(...afterPause.map((r) => r.ms));
    console.log(`hang: ${afterPause.length} requests while hung, ${JSON.stringify(statusCounts(afterPause.map((r) => r.status)))}, `
      + `slowest ${maxMs} ms; admin write ${write.status} after ${writeMs} ms; unseen key ${unseenRes.status} after ${unseenRes.ms} ms; fallbacks ${fallbacksBefore} → ${fallbacksDuring}`);
    expect(alive(kg)).toBe(true);
    expect(afterPause.length).toBeGreaterThan(20);
    expect(statusCounts(afterPause.map((r) => r.status))).toEqual({ 200: afterPause.length });
    expect(maxMs, 'a hung Redis adds no seconds to a request').toBeLessThan(1_000);
    expect(fallbacksDuring).toBeGreaterThan(fallbacksBefore);
    expectError(write, 503, 'STORE_UNAVAILABLE');
    expectError(unseenRes, 503, 'STORE_UNAVAILABLE');
    expect(unseenRes.ms).toBeLessThan(1_000);

    redis.resume();
    const resumedAt = Date.now();
    const recovered = await untilAdminWrites(kg, resumedAt, 5_000);
    console.log(`hang: admin writes answered 201 again ${recovered.ms} ms after Redis resumed`);
    expect(recovered.ok).toBe(true);
    expect((await timedGet(kg, unseen.secret)).status).toBe(200);
    const c1 = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');
    for (let i = 0; i < 20; i++) expect((await timedGet(kg, k.secret)).status).toBe(200);
    expect(await metricOf(kg, 'keygate_rate_limit_fallbacks_total')).toBe(c1);
  });
});

describe.skipIf(!requireRedis())('the store.timeoutMs bound while Redis hangs', () => {
  const defer = useCleanup();

  it('answers every request within store.timeoutMs (200 ms) + 150 ms while a single Redis hangs (SIGSTOP): cached keys 200, unseen keys and unseen tokens 503, rate-limited keys 200 on the local fallback (regression: calls queued behind a stuck batch waited twice the bound)', async () => {
    const timeoutMs = 200;
    const margin = 150;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const kg = await startNode(defer, {
      events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('bound'), store: { timeoutMs },
      propagation: { maxStalenessMs: 30_000 }, rateLimit: { onStoreError: 'local' },
    });
    const ws = await createWorkspace(kg, 'bound');
    const cached = await createKey(kg, { workspaceId: ws, name: 'cached', permissions: ['*'] });
    // A limit of 1 000 or less is decided by Redis for every request (no headroom); per second,
    // so the local fallback never refuses this load: 4 loops pausing 5 ms send at most 800 a
    // second however fast the machine answers (with 1 ms pauses a fast one passed 1 000).
    const limited = await createKey(kg, { workspaceId: ws, name: 'limited', permissions: ['*'], rateLimit: { limit: 1000, windowSeconds: 1 } });
    const unseen = await createKey(kg, { workspaceId: ws, name: 'never-used-before-the-hang', permissions: ['*'] });
    // A token finds its key's current state by id: never used before the hang, it asks Redis.
    const token = await mintToken(kg, (await createKey(kg, { workspaceId: ws, name: 'token', permissions: ['*'] })).secret);
    expect((await timedGet(kg, cached.secret)).status).toBe(200);
    expect((await timedGet(kg, limited.secret)).status).toBe(200);
    const tokenGets = async (): Promise<Timed[]> => {
      const out: Timed[] = [];
      while (!stop) {
        const startedAt = Date.now();
        const res = await gw(kg, '/v1/events', { headers: bearer(token) });
        out.push({ ...res, startedAt, ms: Date.now() - startedAt });
        await sleep(1);
      }
      return out;
    };

    let stop = false;
    let hungAt = Infinity;
    const started = Date.now();
    // Requests already on their way when Redis stops, and more arriving while the first calls
    // wait: the rate limit for each, the lookup for the unseen key.
    const loads = [
      steady(kg, limited.secret, () => stop, 4, 5),
      steady(kg, cached.secret, () => stop, 1, 5),
      (async () => {
        while (Date.now() < hungAt + 50) await sleep(5);
        return steady(kg, unseen.secret, () => stop, 2, 1);
      })(),
      (async () => {
        while (Date.now() < hungAt + 50) await sleep(5);
        return tokenGets();
      })(),
    ];
    await sleep(200);
    const fallbacksBefore = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');
    redis.pause();
    defer(() => { if (redis.running) redis.resume(); });
    hungAt = Date.now();
    // Long enough for the circuit breaker to let a trial call through (and fail) once or twice.
    await sleep(2_500);
    stop = true;
    const [limitedRes, cachedRes, unseenRes, tokenRes] = await Promise.all(loads);
    const fallbacksDuring = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');

    const during = (rs: Timed[]): Timed[] => rs.filter((r) => r.startedAt >= hungAt);
    const slowest = (rs: Timed[]): number => Math.max(0, ...rs.map((r) => r.ms));
    const [l, c, u, t] = [during(limitedRes!), during(cachedRes!), during(unseenRes!), during(tokenRes!)];
    console.log(`bound: hung after ${hungAt - started} ms; while hung, limited ${JSON.stringify(statusCounts(l.map((r) => r.status)))} slowest ${slowest(l)} ms, `
      + `cached ${JSON.stringify(statusCounts(c.map((r) => r.status)))} slowest ${slowest(c)} ms, unseen ${JSON.stringify(statusCounts(u.map((r) => r.status)))} slowest ${slowest(u)} ms, `
      + `token ${JSON.stringify(statusCounts(t.map((r) => r.status)))} slowest ${slowest(t)} ms; fallbacks ${fallbacksBefore} → ${fallbacksDuring}`);
    expect(alive(kg)).toBe(true);
    expect(l.length).toBeGreaterThan(20);
    expect(u.length).toBeGreaterThan(10);
    expect(statusCounts(l.map((r) => r.status))).toEqual({ 200: l.length });
    expect(statusCounts(c.map((r) => r.status))).toEqual({ 200: c.length });
    for (const r of u) expectError(r, 503, 'STORE_UNAVAILABLE');
    expect(t.length).toBeGreaterThan(10);
    for (const r of t) expectError(r, 503, 'STORE_UNAVAILABLE');
    expect(fallbacksDuring).toBeGreaterThan(fallbacksBefore);
    expect(slowest(l), 'a rate-limited request waits at most store.timeoutMs for Redis').toBeLessThanOrEqual(timeoutMs + margin);
    expect(slowest(u), 'an unseen key waits at most store.timeoutMs for its lookup').toBeLessThanOrEqual(timeoutMs + margin);
    expect(slowest(t), "a token waits at most store.timeoutMs for its key's state").toBeLessThanOrEqual(timeoutMs + margin);
    expect(slowest(c)).toBeLessThanOrEqual(timeoutMs + margin);

    redis.resume();
    const { res, ok } = await untilStatus(kg, unseen.secret, 200, Date.now(), 5_000, 20);
    expect(ok, `the unseen key still answered ${res.status} ${res.text}`).toBe(true);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    const c1 = await metricOf(kg, 'keygate_rate_limit_fallbacks_total');
    for (let i = 0; i < 10; i++) expect((await timedGet(kg, limited.secret)).status).toBe(200);
    expect(await metricOf(kg, 'keygate_rate_limit_fallbacks_total')).toBe(c1);
  });
});

describe.skipIf(!requireRedis())('clients that leave while a request waits on Redis', () => {
  const defer = useCleanup();

  it('forwards nothing for them, counts them as closed, and keeps serving and stopping promptly', async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const node = await startNode(defer, { events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('leave') });
    const ws = await createWorkspace(node, 'leave');
    const k = await createKey(node, { workspaceId: ws, name: 'limited', permissions: ['*'], rateLimit: { limit: 1_000, windowSeconds: 60 } });
    expect((await timedGet(node, k.secret)).status).toBe(200);
    const before = events.requests.length;

    // The rate-limit call hangs while Redis is paused; the clients give up meanwhile.
    redis.pause();
    const { connect } = await import('node:net');
    const url = new URL(node.gatewayUrl!);
    const sockets = Array.from({ length: 10 }, () => {
      const s = connect(Number(url.port), url.hostname);
      s.on('error', () => undefined);
      s.write(`GET /v1/events HTTP/1.1\r\nhost: x\r\nx-api-key: ${k.secret}\r\n\r\n`);
      return s;
    });
    await sleep(50);
    for (const s of sockets) s.destroy();
    await sleep(50);
    redis.resume();
    await sleep(500);

    expect(events.requests.length).toBe(before);
    expect(await metricOf(node, 'keygate_requests_total', { outcome: 'CLIENT_CLOSED' })).toBe(10);
    expect((await timedGet(node, k.secret)).status).toBe(200);
    const stopping = Date.now();
    expect(await node.stop()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(3_000);
  });
});
