// Memory: (1) RSS of a keygate process over a long run at full load on the key path — it must
// stay flat once the process is in its steady state: the warm-up lasts until the gateway's
// first full (major) GC under load, read from its own metrics, since V8 lets the old
// generation grow to a generous first limit before it, then sets the limit from what is
// live (the RSS during the warm-up is reported too); (2) what 100 000 keys cost a gateway
// process on the embedded store (every record is held in the process) before and after
// every key has been used once (the key cache full),
// against an empty store; (3) how long a compaction of that store takes and how long it holds
// the event loop. keygate is pinned to core 0, this process, the load and the upstream to core 1.
//   npm run build && npx tsx bench/memory.ts
// Knobs: BENCH_MEMORY_SECONDS (60), BENCH_WARMUP_SECONDS (10, the least; at most 240 s while
// waiting for the first major GC), BENCH_CONNECTIONS (64),
// BENCH_MEMORY_KEYS (100000), BENCH_SETTLE_SECONDS (15), BENCH_SKIP_REDIS=1.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Pool, WebSocket } from 'undici';
import type { KeyRecord } from '../src/domain/api-key.js';
import { newKeyId, newWorkspaceId } from '../src/domain/ids.js';
import { generateSecret, hashSecret } from '../src/domain/secret.js';
import { EmbeddedStore } from '../src/store/embedded/embedded-store.js';
import { RedisConnection } from '../src/store/redis/connection.js';
import { RedisStore } from '../src/store/redis/redis-store.js';
import type { KeyStore, WriteOp } from '../src/store/types.js';
import { keyRecord } from '../test/support/fixtures.js';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import {
  ADMIN_TOKEN, CORES, LOAD_CORE, PEPPER, adminCall, knobs, load, pinSelf, round3, rssMiB, startKeygate, startUpstream, stop, writeResults, type Keygate, runMain,
} from './lib.js';

const K = knobs({ seconds: 60, warmup: 10, rounds: 1, connections: 64 });
const SECONDS = Number(process.env.BENCH_MEMORY_SECONDS ?? K.seconds);
const KEYS = Number(process.env.BENCH_MEMORY_KEYS ?? 100_000);
const SKIP_REDIS = process.env.BENCH_SKIP_REDIS === '1';
const SETTLE = Number(process.env.BENCH_SETTLE_SECONDS ?? 15);
const ROUTES = [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }];
const mib = (x: number | null): number => round3(x ?? Number.NaN);

/** RSS of `pid` sampled every second while `work` runs. */
async function sampleWhile(pid: number, work: Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  let done = false;
  void work.finally(() => { done = true; });
  while (!done) {
    await sleep(1_000);
    if (!done) samples.push(mib(rssMiB(pid)));
  }
  await work;
  return samples;
}

/** How many major GCs the gateway has run, from its Prometheus metrics. */
async function majorGcs(admin: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('keygate_nodejs_gc_duration_seconds_count{') && l.includes('kind="major"'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** One key as the admin API makes it: a permission, a two-entry IP allowlist, a 90-day expiry. */
const record = (workspaceId: string, i: number, secret: string, now: string, expires: string): KeyRecord => keyRecord({
  id: newKeyId(), workspaceId, name: `key-${i}`, prefix: secret.slice(0, 12), permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'],
  createdAt: now, updatedAt: now, expiresAt: expires, secretHash: hashSecret(PEPPER, secret), seq: 0,
});

/** Writes KEYS keys into `store` in batches of 1 000 (one commit each); returns their secrets. */
async function seed(store: KeyStore): Promise<string[]> {
  const workspaceId = newWorkspaceId();
  await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: { id: workspaceId, name: 'memory', createdAt: new Date().toISOString() } } }], audit: [] });
  const secrets: string[] = [];
  for (let i = 0; i < KEYS;) {
    const ops: WriteOp[] = [];
    for (const end = Math.min(KEYS, i + 1_000); i < end; i++) {
      const { secret } = generateSecret('live');
      secrets.push(secret);
      // Distinct times, as keys made one by one have.
      const created = new Date(Date.now() - (KEYS - i) * 1_000).toISOString();
      const expires = new Date(Date.now() + 90 * 86_400_000 + i * 1_000).toISOString();
      ops.push({ op: 'put', entity: { type: 'key', value: record(workspaceId, i, secret, created, expires) } });
    }
    await store.commit({ ops, audit: [] });
  }
  return secrets;
}

