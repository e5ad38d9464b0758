// keygate on the Redis store, in one run:
//   1. the key path with a Redis-backed rate limit against the same key path without one, both
//      on the Redis store — with one key for every request, and with 64 keys taken in turn (so
//      requests arriving together belong to different keys) — plus the embedded store's key
//      path (with and without a rate limit) as a reference; alternating rounds, medians;
//   2. propagation across two nodes on the same Redis: a change made on node A's admin port,
//      timed until node B's gateway answers differently.
// Pinning (2 cores): every keygate process on core 0 (the system under test); this process
// (autocannon and the propagation poller), the upstream and the dedicated redis-server (all
// its threads) on core 1 — in production Redis runs on other hardware, so its CPU is kept
// off the gateway's core.
// Run: npm run build && npx tsx bench/redis.ts
// Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (5), BENCH_CONNECTIONS (64),
// BENCH_CHANGES (100), BENCH_KEYS (64).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Client } from 'undici';
import { redisCommand, startRedis, type RedisServer } from '../test/support/redis-server.js';
import {
  ADMIN_TOKEN, CORES, LOAD_CORE, SUT_CORE, adminCall, knobs, load, median, pinSelf, round3, startKeygate, startUpstream, stop, writeResults, type LoadResult, TICK, allPids, procStat, treeCpu, runMain,
} from './lib.js';

const { seconds: SECONDS, warmup: WARMUP, rounds: ROUNDS, connections: CONNECTIONS } = knobs({ seconds: 10, warmup: 5, rounds: 3, connections: 64 });
const CHANGES = Number(process.env.BENCH_CHANGES ?? 100);
const KEY_PREFIX = 'kgbench:';
/** High enough never to refuse: every request runs the whole script and increments. */
const NEVER_REFUSING = { limit: 100_000_000, windowSeconds: 60 };
/** Keys taken in turn in the many-keys scenarios (one per connection by default). */
const MANY_KEYS = Number(process.env.BENCH_KEYS ?? 64);
const ROUTES = [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }];

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;

// ---------------------------------------------------------------------------------------------
// CPU accounting: how much CPU each process (tree) and the whole machine used during a round,
// so the report can show Redis's cost per request and whether anything else was running.

/** Busy CPU seconds of the whole machine so far (every core). */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!;
  return (f.slice(0, 8).reduce((a, b) => a + b, 0) - idle) / TICK;
}

