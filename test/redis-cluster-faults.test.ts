import { beforeAll, describe, expect, it } from 'vitest';
import { redisCommand, requireRedis, startRedisCluster, type RedisClusterHandle } from './support/redis-server.js';
import { createKey, createWorkspace, sleep } from './support/admin.js';
import { gatewayConfig } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { alive, statusCounts, stopNode, timedGet, uniquePrefix, useCleanup } from './support/redis-nodes.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
beforeAll(() => {
  ({ events, eventsTest } = pair);
});

const TIMEOUT_MS = 200;
/** Room for a loaded 2-core machine on top of each bound. */
const MARGIN_MS = 150;
const ADMIN_TIMEOUT_MS = 2_000;

/** The port of the master serving `key`'s hash slot. */
async function masterOf(cluster: RedisClusterHandle, key: string): Promise<number> {
  const port = cluster.nodes[0]!.port;
  const slot = Number(await redisCommand(port, ['CLUSTER', 'KEYSLOT', key]));
  const nodes = await redisCommand(port, ['CLUSTER', 'NODES']);
  for (const line of nodes.split('\n')) {
    const [, addr, , , , , , , ...ranges] = line.split(' ');
    if (!addr) continue;
    for (const r of ranges) {
      const [from, to] = r.split('-').map(Number);
      if (slot >= from! && slot <= (to ?? from)!) return Number(addr.split('@')[0]!.split(':')[1]);
    }
  }
  throw new Error(`no master serves slot ${slot}`);
}

interface Timed { status: number; ms: number; startedAt: number; text: string }

/**
 * Starts a keygate on a fresh 3-master cluster with cached, rate-limited keys whose counters
 * lie on every master, kills (SIGKILL) or hangs (SIGSTOP) the master `pick` chooses, and for `runMs` sends
 * requests with those keys and admin writes; every response, timed.
 */
async function killAMaster(
  defer: (fn: () => unknown) => void,
  pick: (storeMaster: number, masters: number[]) => number,
  runMs: number,
  how: 'kill' | 'pause' = 'kill',
): Promise<{ kg: Keygate; dead: number; storeMaster: number; requests: Timed[]; writes: Timed[] }> {
  const cluster = await startRedisCluster(3);
  defer(() => cluster.cleanup());
  const keyPrefix = uniquePrefix('cluster');
  const base = gatewayConfig({ events, eventsTest, propagation: { maxStalenessMs: 30_000 } });
  const kg = await startKeygate({
    config: (dir) => ({
      ...base(dir),
      store: { driver: 'redis', cluster: cluster.urls, keyPrefix, timeoutMs: TIMEOUT_MS },
      rateLimit: { onStoreError: 'local' },
    }),
  });
  defer(() => stopNode(kg));
  const masters = cluster.nodes.map((n) => n.port);
  const storeMaster = await masterOf(cluster, `${keyPrefix}{store}:version`);
  const dead = pick(storeMaster, masters);

  // Keys until their rate-limit counters lie on every master (the dead one included).
  const ws = await createWorkspace(kg, 'cluster');
  const secrets: string[] = [];
  const covered = new Set<number>();
  for (let i = 0; (covered.size < masters.length || secrets.length < 6) && i < 60; i++) {
    const k = await createKey(kg, { workspaceId: ws, name: `k${i}`, permissions: ['*'], rateLimit: { limit: 100_000, windowSeconds: 60 } });
    covered.add(await masterOf(cluster, `${keyPrefix}rl:{${k.key.id}}:x`));
    secrets.push(k.secret);
  }
  expect(covered.size).toBe(masters.length);
  for (const s of secrets) expect((await timedGet(kg, s)).status).toBe(200);

  const node = cluster.nodes.find((n) => n.port === dead)!;
  if (how === 'kill') await node.kill();
  else {
    node.pause();
    defer(() => { if (node.running) node.resume(); });
  }
  const killedAt = Date.now();
  const requests: Timed[] = [];
  const writes: Timed[] = [];
  const until = killedAt + runMs;
  await Promise.all([
    ...[0, 1].map(async (loop) => {
      for (let i = loop; Date.now() < until; i++) {
        const r = await timedGet(kg, secrets[i % secrets.length]!);
        requests.push({ status: r.status, ms: r.ms, startedAt: r.startedAt, text: r.text });
        await sleep(5);
      }
    }),
    (async () => {
      while (Date.now() < until) {
        const startedAt = Date.now();
        const res = await kg.admin('POST', '/v1/workspaces', { name: 'during' });
        writes.push({ status: res.status, ms: Date.now() - startedAt, startedAt, text: JSON.stringify(res.body) });
        await sleep(50);
      }
    })(),
  ]);
  return { kg, dead, storeMaster, requests, writes };
}