/** An embedded store with KEYS keys at `path`, and how long compacting it takes and holds the event loop. */
async function seedEmbedded(path: string): Promise<{ secrets: string[]; compactMs: number; compactMaxBlockMs: number }> {
  const store = new EmbeddedStore({ path, logger: pino({ level: 'silent' }) });
  await store.open();
  const secrets = await seed(store);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const c0 = performance.now();
  await store.compactNow();
  const compactMs = performance.now() - c0;
  delay.disable();
  await store.close();
  return { secrets, compactMs, compactMaxBlockMs: delay.max / 1e6 };
}

async function seedRedis(url: string, keyPrefix: string): Promise<string[]> {
  const logger = pino({ level: 'silent' });
  const connection = new RedisConnection({ url, keyPrefix, logger, fastTimeoutMs: 5_000 });
  const store = new RedisStore({ connection, logger, feedBlockMs: 200 });
  await store.open();
  try {
    return await seed(store);
  } finally {
    await store.close();
  }
}

/** Sends one request per secret over 64 connections; returns how many were not 200. */
async function useEveryKey(gateway: string, secrets: readonly string[]): Promise<number> {
  const pool = new Pool(gateway, { connections: K.connections, pipelining: 1 });
  let next = 0;
  let failed = 0;
  await Promise.all(Array.from({ length: K.connections }, async () => {
    while (next < secrets.length) {
      const secret = secrets[next++]!;
      const res = await pool.request({ path: '/v1/events', method: 'GET', headers: { 'x-api-key': secret } });
      await res.body.dump();
      if (res.statusCode !== 200) failed++;
    }
  }));
  await pool.close();
  return failed;
}

/** A free TCP port on loopback (for the inspector). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A full garbage collection in the gateway, through its inspector (only this bench turns it on). */
async function collectGarbage(inspectPort: number): Promise<void> {
  const [target] = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.addEventListener('open', resolve); ws.addEventListener('error', reject); });
  let id = 0;
  const call = (method: string): Promise<void> => new Promise((resolve) => {
    const mine = ++id;
    const onMessage = (e: { data: unknown }): void => {
      if ((JSON.parse(String(e.data)) as { id?: number }).id === mine) {
        ws.removeEventListener('message', onMessage);
        resolve();
      }
    };
    ws.addEventListener('message', onMessage);
    ws.send(JSON.stringify({ id: mine, method }));
  });
  await call('HeapProfiler.collectGarbage');
  await call('HeapProfiler.collectGarbage');
  ws.close();
}

interface Reading { rss: number; heap: number; rssAfterGc: number; heapAfterGc: number }

