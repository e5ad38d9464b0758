// Memory: (1) RSS of a keygate process over a long run at full load on the key path — it must
// stay flat; (2) what 100 000 keys cost a gateway process on the embedded store (every record
// is held in the process) before and after every key has been used once (the key cache full),
// against an empty store; (3) how long a compaction of that store takes and how long it holds
// the event loop. keygate is pinned to core 0, this process, the load and the upstream to core 1.
//   npm run build && npx tsx bench/memory.ts
// Knobs: BENCH_MEMORY_SECONDS (60), BENCH_WARMUP_SECONDS (10), BENCH_CONNECTIONS (64),
// BENCH_MEMORY_KEYS (100000), BENCH_SETTLE_SECONDS (5).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Pool } from 'undici';
import type { KeyRecord } from '../src/domain/api-key.js';
import { newKeyId, newWorkspaceId } from '../src/domain/ids.js';
import { generateSecret, hashSecret } from '../src/domain/secret.js';
import { EmbeddedStore } from '../src/store/embedded/embedded-store.js';
import type { WriteOp } from '../src/store/types.js';
import { CORES, LOAD_CORE, PEPPER, adminCall, knobs, load, pinSelf, round3, rssMiB, startKeygate, startUpstream, stop, writeResults, type Keygate } from './lib.js';

const K = knobs({ seconds: 60, warmup: 10, rounds: 1, connections: 64 });
const SECONDS = Number(process.env.BENCH_MEMORY_SECONDS ?? K.seconds);
const KEYS = Number(process.env.BENCH_MEMORY_KEYS ?? 100_000);
const SETTLE = Number(process.env.BENCH_SETTLE_SECONDS ?? 5);
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

/** One key record as the admin API makes it: a permission, a two-entry IP allowlist, a 90-day expiry. */
function record(workspaceId: string, i: number, secret: string, now: string, expires: string): KeyRecord {
  return {
    id: newKeyId(), workspaceId, name: `key-${i}`, description: '', groupId: null, ownerId: null, type: 'workspace', environment: 'live',
    prefix: secret.slice(0, 12), enabled: true, permissions: ['events.read'], permissionsLocked: false, ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'],
    eventAllowlist: [], eventDenylist: [], profileAttributeAllowlist: [], basicAuth: false, simpleAuth: { enabled: false, salt: null },
    rateLimit: null, quota: null, createdAt: now, updatedAt: now, expiresAt: expires, version: 1,
    secretHash: hashSecret(PEPPER, secret), retiredSecrets: [], seq: 0,
  };
}

/** Writes KEYS keys into an embedded store at `path` in batches; returns their secrets and the compaction timing. */
async function seed(path: string): Promise<{ secrets: string[]; seedSeconds: number; compactMs: number; compactMaxBlockMs: number }> {
  const store = new EmbeddedStore({ path, logger: pino({ level: 'silent' }) });
  await store.open();
  const started = performance.now();
  const workspaceId = newWorkspaceId();
  const now = new Date().toISOString();
  const expires = new Date(Date.now() + 90 * 86_400_000).toISOString();
  await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: { id: workspaceId, name: 'memory', createdAt: now } } }], audit: [] });
  const secrets: string[] = [];
  for (let i = 0; i < KEYS;) {
    const ops: WriteOp[] = [];
    for (const end = Math.min(KEYS, i + 1_000); i < end; i++) {
      const { secret } = generateSecret('live');
      secrets.push(secret);
      ops.push({ op: 'put', entity: { type: 'key', value: record(workspaceId, i, secret, now, expires) } });
    }
    await store.commit({ ops, audit: [] });
  }
  const seedSeconds = (performance.now() - started) / 1000;
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const c0 = performance.now();
  await store.compactNow();
  const compactMs = performance.now() - c0;
  delay.disable();
  await store.close();
  return { secrets, seedSeconds, compactMs, compactMaxBlockMs: delay.max / 1e6 };
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