function report(label: string, requests: Timed[], writes: Timed[]): void {
  console.log(`${label}: ${requests.length} requests ${JSON.stringify(statusCounts(requests.map((r) => r.status)))}, `
    + `slowest ${Math.max(...requests.map((r) => r.ms))} ms; ${writes.length} admin writes ${JSON.stringify(statusCounts(writes.map((r) => r.status)))}, `
    + `slowest ${Math.max(...writes.map((r) => r.ms))} ms`);
}

describe.skipIf(!requireRedis())('a Redis Cluster with a master down', () => {
  const defer = useCleanup();

  it('keeps requests with cached keys within store.timeoutMs and admin writes within 2 s while a master without the store is down, and logs that master as the fault (regression)', async () => {
    const { kg, dead, requests, writes } = await killAMaster(defer, (store, masters) => masters.find((p) => p !== store)!, 4_000);
    report('master without the store killed', requests, writes);
    expect(alive(kg)).toBe(true);
    expect(requests.length).toBeGreaterThan(20);
    for (const r of requests) expect(r.status, r.text).toBe(200);
    expect(Math.max(...requests.map((r) => r.ms)), 'a request with a cached key waited past store.timeoutMs').toBeLessThanOrEqual(TIMEOUT_MS + MARGIN_MS);
    for (const w of writes) expect([201, 503], w.text).toContain(w.status);
    expect(Math.max(...writes.map((r) => r.ms)), 'an admin write waited past its 2 s').toBeLessThanOrEqual(ADMIN_TIMEOUT_MS + MARGIN_MS);
    // The store's own master is up: its writes go through until the cluster declares itself down.
    expect(writes[0]!.status, writes[0]!.text).toBe(201);
    const logs = kg.output.join('\n');
    expect(logs, 'the log names the unreachable node').toContain(`127.0.0.1:${dead}`);
  });

  it('keeps requests with cached keys within store.timeoutMs and refuses admin writes within 2 s while the master holding the store is down (regression)', async () => {
    const { kg, dead, requests, writes } = await killAMaster(defer, (store) => store, 4_000);
    report('master holding the store killed', requests, writes);
    expect(alive(kg)).toBe(true);
    expect(requests.length).toBeGreaterThan(20);
    for (const r of requests) expect(r.status, r.text).toBe(200);
    expect(Math.max(...requests.map((r) => r.ms)), 'a request with a cached key waited past store.timeoutMs').toBeLessThanOrEqual(TIMEOUT_MS + MARGIN_MS);
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(w.status, w.text).toBe(503);
    expect(Math.max(...writes.map((r) => r.ms)), 'an admin write waited past its 2 s').toBeLessThanOrEqual(ADMIN_TIMEOUT_MS + MARGIN_MS);
    expect(kg.output.join('\n'), 'the log names the unreachable node').toContain(`127.0.0.1:${dead}`);
  });

  it('keeps requests with cached keys within store.timeoutMs and admin writes within 2 s while a master without the store hangs (SIGSTOP) (regression)', async () => {
    const { kg, requests, writes } = await killAMaster(defer, (store, masters) => masters.find((p) => p !== store)!, 4_000, 'pause');
    report('master without the store hung', requests, writes);
    expect(alive(kg)).toBe(true);
    expect(requests.length).toBeGreaterThan(20);
    for (const r of requests) expect(r.status, r.text).toBe(200);
    expect(Math.max(...requests.map((r) => r.ms)), 'a request with a cached key waited past store.timeoutMs').toBeLessThanOrEqual(TIMEOUT_MS + MARGIN_MS);
    for (const w of writes) expect([201, 503], w.text).toContain(w.status);
    expect(Math.max(...writes.map((r) => r.ms)), 'an admin write waited past its 2 s').toBeLessThanOrEqual(ADMIN_TIMEOUT_MS + MARGIN_MS);
    expect(writes[0]!.status, writes[0]!.text).toBe(201);
  });
});