/** RSS and V8 heap in use after SETTLE quiet seconds, then again after a full GC. */
async function settled(kg: Keygate & { inspectPort: number }): Promise<Reading> {
  await sleep(SETTLE * 1_000);
  const heapUsed = async (): Promise<number> => {
    const res = await fetch(`${kg.admin}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const m = /^keygate_nodejs_heap_size_used_bytes (\S+)$/m.exec(await res.text());
    return m ? round3(Number(m[1]) / 1_048_576) : Number.NaN;
  };
  const rss = mib(rssMiB(kg.proc.pid!));
  const heap = await heapUsed();
  await collectGarbage(kg.inspectPort);
  await sleep(1_000);
  return { rss, heap, rssAfterGc: mib(rssMiB(kg.proc.pid!)), heapAfterGc: await heapUsed() };
}

interface KeysCost {
  store: string; keys: number; rssEmptyMiB: number; rssLoadedMiB: number; rssAllUsedMiB: number; rssSecondPassMiB: number;
  heapEmptyMiB: number; heapLoadedMiB: number; heapAllUsedMiB: number; heapSecondPassMiB: number;
  /** The same four after a full GC: what the keys really hold. */
  afterGc: { rss: number[]; heap: number[] };
  loadedBytesPerKey: number; usedBytesPerKey: number; firstUseRps: number; non200: number; startSeconds: number;
}

/**
 * RSS of a gateway on an empty store, then on one holding KEYS keys: after start, after every
 * key was used once (the key cache full) and after a second pass (all cache hits).
 */
async function keysCost(storeName: string, start: (name: string) => Promise<Keygate & { inspectPort: number }>, seedFull: () => Promise<string[]>): Promise<KeysCost> {
  const empty = await start(`${storeName}-empty`);
  await adminCall(empty.admin, 'POST', '/v1/workspaces', { name: 'memory' });
  const rssEmpty = await settled(empty);
  await stop(empty.proc);
  process.stderr.write(`${storeName}: seeding ${KEYS} keys…\n`);
  const secrets = await seedFull();
  const t0 = performance.now();
  const full = await start(`${storeName}-full`);
  const startSeconds = (performance.now() - t0) / 1000;
  const rssLoaded = await settled(full);
  process.stderr.write(`${storeName}: using every key once, then again…\n`);
  const u0 = performance.now();
  const failed = await useEveryKey(full.gateway, secrets);
  const firstUseRps = Math.round(secrets.length / ((performance.now() - u0) / 1000));
  const rssUsed = await settled(full);
  const failedAgain = await useEveryKey(full.gateway, secrets);
  const rssAgain = await settled(full);
  await stop(full.proc);
  return {
    store: storeName, keys: KEYS, rssEmptyMiB: rssEmpty.rss, rssLoadedMiB: rssLoaded.rss, rssAllUsedMiB: rssUsed.rss, rssSecondPassMiB: rssAgain.rss,
    heapEmptyMiB: rssEmpty.heap, heapLoadedMiB: rssLoaded.heap, heapAllUsedMiB: rssUsed.heap, heapSecondPassMiB: rssAgain.heap,
    afterGc: { rss: [rssEmpty, rssLoaded, rssUsed, rssAgain].map((r) => r.rssAfterGc), heap: [rssEmpty, rssLoaded, rssUsed, rssAgain].map((r) => r.heapAfterGc) },
    loadedBytesPerKey: Math.round(((rssLoaded.rss - rssEmpty.rss) * 1_048_576) / KEYS),
    usedBytesPerKey: Math.round(((rssUsed.rss - rssLoaded.rss) * 1_048_576) / KEYS),
    firstUseRps, non200: failed + failedAgain, startSeconds: round3(startSeconds),
  };
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-memory-'));
  const upstream = await startUpstream();
  const kgs: Keygate[] = [];
  let redis: RedisServer | null = null;
  /** Part (2)'s gateways listen for an inspector, so the bench can ask for a full GC; part (1)'s does not. */
  const start = async (name: string, store: Record<string, unknown> = { driver: 'embedded', path: join(dir, name) }, inspect = true): Promise<Keygate & { inspectPort: number }> => {
    const inspectPort = inspect ? await freePort() : 0;
    const kg = await startKeygate(dir, name, { upstreamPort: upstream.port, store, routes: ROUTES, nodeArgs: inspect ? [`--inspect=127.0.0.1:${inspectPort}`] : [] });
    kgs.push(kg);
    return { ...kg, inspectPort };
  };
  try {
    // (1) RSS over a long run at full load.
    const steady = await start('steady', undefined, false);
    const ws = await adminCall(steady.admin, 'POST', '/v1/workspaces', { name: 'memory' });
    const { secret } = await adminCall(steady.admin, 'POST', '/v1/keys', { workspaceId: ws.id, name: 'memory', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'] });
    const rssIdle = mib(rssMiB(steady.proc.pid!));
    const gcsBefore = await majorGcs(steady.admin);
    process.stderr.write(`warm-up: at least ${K.warmup} s, until the first major GC under load…\n`);
    const warmSamples: number[] = [];
    let warmSeconds = 0;
    let gcsInWarmup = 0;
    while (warmSeconds < 240) {
      const step = warmSeconds < K.warmup ? K.warmup : 5;
      warmSamples.push(...await sampleWhile(steady.proc.pid!, load(`${steady.gateway}/v1/events`, { connections: K.connections, seconds: step, headers: { 'x-api-key': secret } })));
      warmSeconds += step;
      gcsInWarmup = (await majorGcs(steady.admin)) - gcsBefore;
      if (gcsInWarmup > 0) break;
    }
    const warm = { seconds: warmSeconds, majorGcs: gcsInWarmup, peakMiB: warmSamples.length > 0 ? Math.max(...warmSamples) : null, lastMiB: warmSamples.at(-1) ?? null };
    process.stderr.write(`measuring ${SECONDS} s…\n`);
    const run = load(`${steady.gateway}/v1/events`, { connections: K.connections, seconds: SECONDS, headers: { 'x-api-key': secret } });
    const samples = await sampleWhile(steady.proc.pid!, run);
    const result = await run;
    await stop(steady.proc);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    const flat = {
      seconds: SECONDS, warmup: warm, rps: result.rps, non2xx: result.non2xx + result.errors, rssIdleMiB: rssIdle,
      firstMiB: samples[0]!, lastMiB: samples[samples.length - 1]!, minMiB: Math.min(...samples), maxMiB: Math.max(...samples), meanMiB: round3(mean),
      maxDeviationPct: round3((Math.max(...samples.map((s) => Math.abs(s - mean))) / mean) * 100),
      firstToLastPct: round3(((samples[samples.length - 1]! - samples[0]!) / samples[0]!) * 100),
      samples,
    };

    // (2) 100k keys, on each store.
    let compaction = { compactMs: 0, compactMaxBlockMs: 0 };
    const costs: KeysCost[] = [await keysCost('embedded', start, async () => {
      const seeded = await seedEmbedded(join(dir, 'embedded-full'));
      compaction = seeded;
      return seeded.secrets;
    })];
    if (!SKIP_REDIS) {
      redis = await startRedis();
      execFileSync('taskset', ['-a', '-cp', LOAD_CORE, String(redis.pid)], { stdio: 'ignore' });
      const url = redis.url;
      // Each gateway has its own key prefix: `redis-empty:` stays empty, `redis-full:` is seeded.
      costs.push(await keysCost('redis', (name) => start(name, { driver: 'redis', url, keyPrefix: `${name}:` }), () => seedRedis(url, 'redis-full:')));
    }

    const at = new Date().toISOString();
    const lines = [
      '',
      `keygate memory bench — ${at} — ${CORES} cores, node ${process.version}`,
      '',
      `(1) warm-up at full load: ${warm.seconds} s, ${warm.majorGcs > 0 ? 'until the first major GC under load' : 'with no major GC (gave up waiting)'}; RSS peaked at ${warm.peakMiB} MiB before it, ${warm.lastMiB} MiB at its end`,
      `    key path at full load, ${SECONDS} s after the warm-up, ${K.connections} connections: ${flat.rps} req/s, non-2xx ${flat.non2xx}`,
      `    RSS idle ${flat.rssIdleMiB} MiB; under load first ${flat.firstMiB}, last ${flat.lastMiB}, min ${flat.minMiB}, max ${flat.maxMiB}, mean ${flat.meanMiB} MiB`,
      `    largest deviation from the mean ${flat.maxDeviationPct}% (target within ±10%); first→last ${flat.firstToLastPct}%`,
      '',
      ...costs.flatMap((c) => [
        `(2) ${c.keys} keys on the ${c.store} store (${c.non200} non-200 of ${2 * c.keys} requests), RSS after ${SETTLE} s of quiet each:`,
        `    empty store ${c.rssEmptyMiB} MiB; ${c.keys} keys, none used yet ${c.rssLoadedMiB} MiB (+${c.loadedBytesPerKey} bytes per key; ready in ${c.startSeconds} s)`,
        `    every key used once (key cache full) ${c.rssAllUsedMiB} MiB (+${c.usedBytesPerKey} bytes per key; first uses ${c.firstUseRps} req/s); used again ${c.rssSecondPassMiB} MiB`,
        `    V8 heap in use: empty ${c.heapEmptyMiB}, loaded ${c.heapLoadedMiB}, all used ${c.heapAllUsedMiB}, used again ${c.heapSecondPassMiB} MiB`,
        `    after a full GC: RSS ${c.afterGc.rss.join(' / ')} MiB, V8 heap ${c.afterGc.heap.join(' / ')} MiB (empty / loaded / all used / used again)`,
        `    cost of the keys: ${round3(c.rssSecondPassMiB - c.rssEmptyMiB)} MiB of RSS over the empty store as it stood, ${round3(c.afterGc.rss[3]! - c.afterGc.rss[0]!)} MiB after a full GC (target < 150 MiB)`,
      ]),
      `(3) compacting the ${KEYS}-key embedded store: ${round3(compaction.compactMs)} ms, event loop held up to ${round3(compaction.compactMaxBlockMs)} ms`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const file = writeResults('memory-', { at, node: process.version, cores: CORES, connections: K.connections, settleSeconds: SETTLE, flat, keys: costs, compaction });
    process.stdout.write(`results written to ${file}\n`);
  } finally {
    for (const kg of kgs) await stop(kg.proc);
    await stop(upstream.proc);
    await redis?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