async function settledRss(kg: Keygate): Promise<number> {
  await sleep(SETTLE * 1_000);
  return mib(rssMiB(kg.proc.pid!));
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-memory-'));
  const upstream = await startUpstream();
  const kgs: Keygate[] = [];
  const start = async (name: string): Promise<Keygate> => {
    const kg = await startKeygate(dir, name, { upstreamPort: upstream.port, store: { driver: 'embedded', path: join(dir, name) }, routes: ROUTES });
    kgs.push(kg);
    return kg;
  };
  try {
    // (1) RSS over a long run at full load.
    const steady = await start('steady');
    const ws = await adminCall(steady.admin, 'POST', '/v1/workspaces', { name: 'memory' });
    const { secret } = await adminCall(steady.admin, 'POST', '/v1/keys', { workspaceId: ws.id, name: 'memory', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'] });
    const rssIdle = mib(rssMiB(steady.proc.pid!));
    process.stderr.write(`warm-up ${K.warmup} s…\n`);
    await load(`${steady.gateway}/v1/events`, { connections: K.connections, seconds: K.warmup, headers: { 'x-api-key': secret } });
    process.stderr.write(`measuring ${SECONDS} s…\n`);
    const run = load(`${steady.gateway}/v1/events`, { connections: K.connections, seconds: SECONDS, headers: { 'x-api-key': secret } });
    const samples = await sampleWhile(steady.proc.pid!, run);
    const result = await run;
    await stop(steady.proc);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    const flat = {
      seconds: SECONDS, rps: result.rps, non2xx: result.non2xx + result.errors, rssIdleMiB: rssIdle,
      firstMiB: samples[0]!, lastMiB: samples[samples.length - 1]!, minMiB: Math.min(...samples), maxMiB: Math.max(...samples), meanMiB: round3(mean),
      maxDeviationPct: round3((Math.max(...samples.map((s) => Math.abs(s - mean))) / mean) * 100),
      firstToLastPct: round3(((samples[samples.length - 1]! - samples[0]!) / samples[0]!) * 100),
      samples,
    };

    // (2) 100k keys: an empty store against a full one, before and after every key was used.
    const empty = await start('empty');
    await adminCall(empty.admin, 'POST', '/v1/workspaces', { name: 'memory' });
    const rssEmpty = await settledRss(empty);
    await stop(empty.proc);
    process.stderr.write(`seeding ${KEYS} keys…\n`);
    const seeded = await seed(join(dir, 'full'));
    const t0 = performance.now();
    const full = await start('full');
    const startSeconds = (performance.now() - t0) / 1000;
    const rssLoaded = await settledRss(full);
    process.stderr.write(`using every key once…\n`);
    const u0 = performance.now();
    const failed = await useEveryKey(full.gateway, seeded.secrets);
    const fillRps = Math.round(seeded.secrets.length / ((performance.now() - u0) / 1000));
    const rssCached = await settledRss(full);
    const failedAgain = await useEveryKey(full.gateway, seeded.secrets);
    const rssAgain = await settledRss(full);
    await stop(full.proc);
    const keys = {
      keys: KEYS, rssEmptyMiB: rssEmpty, rssLoadedMiB: rssLoaded, rssAllCachedMiB: rssCached, rssSecondPassMiB: rssAgain,
      storeBytesPerKey: Math.round(((rssLoaded - rssEmpty) * 1_048_576) / KEYS),
      cacheBytesPerKey: Math.round(((rssCached - rssLoaded) * 1_048_576) / KEYS),
      firstUseRps: fillRps, non200: failed + failedAgain, startSeconds: round3(startSeconds),
      seedSeconds: round3(seeded.seedSeconds), compactMs: round3(seeded.compactMs), compactMaxEventLoopBlockMs: round3(seeded.compactMaxBlockMs),
    };

    const at = new Date().toISOString();
    const lines = [
      '',
      `keygate memory bench — ${at} — ${CORES} cores, node ${process.version}`,
      '',
      `(1) key path at full load, ${SECONDS} s after ${K.warmup} s of warm-up, ${K.connections} connections: ${flat.rps} req/s, non-2xx ${flat.non2xx}`,
      `    RSS idle ${flat.rssIdleMiB} MiB; under load first ${flat.firstMiB}, last ${flat.lastMiB}, min ${flat.minMiB}, max ${flat.maxMiB}, mean ${flat.meanMiB} MiB`,
      `    largest deviation from the mean ${flat.maxDeviationPct}% (target within ±10%); first→last ${flat.firstToLastPct}%`,
      '',
      `(2) ${KEYS} keys on the embedded store (${keys.non200} non-200 of ${2 * KEYS} requests)`,
      `    RSS, empty store: ${keys.rssEmptyMiB} MiB`,
      `    RSS, ${KEYS} keys loaded: ${keys.rssLoadedMiB} MiB (${keys.storeBytesPerKey} bytes per key held by the store; started in ${keys.startSeconds} s)`,
      `    RSS, every key used once (key cache full): ${keys.rssAllCachedMiB} MiB (${keys.cacheBytesPerKey} bytes per cached key; first use ${keys.firstUseRps} req/s)`,
      `    RSS, every key used again: ${keys.rssSecondPassMiB} MiB (target < 150 MiB)`,
      `(3) compacting the ${KEYS}-key store: ${keys.compactMs} ms, event loop held up to ${keys.compactMaxEventLoopBlockMs} ms (seeded in ${keys.seedSeconds} s)`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const file = writeResults('memory-', { at, node: process.version, cores: CORES, connections: K.connections, flat, keys });
    process.stdout.write(`results written to ${file}\n`);
  } finally {
    for (const kg of kgs) await stop(kg.proc);
    await stop(upstream.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
