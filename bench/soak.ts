// The soak: two `keygate serve` nodes on one real Redis under steady traffic while Redis is
// killed (SIGKILL) and restarted and keys are rotated and revoked. It checks what the README
// promises under these faults and exits 0 only when every check passes:
//   1. no 5xx beyond the configured fail mode: while Redis is down (and while the nodes
//      recover after it returns) a request may be 503 STORE_UNAVAILABLE; at any other time, and
//      any other 5xx at any time, is a failure. A 429 only for a rate-limited key, a 401/403
//      only for a secret that was revoked or rotated away; a 200 past the staleness bound while
//      Redis is down is a failure too (a node must stop trusting its cache); and 1 s into each
//      outage a key neither node has seen and an admin write must both be 503 STORE_UNAVAILABLE
//      on each node (the key then 200 after recovery);
//   2. no request waits past its bound (BOUND_MS, below);
//   3. each gateway's RSS is flat after warm-up;
//   4. every revocation (disable or delete) is enforced within maxStalenessMs on both nodes;
//   5. every rotation: the new secret works on both nodes at once, the old one until its grace
//      ends (and no longer within maxStalenessMs after that), or stops at once with no grace;
//   6. every write acknowledged before a kill is still there after the restart.
// Redis runs with appendonly yes / appendfsync always, so a restart keeps its data.
// The load is an open loop at a fixed rate over undici keep-alive pools, one per node,
// requests alternating between the nodes, each with a key drawn at random from the pool.
// Nothing is pinned: the machine is shared, so the load is kept modest and the bounds allow
// for it (see BOUND_MS).
// Run: npm run soak (builds first). Knobs: SOAK_SECONDS (180), SOAK_RATE (400 req/s),
// SOAK_KEYS (200). Writes bench/results/soak-<time>.json and the nodes' logs beside it.
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { Client, Pool } from 'undici';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import {
  ADMIN_TOKEN, CORES, ROOT, adminCall, num, round3, runMain, startKeygate, startUpstream, stop, writeResults, type Keygate,
} from './lib.js';

const SECONDS = num('SOAK_SECONDS', 180);
const RATE = num('SOAK_RATE', 400);
const KEYS = num('SOAK_KEYS', 200);
/** One key in five has a tight rate limit (so 429s and the local fallback are exercised). */
const LIMITED_EVERY = 5;
const TIGHT_LIMIT = { limit: 2, windowSeconds: 1 };

// The configuration under test, and the bounds derived from it.
/** Short, so the revocation and staleness checks mean something within a few minutes. */
const MAX_STALENESS_MS = 5_000;
const STORE_TIMEOUT_MS = 200;
const UPSTREAM_TIMEOUT_MS = 2_000;
/**
 * The wait bound of one request: a request waits on at most two store calls (key lookup, rate
 * limit), each bounded by store.timeoutMs; the upstream here answers in well under a
 * millisecond; 600 ms is the margin for a 2-core machine shared by two gateways, Redis, the
 * upstream, this load generator and other work (GC pauses, run-queue delays).
 */
const MARGIN_MS = 600;
const BOUND_MS = 2 * STORE_TIMEOUT_MS + MARGIN_MS;
/** How far past maxStalenessMs a 200 may still be answered while Redis is down (clock and scheduling slop). */
const STALE_SLOP_MS = 500;
/** After Redis answers PING again, how long the nodes may still answer 503 (reconnect, circuit trial once a second). */
const RECOVERY_MS = 5_000;
const WARMUP_S = 30;
/** The load rises linearly from 0 to RATE over this long at the start. */
const RAMP_MS = 10_000;
/** RSS is flat when its least-squares slope after warm-up is under this… */
const RSS_SLOPE_MAX_MIB_PER_MIN = 3;
/** …and its maximum after warm-up under this factor of the first reading after warm-up. */
const RSS_GROWTH_MAX = 1.3;
const GRACE_S = 8;
/** Outages: the first at 40 s, then every 50 s, alternately shorter and longer than maxStalenessMs. */
const FIRST_OUTAGE_S = 40;
const OUTAGE_EVERY_S = 50;
const OUTAGES_MS = [3_000, 8_000];
/** Key changes: one every ACTION_EVERY_MS while Redis is up, none this long before a kill. */
const ACTION_EVERY_MS = 2_000;
const ACTION_QUIET_BEFORE_KILL_MS = 15_000;
const PROBE_EVERY_MS = 20;
const ROUTES = [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }];
const KEY_PREFIX = 'kgsoak:';

type Phase = 'up' | 'down' | 'recovering';
const PHASES: Phase[] = ['up', 'down', 'recovering'];

interface Slot { id: string; secret: string; limited: boolean; busy: boolean }
/** A secret taken out of use: refusals with `code` are expected from `at` (ms since start). */
interface Retired { at: number; code: string }
interface Sample { t0: number; t1: number; node: number; status: number; code: string; secret: string; limited: boolean }
interface Outage { planned: number; lengthMs: number; killAt?: number; upAt?: number }
interface Violation { check: string; at: number; detail: string }

