import { beforeAll, describe, expect, it } from 'vitest';
import { redisCommand, requireRedis, startRedis, startTcpProxy } from './support/redis-server.js';
import { createKey, createWorkspace, expectError, sleep } from './support/admin.js';
import { metricSum, scrape } from './support/gateway.js';
import type { Keygate } from './support/keygate.js';
import { startNode, timedGet, uniquePrefix, untilStatus, useCleanup } from './support/redis-nodes.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
beforeAll(() => {
  ({ events, eventsTest } = pair);
});

/** Polls `GET /v1/keys/{id}` until it answers 200 (the node reconnected) or `timeoutMs`. */
async function untilKeyReadable(kg: Keygate, id: string, timeoutMs: number): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  for (;;) {
    const res = await kg.admin('GET', `/v1/keys/${id}`);
    if (res.status === 200 || Date.now() - started > timeoutMs) return { ...res, ms: Date.now() - started };
    await sleep(100);
  }
}

describe.skipIf(!requireRedis())('keys on Redis with appendonly and appendfsync always', () => {
  const defer = useCleanup();

  for (const how of ['stopped (SIGTERM)', 'killed (SIGKILL)'] as const) {
    it(`keeps a key answered 201 when Redis is ${how} and restarted: the running node and a fresh node authenticate it`, async () => {
      const redis = await startRedis({ appendonly: true, appendfsync: 'always' });
      defer(() => redis.cleanup());
      const keyPrefix = uniquePrefix('aof');
      const opts = { events, eventsTest, url: redis.url, keyPrefix, propagation: { maxStalenessMs: 30_000 } };
      const a = await startNode(defer, opts);
      const ws = await createWorkspace(a, 'aof');
      // Never used before the restart: no node has it cached, so it must come from Redis.
      const k = await createKey(a, { workspaceId: ws, name: 'durable', permissions: ['*'] });

      if (how === 'stopped (SIGTERM)') await redis.stop();
      else await redis.kill();
      await redis.restart();

      const got = await untilKeyReadable(a, k.key.id, 5_000);
      console.log(`aof (${how}): GET /v1/keys/{id} on the running node answered ${got.status} ${got.ms} ms after the restart`);
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      expect(got.body).toMatchObject({ id: k.key.id, name: 'durable', status: 'active' });
      const { res, ok } = await untilStatus(a, k.secret, 200, Date.now(), 3_000, 50);
      expect(ok, `the running node answered ${res.status} ${res.text}`).toBe(true);

      const fresh = await startNode(defer, opts);
      expect((await timedGet(fresh, k.secret)).status).toBe(200);
      const viaFresh = await fresh.admin('GET', `/v1/keys/${k.key.id}`);
      expect(viaFresh.status).toBe(200);
      expect(viaFresh.body.version).toBe(k.key.version);
    });
  }

  it('keeps a DELETE answered 204 when Redis is killed right after it and restarted: no node accepts the key', async () => {
    const redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    defer(() => redis.cleanup());
    const opts = { events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('aof-delete'), propagation: { maxStalenessMs: 30_000 } };
    const a = await startNode(defer, opts);
    const ws = await createWorkspace(a, 'aof-delete');
    const k = await createKey(a, { workspaceId: ws, name: 'deleted', permissions: ['*'] });
    expect((await a.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    await redis.kill();
    await redis.restart();
    const fresh = await startNode(defer, opts);
    expectError(await timedGet(fresh, k.secret), 401, 'UNAUTHENTICATED');
    expectError(await fresh.admin('GET', `/v1/keys/${k.key.id}`), 404, 'KEY_NOT_FOUND');
  });
});

describe.skipIf(!requireRedis())('nodes whose Redis comes back with less than they applied', () => {
  const defer = useCleanup();

  it('stops a key deleted after Redis restarted empty within maxStalenessMs, on the node that deleted it and on the other one', async () => {
    const maxStalenessMs = 2_000;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const opts = { events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('empty'), propagation: { maxStalenessMs } };
    const a = await startNode(defer, opts);
    const b = await startNode(defer, opts);
    const ws = await createWorkspace(a, 'before');
    const before = await createKey(a, { workspaceId: ws, name: 'before', permissions: ['*'] });
    // Some history, so the store version before the loss is well above what follows it.
    for (let i = 0; i < 10; i++) expect((await a.admin('PATCH', `/v1/keys/${before.key.id}`, { description: `v${i}` })).status).toBe(200);

    // Redis loses everything (no AOF, no RDB) and comes back.
    await redis.kill();
    await redis.restart();
    let ws2: string | null = null;
    for (let i = 0; i < 50 && ws2 === null; i++) {
      const res = await a.admin('POST', '/v1/workspaces', { name: 'after' });
      if (res.status === 201) ws2 = res.body.id as string;
      else await sleep(100);
    }
    expect(ws2, 'admin writes work again').not.toBeNull();
    // Give both nodes time to reconnect to the change feed.
    await sleep(1_500);
    const k = await createKey(a, { workspaceId: ws2!, name: 'after', permissions: ['*'] });
    expect((await timedGet(a, k.secret)).status).toBe(200);
    expect((await timedGet(b, k.secret)).status).toBe(200);
    expect((await a.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const committed = Date.now();
    const results = await Promise.all([a, b].map((node) => untilStatus(node, k.secret, 401, committed, maxStalenessMs + 1_000, 10)));
    for (const [i, { res, ms, ok }] of results.entries()) {
      console.log(`empty restart: DELETE enforced on ${i === 0 ? 'A (deleted it)' : 'B'}: ${ok ? `after ${ms} ms` : `not within ${ms} ms (still ${res.status})`}`);
    }
    for (const { res, ms, ok } of results) {
      expect(ok, `still answered ${res.status} ${ms} ms after the delete`).toBe(true);
      expect(ms).toBeLessThan(maxStalenessMs + 300);
    }
    // The key Redis lost is gone everywhere too.
    expectError(await timedGet(b, before.secret), 401, 'UNAUTHENTICATED');
  });

  // A Redis restored from a snapshot that lacks the last write (or a replica that lagged by one)
  // comes back one version behind; the next write takes that same version number again. A node
  // that had applied the lost write must notice (each commit names the one before it) rather
  // than keep serving a deleted key from its cache past maxStalenessMs.
  it('stops a key deleted after Redis came back from a snapshot that lacks the last write, within maxStalenessMs, on a node that had applied that write', async () => {
    const maxStalenessMs = 2_000;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const proxy = await startTcpProxy(redis.port);
    defer(() => proxy.close());
    const keyPrefix = uniquePrefix('snapshot');
    const base = { events, eventsTest, keyPrefix, propagation: { maxStalenessMs } };
    const a = await startNode(defer, { ...base, url: redis.url });
    const b = await startNode(defer, { ...base, url: proxy.url });
    const ws = await createWorkspace(a, 'snapshot');
    const k = await createKey(a, { workspaceId: ws, name: 'deleted-after-the-restore', permissions: ['*'] });
    const other = await createKey(a, { workspaceId: ws, name: 'changed-after-the-snapshot', permissions: ['*'] });
    expect((await timedGet(b, k.secret)).status).toBe(200);

    // A snapshot on disk, then one more write that B applies and the snapshot lacks.
    expect(await redisCommand(redis.port, ['SAVE'])).toBe('OK');
    const versionOnB = async (): Promise<number> => metricSum(await scrape(b), 'keygate_store_version');
    const snapshotVersion = await versionOnB();
    expect((await a.admin('PATCH', `/v1/keys/${other.key.id}`, { description: 'lost' })).status).toBe(200);
    let applied = snapshotVersion;
    for (let i = 0; i < 100 && applied <= snapshotVersion; i++) {
      await sleep(20);
      applied = await versionOnB();
    }
    expect(applied, 'B applied the write the snapshot lacks').toBe(snapshotVersion + 1);

    // B is cut off while Redis crashes and comes back from the snapshot, and the key is deleted.
    proxy.cut();
    await redis.kill();
    await redis.restart();
    let deleted = 0;
    for (let i = 0; i < 50 && deleted !== 204; i++) {
      deleted = (await a.admin('DELETE', `/v1/keys/${k.key.id}`)).status;
      if (deleted !== 204) await sleep(100);
    }
    expect(deleted, 'the DELETE is answered 204 once Redis is back').toBe(204);
    const committed = Date.now();
    proxy.restore();

    const { res, ms, ok } = await untilStatus(b, k.secret, 401, committed, maxStalenessMs + 2_000, 20);
    console.log(`snapshot restore: DELETE enforced on B: ${ok ? `after ${ms} ms` : `not within ${ms} ms (still ${res.status})`}; `
      + `store version in the snapshot ${snapshotVersion}, applied by B before the crash ${applied}, applied by B now ${await versionOnB()}`);
    expect(ok, `B still answered ${res.status} ${ms} ms after the delete`).toBe(true);
    expectError(res, 401, 'UNAUTHENTICATED');
    expect(ms).toBeLessThan(maxStalenessMs + 300);
  });
});