/** Busy CPU seconds of each core so far. */
function coreBusy(): number[] {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((l) => {
    const f = l.trim().split(/\s+/).slice(1).map(Number);
    return (f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / TICK;
  });
}

interface CpuSnapshot { at: number; machine: number; cores: number[]; ours: number; redis: number; sut: Map<number, number> }

function cpuSnapshot(redisPid: number, sutPids: number[]): CpuSnapshot {
  const snap: CpuSnapshot = {
    at: performance.now(),
    machine: machineBusy(),
    cores: coreBusy(),
    ours: treeCpu(process.pid, allPids()),
    redis: procStat(redisPid)?.cpu ?? 0,
    sut: new Map(sutPids.map((p) => [p, procStat(p)?.cpu ?? 0])),
  };
  return snap;
}

// ---------------------------------------------------------------------------------------------
// Keys and Redis counters

/** A key with a permission and a two-entry IP allowlist, as in `npm run bench`. */
async function createKey(admin: string, workspaceId: string, name: string, rateLimit: typeof NEVER_REFUSING | null): Promise<{ id: string; secret: string }> {
  const { key, secret } = await adminCall(admin, 'POST', '/v1/keys', {
    workspaceId, name, permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'], rateLimit,
  });
  return { id: key.id as string, secret: secret as string };
}

async function redisInfo(port: number, section: string): Promise<Map<string, string>> {
  const text = await redisCommand(port, ['INFO', section], 2_000);
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** Calls of each Redis command so far (INFO commandstats). */
async function commandCalls(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [k, v] of await redisInfo(port, 'commandstats')) {
    const m = /^calls=(\d+)/.exec(v);
    if (k.startsWith('cmdstat_') && m) out.set(k.slice(8), Number(m[1]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Part 1: throughput

/** `keys`: each request carries the next of these secrets in turn (instead of `headers`). */
interface Scenario { name: string; url: string; headers: Record<string, string>; keys?: string[]; pid: number }

const run = (s: Scenario, seconds: number): Promise<LoadResult> =>
  load(s.url, { connections: CONNECTIONS, seconds, headers: s.headers, keys: s.keys });
interface Round extends LoadResult {
  /** CPU seconds per 1000 requests: the keygate process, redis-server. */
  sutCpuPer1k: number; redisCpuPer1k: number;
  /** Redis commands per request (EVALSHA for the limiter, and everything else). */
  evalshaPerReq: number; commandsPerReq: number;
  /** Machine CPU not used by this benchmark's processes, in cores (other load). */
  foreignCores: number;
  /** How busy each core was (0–1): core 0 runs keygate, core 1 the load generator, upstream and Redis. */
  coreUse: number[];
}
type Row = Round & { name: string; rounds: Round[] };

async function measureAll(scenarios: Scenario[], redis: RedisServer): Promise<Row[]> {
  for (const s of scenarios) await run(s, WARMUP);
  const runs = new Map<string, Round[]>(scenarios.map((s) => [s.name, []]));
  const sutPids = scenarios.map((s) => s.pid);
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of scenarios) {
      const before = cpuSnapshot(redis.pid, sutPids);
      const callsBefore = await commandCalls(redis.port);
      const r = await run(s, SECONDS);
      const after = cpuSnapshot(redis.pid, sutPids);
      const callsAfter = await commandCalls(redis.port);
      const wall = (after.at - before.at) / 1000;
      const ours = after.ours - before.ours;
      const calls = (c: string): number => (callsAfter.get(c) ?? 0) - (callsBefore.get(c) ?? 0);
      const total = [...callsAfter.keys()].filter((c) => c !== 'info').reduce((a, c) => a + calls(c), 0);
      const n = Math.max(1, r.requests);
      const row: Round = {
        ...r,
        sutCpuPer1k: round3(((after.sut.get(s.pid) ?? 0) - (before.sut.get(s.pid) ?? 0)) / n * 1000),
        redisCpuPer1k: round3((after.redis - before.redis) / n * 1000),
        evalshaPerReq: round3(calls('evalsha') / n),
        commandsPerReq: round3(total / n),
        foreignCores: round3(Math.max(0, (after.machine - before.machine - ours) / wall)),
        coreUse: after.cores.map((c, i) => Number(((c - before.cores[i]!) / wall).toFixed(2))),
      };
      runs.get(s.name)!.push(row);
      process.stderr.write(`round ${round + 1} ${s.name}: ${r.rps} req/s, p99 ${r.p99} ms, non-2xx ${r.non2xx + r.errors}, `
        + `keygate ${row.sutCpuPer1k} s CPU/1k req, redis ${row.redisCpuPer1k} s CPU/1k req, evalsha/req ${row.evalshaPerReq}, cores busy ${row.coreUse.join(' / ')}, other load ${row.foreignCores} cores\n`);
    }
  }
  return scenarios.map((s) => {
    const list = runs.get(s.name)!;
    const mid = median(list.map((r) => r.rps));
    const pick = list.find((r) => r.rps === mid)!;
    return { name: s.name, ...pick, rounds: list };
  });
}

// ---------------------------------------------------------------------------------------------
// Part 2: propagation

interface Change { change: number; enabled: boolean; patchMs: number; fromSendMs: number; fromAckMs: number; polls: number }

/**
 * Disables and enables a key on node A, CHANGES times in turn, and for each polls node B's
 * gateway over one keep-alive connection (a request, then 1 ms of sleep) until it answers
 * what the change means: 403 KEY_DISABLED, then 200 again. Timed from the PATCH being sent
 * and from its answer (a negative delay from the answer: B saw the change before A replied).
 */
async function propagation(adminA: string, gatewayB: string, keyId: string, secret: string): Promise<Change[]> {
  const admin = new Client(adminA, { pipelining: 1 });
  const poller = new Client(gatewayB, { pipelining: 1 });
  const probe = async (): Promise<number> => {
    const res = await poller.request({ path: '/v1/events', method: 'GET', headers: { 'x-api-key': secret } });
    const body = await res.body.text();
    if (res.statusCode === 403 && !body.includes('KEY_DISABLED')) throw new Error(`B answered 403 without KEY_DISABLED: ${body}`);
    return res.statusCode;
  };
  const out: Change[] = [];
  try {
    if ((await probe()) !== 200) throw new Error('the propagation key does not pass on node B');
    for (let i = 0; i < CHANGES; i++) {
      const enabled = i % 2 === 1;
      const want = enabled ? 200 : 403;
      // A random pause, so changes land at every phase of B's blocking feed read.
      await sleep(10 + Math.random() * 40);
      let ackAt = 0;
      const sentAt = performance.now();
      const patch = admin.request({
        path: `/v1/keys/${keyId}`, method: 'PATCH', body: JSON.stringify({ enabled }),
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      }).then(async (res) => {
        await res.body.text();
        ackAt = performance.now();
        if (res.statusCode !== 200) throw new Error(`PATCH answered ${res.statusCode}`);
      });
      let polls = 0;
      let seenAt = 0;
      for (;;) {
        polls++;
        const status = await probe();
        if (status === want) { seenAt = performance.now(); break; }
        if (status !== (enabled ? 403 : 200)) throw new Error(`B answered ${status} during change ${i + 1}`);
        if (performance.now() - sentAt > 10_000) throw new Error(`change ${i + 1} did not reach node B within 10 s`);
        await sleep(1);
      }
      await patch;
      out.push({
        change: i + 1, enabled, polls,
        patchMs: round3(ackAt - sentAt), fromSendMs: round3(seenAt - sentAt), fromAckMs: round3(seenAt - ackAt),
      });
    }
  } finally {
    await admin.close();
    await poller.close();
  }
  return out;
}

function summary(xs: number[]): { p50: number; p99: number; max: number; min: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round3(quantile(s, 0.5)), p99: round3(quantile(s, 0.99)), max: round3(s[s.length - 1]!), min: round3(s[0]!) };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const redisVersion = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-redis-'));
  const procs: ChildProcess[] = [];
  let redis: RedisServer | null = null;
  const loadBefore = loadavg()[0]!;
  let rows: Row[];
  let changes: Change[];
  try {
    redis = await startRedis();
    execFileSync('taskset', ['-a', '-cp', LOAD_CORE, String(redis.pid)], { stdio: 'ignore' });
    const redisStore = { driver: 'redis', url: redis.url, keyPrefix: KEY_PREFIX };

    const upstream = await startUpstream();
    procs.push(upstream.proc);
    const upstreamPort = upstream.port;

    const a = await startKeygate(dir, 'node-a', { upstreamPort, store: redisStore, routes: ROUTES });
    procs.push(a.proc);
    const emb = await startKeygate(dir, 'embedded', { upstreamPort, store: { driver: 'embedded', path: join(dir, 'data') }, routes: ROUTES });
    procs.push(emb.proc);

    const wsA = await adminCall(a.admin, 'POST', '/v1/workspaces', { name: 'bench' });
    const limited = await createKey(a.admin, wsA.id, 'limited', NEVER_REFUSING);
    const unlimited = await createKey(a.admin, wsA.id, 'unlimited', null);
    const limitedMany: string[] = [];
    const unlimitedMany: string[] = [];
    for (let i = 0; i < MANY_KEYS; i++) {
      limitedMany.push((await createKey(a.admin, wsA.id, `limited-${i}`, NEVER_REFUSING)).secret);
      unlimitedMany.push((await createKey(a.admin, wsA.id, `unlimited-${i}`, null)).secret);
    }
    const wsE = await adminCall(emb.admin, 'POST', '/v1/workspaces', { name: 'bench' });
    const embLimited = await createKey(emb.admin, wsE.id, 'limited', NEVER_REFUSING);
    const embUnlimited = await createKey(emb.admin, wsE.id, 'unlimited', null);

    const url = (g: string): string => `${g}/v1/events`;
    rows = await measureAll([
      { name: 'redis, rate limit, one key', url: url(a.gateway), headers: { 'x-api-key': limited.secret }, pid: a.proc.pid! },
      { name: 'redis, no rate limit, one key', url: url(a.gateway), headers: { 'x-api-key': unlimited.secret }, pid: a.proc.pid! },
      { name: `redis, rate limit, ${MANY_KEYS} keys in turn`, url: url(a.gateway), headers: {}, keys: limitedMany, pid: a.proc.pid! },
      { name: `redis, no rate limit, ${MANY_KEYS} keys in turn`, url: url(a.gateway), headers: {}, keys: unlimitedMany, pid: a.proc.pid! },
      { name: 'embedded, rate limit (in process)', url: url(emb.gateway), headers: { 'x-api-key': embLimited.secret }, pid: emb.proc.pid! },
      { name: 'embedded, no rate limit', url: url(emb.gateway), headers: { 'x-api-key': embUnlimited.secret }, pid: emb.proc.pid! },
    ], redis);
    await stop(emb.proc);

    // Part 2: a second node on the same Redis and key prefix.
    const b = await startKeygate(dir, 'node-b', { upstreamPort, store: redisStore, routes: ROUTES });
    procs.push(b.proc);
    const prop = await createKey(a.admin, wsA.id, 'propagation', null);
    // B learns of the new key through the feed; wait until it lets the key through.
    for (let i = 0; ; i++) {
      const res = await fetch(url(b.gateway), { headers: { 'x-api-key': prop.secret } });
      await res.arrayBuffer();
      if (res.status === 200) break;
      if (i > 1_000) throw new Error('node B never accepted the propagation key');
      await sleep(5);
    }
    changes = await propagation(a.admin, b.gateway, prop.id, prop.secret);
  } finally {
    for (const p of procs.reverse()) await stop(p);
    await redis?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }

  // ---- Report
  const by = new Map(rows.map((r) => [r.name, r]));
  const lim = by.get('redis, rate limit, one key')!;
  const unl = by.get('redis, no rate limit, one key')!;
  const embUnl = by.get('embedded, no rate limit')!;
  const embLim = by.get('embedded, rate limit (in process)')!;
  const limMany = by.get(`redis, rate limit, ${MANY_KEYS} keys in turn`)!;
  const unlMany = by.get(`redis, no rate limit, ${MANY_KEYS} keys in turn`)!;
  const ratio = round3(lim.rps / unl.rps);
  const medianRatio = round3(median(lim.rounds.map((r, i) => r.rps / unl.rounds[i]!.rps)));
  const ratioMany = round3(limMany.rps / unlMany.rps);
  const medianRatioMany = round3(median(limMany.rounds.map((r, i) => r.rps / unlMany.rounds[i]!.rps)));
  const fromSend = summary(changes.map((c) => c.fromSendMs));
  const fromAck = summary(changes.map((c) => c.fromAckMs));
  const patch = summary(changes.map((c) => c.patchMs));
  const polls = summary(changes.map((c) => c.polls));
  const foreign = Math.max(...rows.flatMap((r) => r.rounds.map((x) => x.foreignCores)));

  const pad = (s: string | number, n: number): string => String(s).padStart(n);
  const lines = [
    `keygate Redis bench — ${new Date().toISOString()} — ${CORES} cores, node ${process.version}, ${redisVersion.split(' ').slice(0, 3).join(' ')}`,
    `${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS}s (median round shown); keygate on core ${SUT_CORE}; load generator, upstream and redis-server on core ${LOAD_CORE}`,
    '',
    '| scenario                              |  req/s | p50 ms | p99 ms | non-2xx | keygate CPU µs/req | redis CPU µs/req | EVALSHA/req | core 0 / core 1 busy | req/s per round |',
    '|---------------------------------------|-------:|-------:|-------:|--------:|------:|------:|-----:|------|-----------------|',
    ...rows.map((r) => `| ${r.name.padEnd(37)} | ${pad(r.rps, 6)} | ${pad(r.p50, 6)} | ${pad(r.p99, 6)} | ${pad(r.non2xx + r.errors, 7)} | ${pad((r.sutCpuPer1k * 1000).toFixed(0), 5)} | ${pad((r.redisCpuPer1k * 1000).toFixed(0), 5)} | ${pad(r.evalshaPerReq, 4)} | ${r.coreUse.map((c) => c.toFixed(2)).join(' / ')} | ${r.rounds.map((x) => x.rps).join(' / ')} |`),
    '',
    `redis limited / unlimited req/s, one key: ${ratio} (median of per-round ratios ${medianRatio}; target >= 0.85); p99 ${lim.p99} ms vs ${unl.p99} ms`,
    `redis limited / unlimited req/s, ${MANY_KEYS} keys: ${ratioMany} (median of per-round ratios ${medianRatioMany}); p99 ${limMany.p99} ms vs ${unlMany.p99} ms`,
    `redis unlimited / embedded unlimited: ${round3(unl.rps / embUnl.rps)}; embedded limited / unlimited: ${round3(embLim.rps / embUnl.rps)}`,
    `CPU not used by this benchmark's processes during the rounds (other load, steal included): up to ${foreign} cores (load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after)`,
    '',
    `propagation over ${changes.length} changes (PATCH enabled on node A -> node B's gateway answers 403 KEY_DISABLED / 200), ms:`,
    '| measured from            |   p50 |   p99 |   max |   min |',
    '|--------------------------|------:|------:|------:|------:|',
    `| PATCH sent               | ${pad(fromSend.p50, 5)} | ${pad(fromSend.p99, 5)} | ${pad(fromSend.max, 5)} | ${pad(fromSend.min, 5)} |`,
    `| PATCH answered by A      | ${pad(fromAck.p50, 5)} | ${pad(fromAck.p99, 5)} | ${pad(fromAck.max, 5)} | ${pad(fromAck.min, 5)} |`,
    `| (PATCH round trip on A)  | ${pad(patch.p50, 5)} | ${pad(patch.p99, 5)} | ${pad(patch.max, 5)} | ${pad(patch.min, 5)} |`,
    `polls of B per change: p50 ${polls.p50}, max ${polls.max}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  const file = writeResults('redis-', {
    at: new Date().toISOString(), node: process.version, redis: redisVersion, cores: CORES, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS,
    throughput: rows, ratios: { limitedVsUnlimited: ratio, medianRoundRatio: medianRatio, manyKeys: ratioMany, manyKeysMedianRoundRatio: medianRatioMany },
    propagation: { fromSend, fromAck, patch, polls, changes },
  });
  process.stdout.write(`results written to ${file}\n`);
}

runMain(main);