const nodeName = (i: number): string => (i === 0 ? 'A' : 'B');

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function slopePerMinute(points: ReadonlyArray<{ t: number; v: number }>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const mv = points.reduce((a, p) => a + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) { num += (p.t - mt) * (p.v - mv); den += (p.t - mt) ** 2; }
  return den === 0 ? 0 : (num / den) * 60_000;
}

function errorCode(text: string): string {
  try {
    return String((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '');
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const now = (): number => performance.now() - started;
  const dir = mkdtempSync(join(tmpdir(), 'keygate-soak-'));
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const procs: ChildProcess[] = [];
  let redis: RedisServer | undefined;
  const violations: Violation[] = [];
  const violate = (check: string, at: number, detail: string): void => { violations.push({ check, at: Math.round(at), detail }); };
  const log = (msg: string): void => { process.stderr.write(`[${(now() / 1000).toFixed(1).padStart(6)} s] ${msg}\n`); };

  const onSignal = (): void => {
    for (const p of procs) p.kill('SIGKILL');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    redis = await startRedis({ appendonly: true, appendfsync: 'always' });
    const upstream = await startUpstream();
    procs.push(upstream.proc);
    const allCores = `0-${CORES - 1}`;
    const nodeConfig = {
      upstreamPort: upstream.port,
      core: allCores,
      store: { driver: 'redis', url: redis.url, keyPrefix: KEY_PREFIX, timeoutMs: STORE_TIMEOUT_MS },
      routes: ROUTES,
      extra: {
        upstreams: { api: { url: `http://127.0.0.1:${upstream.port}`, timeoutMs: UPSTREAM_TIMEOUT_MS } },
        propagation: { maxStalenessMs: MAX_STALENESS_MS },
        rateLimit: { onStoreError: 'local' },
        keys: { rotationGraceSeconds: GRACE_S },
      },
    };
    const nodes: Keygate[] = [];
    for (const name of ['node-a', 'node-b']) {
      const kg = await startKeygate(dir, name, nodeConfig);
      procs.push(kg.proc);
      const logFile = createWriteStream(join(resultsDir, `soak-${stamp}-${name}.log`));
      kg.proc.stdout!.on('data', (d: Buffer) => logFile.write(d));
      nodes.push(kg);
    }
    const exited: string[] = [];
    nodes.forEach((n, i) => n.proc.once('exit', (code, signal) => { exited.push(`node ${nodeName(i)} exited (${code ?? signal})`); }));
    const admin = (i: number): string => nodes[i % 2]!.admin;

    // ---------------------------------------------------------------------------------------
    // Keys
    const ws = await adminCall(admin(0), 'POST', '/v1/workspaces', { name: 'soak' });
    const createKey = async (i: number, limited: boolean): Promise<Slot> => {
      const { key, secret } = await adminCall(admin(i), 'POST', '/v1/keys', {
        workspaceId: ws.id, name: `soak-${i}`, permissions: ['events.read'], rateLimit: limited ? TIGHT_LIMIT : null,
      });
      return { id: key.id as string, secret: secret as string, limited, busy: false };
    };
    const slots: Slot[] = [];
    for (let i = 0; i < KEYS; i++) slots.push(await createKey(i, i % LIMITED_EVERY === 0));
    /** Every key id acknowledged as created (checked after each restart). */
    const created: string[] = slots.map((s) => s.id);
    const deleted = new Set<string>();
    // Warm-up before the measured run: every key once on each node (cached, code warmed), a few at a time.
    await Promise.all(nodes.map(async (n) => {
      const primer = new Pool(n.gateway, { connections: 4, pipelining: 1 });
      for (let i = 0; i < slots.length; i += 8) {
        await Promise.all(slots.slice(i, i + 8).map(async (s) => {
          const res = await primer.request({ path: '/v1/events', method: 'GET', headers: { 'x-api-key': s.secret } });
          await res.body.dump();
        }));
      }
      await primer.close();
    }));
    log(`${KEYS} keys created (${slots.filter((s) => s.limited).length} with ${TIGHT_LIMIT.limit} req/${TIGHT_LIMIT.windowSeconds} s); load ${RATE} req/s for ${SECONDS} s`);
    const startedAt = now();
    const t = (): number => now() - startedAt;

    // ---------------------------------------------------------------------------------------
    // Schedule
    const outages: Outage[] = [];
    for (let s = FIRST_OUTAGE_S, k = 0; ; s += OUTAGE_EVERY_S, k++) {
      const lengthMs = OUTAGES_MS[k % OUTAGES_MS.length]!;
      if (s * 1000 + lengthMs + RECOVERY_MS + 10_000 > SECONDS * 1000) break;
      outages.push({ planned: s * 1000, lengthMs });
    }
    const end = SECONDS * 1000;
    const phaseOf = (t0: number, t1: number): Phase => {
      let phase: Phase = 'up';
      for (const o of outages) {
        if (o.killAt === undefined) continue;
        const upAt = o.upAt ?? Infinity;
        if (t0 < upAt && t1 >= o.killAt) return 'down';
        if (t0 < upAt + RECOVERY_MS && t1 >= upAt) phase = 'recovering';
      }
      return phase;
    };
    const actionsAllowed = (at: number): boolean => {
      if (at > end - ACTION_QUIET_BEFORE_KILL_MS) return false;
      for (const o of outages) {
        const upAgain = (o.upAt ?? Math.max(at, o.planned + o.lengthMs) + 1) + RECOVERY_MS;
        if (at >= o.planned - ACTION_QUIET_BEFORE_KILL_MS && at < upAgain) return false;
      }
      return true;
    };

    // ---------------------------------------------------------------------------------------
    // Load
    const pools = nodes.map((n) => new Pool(n.gateway, { connections: 32, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 }));
    const retired = new Map<string, Retired>();
    const samples: Sample[] = [];
    let sent = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let skippedBusy = 0;
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();

    const fire = (): void => {
      let slot = slots[Math.floor(Math.random() * slots.length)]!;
      for (let tries = 0; slot.busy && tries < 10; tries++) slot = slots[Math.floor(Math.random() * slots.length)]!;
      if (slot.busy) { skippedBusy++; return; }
      const node = sent++ % 2;
      const secret = slot.secret;
      const limited = slot.limited;
      const t0 = t();
      inFlight++;
      if (inFlight > maxInFlight) maxInFlight = inFlight;
      pools[node]!.request({ path: '/v1/events', method: 'GET', headers: { 'x-api-key': secret } }).then(async (res) => {
        let code = '';
        if (res.statusCode === 200) await res.body.dump();
        else code = errorCode(await res.body.text());
        samples.push({ t0, t1: t(), node, status: res.statusCode, code, secret, limited });
      }, (err: Error) => {
        samples.push({ t0, t1: t(), node, status: 0, code: err.message, secret, limited });
      }).finally(() => { inFlight--; });
    };

    const loadDone = (async () => {
      let due = 0;
      while (t() < end) {
        // The rate ramps up over the first RAMP_MS, then holds.
        const at = t();
        const target = Math.floor(at < RAMP_MS ? (at * at * RATE) / (2000 * RAMP_MS) : ((at - RAMP_MS / 2) / 1000) * RATE);
        while (due < target) { fire(); due++; }
        await sleep(5);
      }
    })();

    // ---------------------------------------------------------------------------------------
    // RSS
    const rss: Array<Array<{ t: number; v: number }>> = [[], []];
    /** The machine's 1-minute load average every 5 s: other work on a shared machine shows here. */
    const load1: number[] = [];
    const rssDone = (async () => {
      while (t() < end) {
        load1.push(loadavg()[0]!);
        await Promise.all(nodes.map(async (n, i) => {
          try {
            const text = await (await fetch(`${n.admin}/metrics`)).text();
            const m = /^keygate_process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
            if (m) rss[i]!.push({ t: t(), v: Number(m[1]) / 1048576 });
          } catch (err) {
            violate('metrics', t(), `node ${nodeName(i)} /metrics: ${(err as Error).message}`);
          }
        }));
        await sleep(5_000);
      }
    })();

    // ---------------------------------------------------------------------------------------
    // Probes (one keep-alive connection per node, apart from the load)
    const clients = nodes.map((n) => new Client(n.gateway, { pipelining: 1 }));
    const probe = async (node: number, secret: string): Promise<{ status: number; code: string }> => {
      const res = await clients[node]!.request({ path: '/v1/events', method: 'GET', headers: { 'x-api-key': secret } });
      const text = await res.body.text();
      return { status: res.statusCode, code: res.statusCode === 200 ? '' : errorCode(text) };
    };

    // ---------------------------------------------------------------------------------------
    // Outages
    const durability: Array<{ outage: number; checked: number; missing: string[] }> = [];
    /** While Redis is down, 1 s after the kill: a key neither node has seen, and an admin write, on each node. */
    const duringOutage: Array<{ outage: number; unseenKey: string[]; adminWrite: string[]; unseenAfterRecovery: string[] }> = [];
    const outagesDone = (async () => {
      for (const [k, o] of outages.entries()) {
        while (t() < o.planned - 1_000) await sleep(Math.min(100, o.planned - 1_000 - t()));
        // Created just before the kill and never presented: an unknown credential to both nodes.
        const unseen = await createKey(1_000 + k, false);
        created.push(unseen.id);
        while (t() < o.planned) await sleep(Math.min(100, o.planned - t()));
        await redis!.kill();
        o.killAt = t();
        log(`Redis killed (SIGKILL), down for ${o.lengthMs} ms`);
        await sleep(1_000);
        const seen = await Promise.all([0, 1].map((n) => probe(n, unseen.secret)));
        const writes = await Promise.all([0, 1].map(async (n) => {
          const res = await fetch(`${admin(n)}/v1/workspaces`, {
            method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'while-redis-is-down' }),
          });
          return { status: res.status, code: errorCode(await res.text()) };
        }));
        const record = { outage: k + 1, unseenKey: seen.map((r) => `${r.status} ${r.code}`.trim()), adminWrite: writes.map((r) => `${r.status} ${r.code}`.trim()), unseenAfterRecovery: [] as string[] };
        duringOutage.push(record);
        [...seen, ...writes].forEach((r, i) => {
          if (r.status !== 503 || r.code !== 'STORE_UNAVAILABLE') violate('fail mode', t(), `outage ${k + 1}: ${i < 2 ? 'a key it has never seen' : 'an admin write'} on node ${nodeName(i % 2)} answered ${r.status} ${r.code} while Redis was down`);
        });
        await sleep(Math.max(0, o.killAt + o.lengthMs - t()));
        await redis!.restart();
        o.upAt = t();
        log(`Redis restarted (answers PING after ${Math.round(o.upAt - o.killAt)} ms)`);
        // Every key acknowledged before the kill is still there (read from the other node, after recovery).
        await sleep(RECOVERY_MS);
        const sample = [...created.slice(-20)].filter((id) => !deleted.has(id));
        const missing: string[] = [];
        for (const id of sample) {
          try { await adminCall(admin(k + 1), 'GET', `/v1/keys/${id}`); } catch (err) { missing.push(`${id}: ${(err as Error).message}`); }
        }
        durability.push({ outage: k + 1, checked: sample.length, missing });
        const after = await Promise.all([0, 1].map((n) => probe(n, unseen.secret)));
        record.unseenAfterRecovery = after.map((r) => `${r.status} ${r.code}`.trim());
        after.forEach((r, n) => { if (r.status !== 200) violate('fail mode', t(), `outage ${k + 1}: the key created before the kill answered ${r.status} ${r.code} on node ${nodeName(n)} after recovery`); });
        for (const m of missing) violate('durability', t(), `after restart ${k + 1}: ${m}`);
      }
    })();

    // ---------------------------------------------------------------------------------------
    // Key changes and their checks
    /**
     * Probes `secret` on `node` every PROBE_EVERY_MS from `from` until `done` says so (then
     * three more probes must agree) or until `limitMs` after `from`; the time from `from` to
     * the first probe `done` accepted (null if none did).
     */
    const pollUntil = async (what: string, node: number, secret: string, from: number, limitMs: number, done: (r: { status: number; code: string }) => boolean, allowed: (r: { status: number; code: string }) => boolean): Promise<number | null> => {
      for (;;) {
        const at = t();
        const r = await probe(node, secret);
        if (!done(r) && !allowed(r)) violate(what, at, `node ${nodeName(node)} answered ${r.status} ${r.code}`);
        if (done(r)) {
          for (let i = 0; i < 3; i++) {
            await sleep(PROBE_EVERY_MS);
            const again = await probe(node, secret);
            if (!done(again)) violate(what, t(), `node ${nodeName(node)} answered ${again.status} ${again.code} after it had answered ${r.status} ${r.code}`);
          }
          return at - from;
        }
        if (at - from > limitMs) return null;
        await sleep(PROBE_EVERY_MS);
      }
    };
    const accepted = (r: { status: number }): boolean => r.status === 200;
    const refusedWith = (code: string) => (r: { status: number; code: string }): boolean => (code === 'KEY_DISABLED' ? r.status === 403 : r.status === 401) && r.code === code;

    interface Revocation { kind: 'disable' | 'delete'; via: string; delayMs: number[] }
    interface Rotation { graceS: number; via: string; newSecretMs: number[]; oldRefusedMs: number[]; oldWorkedDuringGrace: boolean | null }
    const revocations: Revocation[] = [];
    const rotations: Rotation[] = [];
    const adminErrors: string[] = [];

    const revoke = async (slotIndex: number, kind: 'disable' | 'delete', via: number): Promise<void> => {
      const slot = slots[slotIndex]!;
      const code = kind === 'disable' ? 'KEY_DISABLED' : 'UNAUTHENTICATED';
      retired.set(slot.secret, { at: t(), code });
      if (kind === 'disable') await adminCall(admin(via), 'PATCH', `/v1/keys/${slot.id}`, { enabled: false });
      else { await adminCall(admin(via), 'DELETE', `/v1/keys/${slot.id}`); deleted.add(slot.id); }
      const ackAt = t();
      const delays = await Promise.all([0, 1].map((n) => pollUntil(`revocation (${kind})`, n, slot.secret, ackAt, MAX_STALENESS_MS + 2_000, refusedWith(code), accepted)));
      const rec: Revocation = { kind, via: nodeName(via), delayMs: delays.map((d) => (d === null ? Infinity : Math.round(d))) };
      revocations.push(rec);
      delays.forEach((d, n) => {
        if (d === null || d > MAX_STALENESS_MS) violate('revocation bound', ackAt, `${kind} of ${slot.id} via ${nodeName(via)}: node ${nodeName(n)} ${d === null ? 'never refused it' : `refused it after ${Math.round(d)} ms`}`);
      });
      // The slot gets a fresh key (its first requests are lookups neither node has cached).
      const fresh = await createKey(slotIndex, slot.limited);
      created.push(fresh.id);
      slots[slotIndex] = fresh;
    };

    const rotate = async (slotIndex: number, graceS: number, via: number): Promise<void> => {
      const slot = slots[slotIndex]!;
      const old = slot.secret;
      const sentAt = t();
      if (graceS === 0) retired.set(old, { at: sentAt, code: 'UNAUTHENTICATED' });
      const res = await adminCall(admin(via), 'POST', `/v1/keys/${slot.id}/rotate`, { gracePeriodSeconds: graceS });
      const ackAt = t();
      const secret = res.secret as string;
      if (graceS > 0) retired.set(old, { at: sentAt + graceS * 1000, code: 'UNAUTHENTICATED' });
      slots[slotIndex] = { ...slot, secret, busy: false };
      const rec: Rotation = { graceS, via: nodeName(via), newSecretMs: [], oldRefusedMs: [], oldWorkedDuringGrace: null };
      rotations.push(rec);
      await Promise.all([0, 1].map(async (n) => {
        const d = await pollUntil('rotation (new secret)', n, secret, ackAt, MAX_STALENESS_MS, accepted, () => false);
        rec.newSecretMs[n] = d === null ? Infinity : Math.round(d);
        if (d === null) violate('rotation: new secret', ackAt, `${slot.id}: node ${nodeName(n)} did not accept the new secret within ${MAX_STALENESS_MS} ms`);
      }));
      if (graceS > 0) {
        const early = await Promise.all([0, 1].map((n) => probe(n, old)));
        await sleep(Math.max(0, ackAt + graceS * 1000 - 1_500 - t()));
        const late = await Promise.all([0, 1].map((n) => probe(n, old)));
        rec.oldWorkedDuringGrace = [...early, ...late].every(accepted);
        [...early, ...late].forEach((r, i) => {
          if (!accepted(r)) violate('rotation: old secret within grace', t(), `${slot.id}: node ${nodeName(i % 2)} answered ${r.status} ${r.code} ${i < 2 ? 'right after' : '1.5 s before the end of'} the grace period`);
        });
      }
      const graceEnd = sentAt + graceS * 1000;
      await sleep(Math.max(0, graceEnd - t()));
      await Promise.all([0, 1].map(async (n) => {
        const d = await pollUntil('rotation (old secret)', n, old, graceEnd, MAX_STALENESS_MS + 2_000, refusedWith('UNAUTHENTICATED'), accepted);
        rec.oldRefusedMs[n] = d === null ? Infinity : Math.round(d);
        if (d === null || d > MAX_STALENESS_MS) violate('rotation: old secret after grace', graceEnd, `${slot.id}: node ${nodeName(n)} ${d === null ? 'never refused the old secret' : `refused the old secret ${Math.round(d)} ms after its grace ended`}`);
      }));
    };

    const actionsDone = (async () => {
      const pending: Array<Promise<void>> = [];
      const kinds = ['disable', 'rotate0', 'delete', 'rotateGrace'] as const;
      let n = 0;
      for (let at = 10_000; at < end; at += ACTION_EVERY_MS) {
        while (t() < at) await sleep(Math.min(100, at - t()));
        if (!actionsAllowed(t())) continue;
        const candidates = slots.map((s, i) => ({ s, i })).filter(({ s }) => !s.limited && !s.busy);
        const pick = candidates[Math.floor(Math.random() * candidates.length)];
        if (!pick) continue;
        pick.s.busy = true;
        const kind = kinds[n % kinds.length]!;
        const via = n % 2;
        n++;
        const job = kind === 'disable' || kind === 'delete' ? revoke(pick.i, kind, via) : rotate(pick.i, kind === 'rotate0' ? 0 : GRACE_S, via);
        pending.push(job.catch((err: Error) => { adminErrors.push(`${kind}: ${err.message}`); violate('admin', t(), `${kind} via ${nodeName(via)}: ${err.message}`); }));
      }
      await Promise.all(pending);
    })();

    await Promise.all([loadDone, rssDone, outagesDone, actionsDone]);
    while (inFlight > 0 && t() < end + 30_000) await sleep(50);
    loopDelay.disable();
    await Promise.all([...pools.map((p) => p.close()), ...clients.map((c) => c.close())]);
    for (const e of exited) violate('process', end, e);

    // ---------------------------------------------------------------------------------------
    // Classification
    interface PhaseStats { requests: number; byStatus: Record<string, number>; latencies: number[] }
    const stats = new Map<Phase, PhaseStats>(PHASES.map((p) => [p, { requests: 0, byStatus: {}, latencies: [] }]));
    const lastStale200 = outages.map(() => -Infinity);
    const last503AfterUp: number[][] = outages.map(() => [-Infinity, -Infinity]);
    for (const s of samples) {
      const phase = phaseOf(s.t0, s.t1);
      const st = stats.get(phase)!;
      const ms = s.t1 - s.t0;
      st.requests++;
      st.latencies.push(ms);
      const label = s.status === 0 ? 'no answer' : s.code === '' ? String(s.status) : `${s.status} ${s.code}`;
      st.byStatus[label] = (st.byStatus[label] ?? 0) + 1;
      const where = `${phase}, node ${nodeName(s.node)}, t=${Math.round(s.t0)} ms, answered in ${Math.round(ms)} ms`;
      if (ms > BOUND_MS) violate('latency bound', s.t0, `${label} after ${Math.round(ms)} ms (${where})`);
      const outageIndex = outages.findIndex((o) => o.killAt !== undefined && s.t1 >= o.killAt && s.t0 < (o.upAt ?? Infinity));
      if (s.status === 503 && s.code === 'STORE_UNAVAILABLE') {
        outages.forEach((o, k) => {
          const nextKill = outages[k + 1]?.killAt ?? Infinity;
          if (o.upAt !== undefined && s.t0 >= o.upAt && s.t1 < nextKill) last503AfterUp[k]![s.node] = Math.max(last503AfterUp[k]![s.node]!, s.t0 - o.upAt);
        });
      }
      if (s.status === 0) violate('5xx', s.t0, `no answer: ${s.code} (${where})`);
      else if (s.status === 200) {
        if (outageIndex >= 0) {
          const o = outages[outageIndex]!;
          // Only a 200 decided while Redis was surely still down counts: sent past the bound and
          // answered before Redis was back (a request answered later may have been decided after).
          if (s.t0 > o.killAt! + MAX_STALENESS_MS + STALE_SLOP_MS && s.t1 < (o.upAt ?? Infinity)) violate('staleness bound', s.t0, `200 ${Math.round(s.t0 - o.killAt!)} ms after Redis was killed (${where})`);
          if (s.t1 < (o.upAt ?? Infinity)) lastStale200[outageIndex] = Math.max(lastStale200[outageIndex]!, s.t0 - o.killAt!);
        }
      } else if (s.status === 429) {
        if (!(s.limited && s.code === 'RATE_LIMITED')) violate('unexpected refusal', s.t0, `${label} for a key ${s.limited ? '' : 'without a rate limit '}(${where})`);
      } else if (s.status === 401 || s.status === 403) {
        const r = retired.get(s.secret);
        if (!r || r.at > s.t1 || r.code !== s.code) violate('unexpected refusal', s.t0, `${label} for a secret ${r ? `retired at ${Math.round(r.at)} ms with ${r.code}` : 'in use'} (${where})`);
      } else if (s.status === 503 && s.code === 'STORE_UNAVAILABLE') {
        if (phase === 'up') violate('5xx', s.t0, `${label} while Redis was up (${where})`);
      } else {
        violate(s.status >= 500 ? '5xx' : 'unexpected refusal', s.t0, `${label} (${where})`);
      }
    }

    // Latency and answers over time, in 5 s buckets.
    const BUCKET_MS = 5_000;
    const buckets = new Map<number, { latencies: number[]; non2xx: number }>();
    for (const s of samples) {
      const b = Math.floor(s.t0 / BUCKET_MS);
      let entry = buckets.get(b);
      if (!entry) { entry = { latencies: [], non2xx: 0 }; buckets.set(b, entry); }
      entry.latencies.push(s.t1 - s.t0);
      if (s.status !== 200) entry.non2xx++;
    }
    const timeline = [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([b, e]) => {
      const sorted = e.latencies.sort((x, y) => x - y);
      return { fromS: (b * BUCKET_MS) / 1000, phase: phaseOf(b * BUCKET_MS, (b + 1) * BUCKET_MS - 1), requests: sorted.length, non2xx: e.non2xx, p50Ms: round3(quantile(sorted, 0.5)), p99Ms: round3(quantile(sorted, 0.99)), maxMs: round3(sorted.at(-1) ?? 0) };
    });

    // ---------------------------------------------------------------------------------------
    // RSS
    const rssReport = rss.map((points, i) => {
      const after = points.filter((p) => p.t >= WARMUP_S * 1000);
      const first = after[0]?.v ?? NaN;
      const last = after.at(-1)?.v ?? NaN;
      const max = Math.max(...after.map((p) => p.v));
      const slope = slopePerMinute(after);
      const flat = after.length >= 3 && slope <= RSS_SLOPE_MAX_MIB_PER_MIN && max <= first * RSS_GROWTH_MAX;
      if (!flat) violate('rss', end, `node ${nodeName(i)}: first ${first.toFixed(1)} MiB, last ${last.toFixed(1)}, max ${max.toFixed(1)}, slope ${slope.toFixed(2)} MiB/min over ${after.length} readings`);
      return {
        node: nodeName(i), readings: after.length, firstMiB: round3(first), lastMiB: round3(last), maxMiB: round3(max),
        slopeMiBPerMin: round3(slope), beforeWarmupMiB: round3(points[0]?.v ?? NaN), flat,
      };
    });

    // ---------------------------------------------------------------------------------------
    // Report
    const phaseReport = PHASES.map((p) => {
      const st = stats.get(p)!;
      const sorted = st.latencies.sort((a, b) => a - b);
      return { phase: p, requests: st.requests, byStatus: st.byStatus, p50Ms: round3(quantile(sorted, 0.5)), p99Ms: round3(quantile(sorted, 0.99)), maxMs: round3(sorted.at(-1) ?? 0) };
    });
    const maxOf = (xs: number[]): number => (xs.length === 0 ? 0 : Math.max(...xs));
    const checkNames = ['5xx', 'fail mode', 'staleness bound', 'unexpected refusal', 'latency bound', 'rss', 'revocation bound', 'rotation: new secret', 'rotation: old secret within grace', 'rotation: old secret after grace', 'revocation (disable)', 'revocation (delete)', 'rotation (new secret)', 'rotation (old secret)', 'durability', 'admin', 'metrics', 'process'];
    const checks = checkNames.map((name) => ({ name, violations: violations.filter((v) => v.check === name).length }));
    for (const name of new Set(violations.map((v) => v.check))) {
      if (!checkNames.includes(name)) checks.push({ name, violations: violations.filter((v) => v.check === name).length });
    }
    const passed = violations.length === 0;
    const result = {
      passed,
      at: new Date().toISOString(),
      machine: { cores: CORES, cpu: cpus()[0]?.model, node: process.version, load1Max: round3(Math.max(...load1)), load1Median: round3(quantile([...load1].sort((a, b) => a - b), 0.5)) },
      config: {
        seconds: SECONDS, rate: RATE, keys: KEYS, limitedKeys: slots.filter((s) => s.limited).length, tightLimit: TIGHT_LIMIT,
        maxStalenessMs: MAX_STALENESS_MS, storeTimeoutMs: STORE_TIMEOUT_MS, upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS, boundMs: BOUND_MS,
        recoveryMs: RECOVERY_MS, warmupS: WARMUP_S, graceS: GRACE_S, onStoreError: 'local',
      },
      load: {
        sent, answered: samples.length, skippedBusyKeys: skippedBusy, maxInFlight,
        generatorLoopDelayMaxMsNote: 'the load generator\'s own event-loop delay: a stall here delays sending and reading alike',
        generatorLoopDelayP99Ms: round3(loopDelay.percentile(99) / 1e6), generatorLoopDelayMaxMs: round3(loopDelay.max / 1e6),
      },
      outages: outages.map((o, k) => ({
        lengthMs: o.lengthMs, killAtS: round3((o.killAt ?? NaN) / 1000), downMs: Math.round((o.upAt ?? NaN) - (o.killAt ?? NaN)),
        last200AfterKillMs: Number.isFinite(lastStale200[k]!) ? Math.round(lastStale200[k]!) : null,
        last503AfterRestartMs: last503AfterUp[k]!.map((x) => (Number.isFinite(x) ? Math.round(x) : null)),
      })),
      phases: phaseReport,
      timeline,
      revocations: {
        count: revocations.length,
        maxDelayMs: [0, 1].map((n) => maxOf(revocations.map((r) => r.delayMs[n]!))),
        items: revocations,
      },
      rotations: {
        count: rotations.length,
        newSecretMaxMs: [0, 1].map((n) => maxOf(rotations.map((r) => r.newSecretMs[n] ?? Infinity))),
        oldRefusedAfterGraceMaxMs: [0, 1].map((n) => maxOf(rotations.map((r) => r.oldRefusedMs[n] ?? Infinity))),
        withGrace: rotations.filter((r) => r.graceS > 0).length,
        oldWorkedThroughGrace: rotations.filter((r) => r.oldWorkedDuringGrace === true).length,
        items: rotations,
      },
      durability,
      duringOutage,
      rss: rssReport,
      rssReadings: rss.map((points) => points.map((p) => ({ s: round3(p.t / 1000), mib: round3(p.v) }))),
      adminErrors,
      checks,
      violations: checks.flatMap((c) => violations.filter((v) => v.check === c.name).slice(0, 50)),
      violationCount: violations.length,
    };
    const file = writeResults('soak-', result);

    const out: string[] = [];
    out.push('', `keygate soak: ${SECONDS} s, ${RATE} req/s over ${KEYS} keys (${result.config.limitedKeys} limited), 2 nodes on one Redis (appendonly, appendfsync always)`);
    out.push(`config: maxStalenessMs ${MAX_STALENESS_MS}, store.timeoutMs ${STORE_TIMEOUT_MS}, onStoreError local, rotation grace ${GRACE_S} s; request bound ${BOUND_MS} ms (2 × store.timeoutMs + ${MARGIN_MS} ms margin)`);
    out.push(`machine: ${CORES} cores, 1-minute load average median ${result.machine.load1Median}, max ${result.machine.load1Max}${result.machine.load1Max > 3 * CORES ? ' — heavily loaded by other work: the latency readings are the machine\'s as much as keygate\'s' : ''}`);
    out.push(`load: ${sent} sent, ${samples.length} answered, max ${maxInFlight} in flight, generator event-loop delay p99 ${result.load.generatorLoopDelayP99Ms} ms, max ${result.load.generatorLoopDelayMaxMs} ms`);
    out.push('', 'phase       requests   p50 ms   p99 ms   max ms   answers');
    for (const p of phaseReport) {
      const answers = Object.entries(p.byStatus).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ');
      out.push(`${p.phase.padEnd(10)} ${String(p.requests).padStart(9)} ${p.p50Ms.toFixed(1).padStart(8)} ${p.p99Ms.toFixed(1).padStart(8)} ${p.maxMs.toFixed(1).padStart(8)}   ${answers}`);
    }
    out.push(`p99 ms per 5 s (* = Redis down or recovering): ${timeline.map((b) => `${Math.round(b.p99Ms)}${b.phase === 'up' ? '' : '*'}`).join(' ')}`);
    out.push('', 'outage  length   down ms  last 200 while down*  last 503 after restart (A / B)');
    result.outages.forEach((o, k) => out.push(`${String(k + 1).padEnd(7)} ${`${o.lengthMs} ms`.padEnd(8)} ${String(o.downMs).padStart(7)}  ${`${o.last200AfterKillMs ?? '-'} ms`.padStart(19)}  ${o.last503AfterRestartMs.map((x) => (x === null ? '-' : `${x} ms`)).join(' / ')}`));
    out.push(`* the latest send (after the kill) of a 200 answered before Redis was back; the bound is maxStalenessMs + ${STALE_SLOP_MS} ms`);
    out.push('', `revocations: ${revocations.length} (${revocations.filter((r) => r.kind === 'disable').length} disabled, ${revocations.filter((r) => r.kind === 'delete').length} deleted); refused on A within max ${result.revocations.maxDelayMs[0]} ms, on B within max ${result.revocations.maxDelayMs[1]} ms of the admin answer (bound ${MAX_STALENESS_MS} ms)`);
    out.push(`rotations: ${rotations.length} (${result.rotations.withGrace} with ${GRACE_S} s grace, old secret worked through it in ${result.rotations.oldWorkedThroughGrace}); new secret accepted within max ${result.rotations.newSecretMaxMs.join(' / ')} ms (A / B); old secret refused within max ${result.rotations.oldRefusedAfterGraceMaxMs.join(' / ')} ms of its grace ending`);
    out.push(`while Redis was down: a never-seen key answered ${[...new Set(duringOutage.flatMap((d) => d.unseenKey))].join(', ')}; admin writes ${[...new Set(duringOutage.flatMap((d) => d.adminWrite))].join(', ')}; after recovery the key answered ${[...new Set(duringOutage.flatMap((d) => d.unseenAfterRecovery))].join(', ')}`);
    out.push(`durability: ${durability.map((d) => `${d.checked - d.missing.length}/${d.checked}`).join(', ')} recent keys found after each restart`);
    out.push('', 'RSS after warm-up  first MiB  last MiB  max MiB  slope MiB/min');
    for (const r of rssReport) out.push(`node ${r.node.padEnd(13)} ${r.firstMiB.toFixed(1).padStart(9)} ${r.lastMiB.toFixed(1).padStart(9)} ${r.maxMiB.toFixed(1).padStart(8)} ${r.slopeMiBPerMin.toFixed(2).padStart(14)}`);
    out.push('', 'checks:');
    for (const c of checks) out.push(`  ${c.violations === 0 ? 'ok  ' : 'FAIL'} ${c.name}${c.violations ? ` (${c.violations})` : ''}`);
    if (violations.length > 0) {
      out.push('', `violations (${violations.length}; the first five of each check):`);
      for (const v of checks.flatMap((c) => violations.filter((x) => x.check === c.name).slice(0, 5))) out.push(`  [${(v.at / 1000).toFixed(1)} s] ${v.check}: ${v.detail}`);
    }
    out.push('', `${passed ? 'PASSED' : 'FAILED'}; results in ${file}`, '');
    process.stdout.write(out.join('\n'));
    process.exitCode = passed ? 0 : 1;
  } finally {
    await Promise.all(procs.map((p) => stop(p)));
    await redis?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
