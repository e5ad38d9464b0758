// `npm run bench`: keygate's hot path against the floor and its Node peers, side by side in
// one run. Every system under test is pinned to core 0; this process (autocannon), the
// upstream and redis-server to core 1. Scenarios alternate round by round (the ones a target
// compares next to each other) and each row is the round with the median req/s; a ratio is
// also read round by round, so that the machine's drift cancels. Every round starts each
// system under test afresh: one Node process can run 10-15% slower than another started
// from the same code (V8's inline caches settle differently; see bench/README.md), so no
// ratio may rest on one lucky or unlucky process. Then p50/p99 in µs of the bare proxy and
// the key path at a paced BENCH_RATE and saturated. Results print as a table and go to bench/results/.
// The key path runs twice: with the default config (access log on, stdout redirected to a
// file, as in production) and with `accessLog: false`, each against the bare proxy, and the
// first against the second (what the access log costs).
// Every scenario sends the same request headers (the key path's key, which the peers pass
// through), so the peers are measured on the traffic keygate sees.
// Knobs: BENCH_ROUNDS (7), BENCH_SECONDS (4), BENCH_WARMUP_SECONDS (3, after each start),
// BENCH_REWARM_SECONDS (1, an unmeasured run before each measured one), BENCH_CONNECTIONS (64),
// BENCH_KEYS (64), BENCH_RATE (2000), BENCH_SKIP_REDIS=1 (no Redis scenarios, e.g. without redis-server),
// BENCH_SCENARIOS=key,forwardAuth (only these scenarios, by id, and no latency timing).
// Forward-auth: nginx (deploy/nginx's recipe, on the load core) asks a keygate of its own on
// core 0 with auth_request; keygate's CPU per decision is read against its CPU per proxied request.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import { nginxRecipe, startNginx, type Nginx } from '../test/support/nginx.js';
import { which } from '../test/support/proxy-binaries.js';
import {
  CORES, LOAD_CORE, ROOT, SUT_CORE, TSX, adminCall, knobs, listening, load, measuredLoad, median, pinSelf, round3, startKeygate, startPinned, startUpstream, stop, timedLoad, writeResults, type LoadOptions, type LoadResult, type TimedResult, runMain,
} from './lib.js';

const K = knobs({ seconds: 4, warmup: 3, rounds: 7, connections: 64 });
const RATE = Number(process.env.BENCH_RATE ?? 2_000);
const REWARM = Number(process.env.BENCH_REWARM_SECONDS ?? 1);
const MANY_KEYS = Number(process.env.BENCH_KEYS ?? 64);
const SKIP_REDIS = process.env.BENCH_SKIP_REDIS === '1';
const ONLY = process.env.BENCH_SCENARIOS ? process.env.BENCH_SCENARIOS.split(',').map((s) => s.trim()) : null;
/** High enough never to refuse: every request runs the whole limiter decision. */
const NEVER_REFUSING = { limit: 1_000_000_000, windowSeconds: 60 };

/** A realistic event of about 1 KiB, for the inspected route. */
const EVENT = (() => {
  const e: Record<string, unknown> = {
    action: 'cart.add', profileId: 'p_100001', occurredAt: '2026-11-23T05:00:00.000Z',
    properties: { sku: 'SKU-1', price: 19.99, currency: 'EUR', tags: ['a', 'b', 'c'], referrer: 'https://example.com/landing?utm=bench' },
  };
  e.note = 'x'.repeat(1024 - JSON.stringify(e).length - 10);
  return JSON.stringify(e);
})();

const ROUTES = [
  { name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' },
  { name: 'track-event', method: 'POST', path: '/v1/events', upstream: 'api', permission: 'events.create', events: { field: 'action' } },
];

/** A process (tree) under test, started afresh every round; `pid` is the one whose CPU is measured. */
interface System { start: () => Promise<{ url: string; proc: ChildProcess }>; url: string; proc: ChildProcess | null }
type LoadShape = Omit<LoadOptions, 'connections' | 'seconds'>;
/**
 * `opts` is read after each start (a token is minted anew, say). `cpuOf`: the system whose
 * process CPU is measured, when it is not the one the load goes to (forward-auth: keygate
 * behind nginx).
 */
interface Scenario { id: string; name: string; system: System; path: string; opts: () => LoadShape; cpuOf?: System }
type Round = LoadResult & { cpuUsPerReq: number };
type Row = Round & { id: string; name: string; rounds: number[]; cpuRounds: number[]; cpuUsPerReqMedian: number };

/** The key every keygate scenario uses: a permission and a two-entry IP allowlist, plus event lists for the inspected route. */
async function benchKey(admin: string, rateLimit: typeof NEVER_REFUSING | null, name = 'bench'): Promise<string> {
  const ws = await adminCall(admin, 'POST', '/v1/workspaces', { name });
  const { secret } = await adminCall(admin, 'POST', '/v1/keys', {
    workspaceId: ws.id, name, permissions: ['events.read', 'events.create'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'], rateLimit,
    eventAllowlist: ['page.*', 'cart.add', 'cart.remove', 'checkout.*'], eventDenylist: ['transaction.*', 'admin.grant'],
  });
  return secret as string;
}

function system(start: System['start']): System {
  return { start, url: '', proc: null };
}

async function restart(systems: readonly System[]): Promise<void> {
  for (const sys of systems) {
    if (sys.proc) await stop(sys.proc);
    const { url, proc } = await sys.start();
    Object.assign(sys, { url, proc });
  }
}

async function measureAll(scenarios: Scenario[], systems: readonly System[], fresh: () => Promise<void>): Promise<Row[]> {
  const runs = new Map<string, Round[]>(scenarios.map((s) => [s.id, []]));
  for (let round = 0; round < K.rounds; round++) {
    await restart(systems);
    await fresh();
    for (const s of scenarios) {
      const r = await load(s.system.url + s.path, { connections: K.connections, seconds: K.warmup, ...s.opts() });
      if (r.non2xx + r.errors > 0) throw new Error(`${s.name}: ${r.non2xx} non-2xx answers and ${r.errors} errors in warm-up`);
    }
    for (const s of scenarios) {
      // Each process sits idle while the others run, so every measured run follows a short
      // unmeasured one, whichever scenario its process ran last.
      const r = await measuredLoad(s.system.url + s.path, { connections: K.connections, seconds: K.seconds, ...s.opts() }, (s.cpuOf ?? s.system).proc!.pid!, REWARM);
      runs.get(s.id)!.push(r);
      process.stderr.write(`round ${round + 1} ${s.name}: ${r.rps} req/s, p99 ${r.p99} ms, non-2xx ${r.non2xx + r.errors}, ${r.cpuUsPerReq} µs CPU/req\n`);
    }
  }
  return scenarios.map((s) => {
    const list = runs.get(s.id)!;
    const mid = median(list.map((r) => r.rps));
    return {
      id: s.id, name: s.name, ...list.find((r) => r.rps === mid)!, rounds: list.map((r) => r.rps),
      cpuRounds: list.map((r) => r.cpuUsPerReq), cpuUsPerReqMedian: median(list.map((r) => r.cpuUsPerReq)),
    };
  });
}

/**
 * p50/p99 in µs over K.connections connections, the targets alternating round by round: at
 * the target's `rate` (requests per second in all), or saturated (rate null: each connection
 * sends its next request when the last is answered).
 */
async function measureTimed(targets: Array<{ id: string; system: System; headers: Record<string, string>; rate: number | null }>): Promise<Map<string, TimedResult[]>> {
  const out = new Map<string, TimedResult[]>(targets.map((t) => [t.id, []]));
  const systems = [...new Set(targets.map((t) => t.system))];
  for (let round = 0; round < K.rounds; round++) {
    // Fresh processes each round here too, so no p99 rests on one pair of processes.
    await restart(systems);
    for (const t of targets) await load(t.system.url + '/v1/events', { connections: K.connections, seconds: K.warmup, headers: t.headers });
    for (const t of targets) {
      const r = await timedLoad(t.system.url, '/v1/events', t.headers, K.connections, K.seconds, t.rate);
      out.get(t.id)!.push(r);
      process.stderr.write(`round ${round + 1} timed ${t.id}: ${r.rps} req/s, p50 ${r.p50} µs, p99 ${r.p99} µs\n`);
    }
  }
  return out;
}

/** The policy-check microbenchmark (bench/policy-check.ts), pinned like keygate; its ns/op. */
function policyCheck(): number | null {
  const out = spawnSync('taskset', ['-c', SUT_CORE, TSX, join(ROOT, 'bench', 'policy-check.ts')], { encoding: 'utf8' });
  const ns = [...out.stdout.matchAll(/(\d+) ns\/op/g)].map((m) => Number(m[1]));
  return ns.length > 0 ? ns[ns.length - 1]! : null;
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
  let redis: RedisServer | null = null;
  let upstreamProc: ChildProcess | null = null;
  const systems: System[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let rows: Row[];
  let paced: Map<string, TimedResult[]> | null = null;
  try {
    const upstream = await startUpstream();
    upstreamProc = upstream.proc;
    const peer = (file: string): System => {
      const sys = system(async () => {
        const p = await startPinned(SUT_CORE, [TSX, join(ROOT, 'bench', file)], { UPSTREAM: upstream.url }, listening);
        return { url: `http://127.0.0.1:${p.line.listening as number}`, proc: p.proc };
      });
      systems.push(sys);
      return sys;
    };
    /** A keygate system; its first start is made here, for the admin calls that create its keys. */
    const keygate = async (name: string, store: Record<string, unknown>, gateway?: Record<string, unknown>, logFile?: string): Promise<System & { admin: string }> => {
      const sys = Object.assign(system(async () => {
        const kg = await startKeygate(dir, name, { upstreamPort: upstream.port, store, routes: ROUTES, ...(gateway ? { gateway } : {}), ...(logFile ? { logFile } : {}) });
        sys.admin = kg.admin;
        return { url: kg.gateway, proc: kg.proc };
      }), { admin: '' });
      systems.push(sys);
      await restart([sys]);
      return sys;
    };
    const embedded = (name: string): Record<string, unknown> => ({ driver: 'embedded', path: join(dir, name) });
    const bare = peer('bare-proxy.ts');
    const fastify = peer('fastify-proxy.ts');

    const one = await keygate('one', embedded('one'));
    const secret = await benchKey(one.admin, null);
    // The default config as it runs in production: the access log on, stdout to a file. Its
    // own process, so the log-off row beside it is the same build with `accessLog: false`.
    const logged = await keygate('logged', embedded('logged'), undefined, join(dir, 'logged-stdout.log'));
    const secretLogged = await benchKey(logged.admin, null);
    // The signing key is in the store, so a token outlives a restart; it is minted anew each round all the same.
    let token = '';
    const mint = async (): Promise<void> => {
      const minted = await fetch(`${one.url}/auth/token`, { method: 'POST', headers: { 'x-api-key': secret } });
      if (!minted.ok) throw new Error(`token exchange: ${minted.status} ${await minted.text()}`);
      ({ token } = (await minted.json()) as { token: string });
    };

    // The inspected route gets a process of its own: the garbage its bodies leave would
    // otherwise be collected during whichever scenario of the process ran next.
    const body = await keygate('body', embedded('body'));
    const secretBody = await benchKey(body.admin, null);
    const two = await keygate('two', embedded('two'), { workers: 2 });
    const secretTwo = await benchKey(two.admin, null);

    const path = '/v1/events';
    const withKey = { headers: { 'x-api-key': secret } };
    const scenarios: Scenario[] = [
      // Each ratio's two sides run close together: fastify, bare, key, token, Redis limit.
      // The upstream is not restarted: every other scenario goes through it.
      { id: 'upstream', name: 'upstream direct', system: { start: async () => upstream, url: upstream.url, proc: upstream.proc }, path, opts: () => withKey },
      { id: 'fastify', name: '@fastify/http-proxy', system: fastify, path, opts: () => withKey },
      { id: 'bare', name: 'bare node:http + undici proxy', system: bare, path, opts: () => withKey },
      { id: 'keyLogged', name: 'keygate key path, default config', system: logged, path, opts: () => ({ headers: { 'x-api-key': secretLogged } }) },
      { id: 'key', name: 'keygate key path, accessLog: false', system: one, path, opts: () => withKey },
      { id: 'token', name: 'keygate token path (same checks)', system: one, path, opts: () => ({ headers: { authorization: `Bearer ${token}` } }) },
    ];
    if (!SKIP_REDIS) {
      redis = await startRedis();
      execFileSync('taskset', ['-a', '-cp', LOAD_CORE, String(redis.pid)], { stdio: 'ignore' });
      const kgRedis = await keygate('redis', { driver: 'redis', url: redis.url, keyPrefix: 'kgbench:' });
      const unlimited = await benchKey(kgRedis.admin, null, 'bench-unlimited');
      const limited = await benchKey(kgRedis.admin, NEVER_REFUSING);
      const many: string[] = [];
      for (let i = 0; i < MANY_KEYS; i++) many.push(await benchKey(kgRedis.admin, NEVER_REFUSING, `bench-${i}`));
      scenarios.push(
        { id: 'redisLimit', name: 'keygate key path + Redis rate limit', system: kgRedis, path, opts: () => ({ headers: { 'x-api-key': limited } }) },
        { id: 'redisKey', name: 'keygate key path on Redis, no limit', system: kgRedis, path, opts: () => ({ headers: { 'x-api-key': unlimited } }) },
        { id: 'redisLimitMany', name: `  same, ${MANY_KEYS} keys in turn`, system: kgRedis, path, opts: () => ({ keys: many }) },
      );
    }
    if (which('nginx') !== null) {
      // keygate believes nginx's X-Forwarded-For, as the recipe asks; its key and routes are the key path's.
      const decider = await keygate('forward-auth', embedded('forward-auth'), { trustedProxies: ['127.0.0.1/32'] });
      const secretFa = await benchKey(decider.admin, null);
      let last: Nginx | null = null;
      cleanups.push(async () => { await last?.stop(); });
      const nginx = system(async () => {
        await last?.stop();
        const n = last = await startNginx(nginxRecipe(decider.url.replace('http://', ''), `127.0.0.1:${upstream.port}`), { core: LOAD_CORE });
        return { url: n.url, proc: n.proc };
      });
      systems.push(nginx);
      scenarios.push({ id: 'forwardAuth', name: 'nginx auth_request + keygate decision', system: nginx, cpuOf: decider, path, opts: () => ({ headers: { 'x-api-key': secretFa } }) });
    } else {
      process.stderr.write('no nginx on the PATH: the forward-auth scenario is left out (apt-get install nginx-light)\n');
    }
    scenarios.push(
      { id: 'inspected', name: 'keygate inspected event route (1 KiB)', system: body, path, opts: () => ({ method: 'POST', body: EVENT, headers: { 'x-api-key': secretBody, 'content-type': 'application/json' } }) },
      { id: 'workers2', name: 'keygate key path, workers: 2', system: two, path, opts: () => ({ headers: { 'x-api-key': secretTwo } }) },
    );
    const chosen = ONLY === null ? scenarios : scenarios.filter((sc) => ONLY.includes(sc.id));
    if (chosen.length === 0) throw new Error(`BENCH_SCENARIOS names no scenario of ${scenarios.map((sc) => sc.id).join(', ')}`);
    // Systems keep their order: the nginx in front of a keygate starts after it, on its new port.
    const used = systems.filter((sys) => chosen.some((sc) => sc.system === sys || sc.cpuOf === sys));
    for (const sys of systems) if (!used.includes(sys) && sys.proc) await stop(sys.proc);
    rows = await measureAll(chosen, used, chosen.some((sc) => sc.id === 'token') ? mint : async () => {});
    if (ONLY === null) paced = await measureTimed([
      { id: 'bare', system: bare, headers: withKey.headers, rate: RATE },
      { id: 'key', system: one, headers: withKey.headers, rate: RATE },
      { id: 'bareSaturated', system: bare, headers: withKey.headers, rate: null },
      { id: 'keySaturated', system: one, headers: withKey.headers, rate: null },
    ]);
  } finally {
    for (const sys of systems.reverse()) if (sys.proc) await stop(sys.proc);
    for (const cleanup of cleanups) await cleanup();
    if (upstreamProc) await stop(upstreamProc);
    await redis?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  const nsPerCheck = policyCheck();

  const by = new Map(rows.map((r) => [r.id, r]));
  /**
   * Three readings of "a is this many times b": the median rounds' req/s; the median of the
   * per-round ratios (the two ran seconds apart, so drift of the machine mostly cancels); and
   * the CPU each spent per request on its core (what it could serve with the core to itself).
   */
  const compare = (a: string, b: string): { rps: number; perRound: number; perRoundMin: number; perRoundMax: number; cpu: number } | null => {
    const ra = by.get(a);
    const rb = by.get(b);
    if (!ra || !rb) return null;
    const perRound = ra.rounds.map((x, i) => x / rb.rounds[i]!);
    return {
      rps: round3(ra.rps / rb.rps),
      perRound: round3(median(perRound)),
      perRoundMin: round3(Math.min(...perRound)),
      perRoundMax: round3(Math.max(...perRound)),
      cpu: round3(rb.cpuUsPerReqMedian / ra.cpuUsPerReqMedian),
    };
  };
  /** p50/p99 differences, keygate's over the bare proxy's, round by round (a full run only). */
  const overhead = (keyId: string, bareId: string): { p50Us: number; p99Us: number } | null => {
    const k = paced?.get(keyId);
    const b = paced?.get(bareId);
    if (!k || !b) return null;
    return { p50Us: median(k.map((x, i) => x.p50 - b[i]!.p50)), p99Us: median(k.map((x, i) => x.p99 - b[i]!.p99)) };
  };
  const pacedOverhead = overhead('key', 'bare');
  const saturatedOverhead = overhead('keySaturated', 'bareSaturated');
  const medianOf = (id: string, f: (t: TimedResult) => number): number => median(paced!.get(id)!.map(f));
  /**
   * Forward-auth: keygate's CPU per decision (behind nginx) over its CPU per proxied request
   * (the key path), from the medians and round by round; ≤ 0.5 means one keygate core decides
   * for at least twice the traffic it could proxy.
   */
  const forwardAuth = ((): { decisionUs: number; proxiedUs: number; cpu: number; perRound: number; perRoundMin: number; perRoundMax: number } | null => {
    const fa = by.get('forwardAuth');
    const key = by.get('key');
    if (!fa || !key) return null;
    const perRound = fa.cpuRounds.map((x, i) => x / key.cpuRounds[i]!);
    return {
      decisionUs: fa.cpuUsPerReqMedian, proxiedUs: key.cpuUsPerReqMedian, cpu: round3(fa.cpuUsPerReqMedian / key.cpuUsPerReqMedian),
      perRound: round3(median(perRound)), perRoundMin: round3(Math.min(...perRound)), perRoundMax: round3(Math.max(...perRound)),
    };
  })();
  const ratios = {
    keyLoggedVsBare: compare('keyLogged', 'bare'),
    keyLoggedVsKey: compare('keyLogged', 'key'),
    keyVsBare: compare('key', 'bare'),
    keyVsFastify: compare('key', 'fastify'),
    tokenVsKey: compare('token', 'key'),
    redisLimitVsKey: compare('redisLimit', 'key'),
    redisLimitManyVsKey: compare('redisLimitMany', 'key'),
    redisLimitVsRedisKey: compare('redisLimit', 'redisKey'),
    redisLimitManyVsRedisKey: compare('redisLimitMany', 'redisKey'),
    inspectedVsKey: compare('inspected', 'key'),
    workers2VsKey: compare('workers2', 'key'),
    p99OverheadMs: by.has('key') && by.has('bare') ? by.get('key')!.p99 - by.get('bare')!.p99 : null,
    pacedOverhead,
    saturatedOverhead,
    forwardAuth,
  };
  const targets: [string, ReturnType<typeof compare>, number | null][] = [
    ['default config / bare proxy', ratios.keyLoggedVsBare, 0.85],
    ['default config / accessLog: false', ratios.keyLoggedVsKey, 0.95],
    ['key path (log off) / bare proxy', ratios.keyVsBare, 0.85],
    ['key path / @fastify/http-proxy', ratios.keyVsFastify, 1.5],
    ['token path / key path', ratios.tokenVsKey, 0.9],
    ['Redis rate limit / key path', ratios.redisLimitVsKey, 0.85],
    [`Redis limit, ${MANY_KEYS} keys / key path`, ratios.redisLimitManyVsKey, null],
    ['Redis limit / Redis, no limit', ratios.redisLimitVsRedisKey, null],
    [`Redis limit, ${MANY_KEYS} keys / Redis, no limit`, ratios.redisLimitManyVsRedisKey, null],
    ['inspected 1 KiB POST / key path', ratios.inspectedVsKey, null],
    [`workers: 2 / key path (one core)`, ratios.workers2VsKey, null],
  ];
  const at = new Date().toISOString();
  const machine = `${CORES} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), node ${process.version}`;
  const pad = (s: string | number, n: number): string => String(s).padStart(n);
  const f3 = (x: number): string => x.toFixed(3);
  const lines = [
    '',
    `keygate bench — ${at} — ${machine}`,
    `${K.connections} connections, ${K.rounds} rounds of ${K.seconds} s, median round shown; systems under test on core ${SUT_CORE}, load, upstream and Redis on core ${LOAD_CORE}`,
    '',
    `| scenario                                 |  req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | req/s per round |`,
    `|------------------------------------------|-------:|-------:|-------:|--------:|-----------:|-----------------|`,
    ...rows.map((r) => `| ${r.name.padEnd(40)} | ${pad(r.rps, 6)} | ${pad(r.p50, 6)} | ${pad(r.p99, 6)} | ${pad(r.non2xx + r.errors, 7)} | ${pad(r.cpuUsPerReqMedian.toFixed(1), 10)} | ${r.rounds.join(' / ')} |`),
    '',
    `| ratio                                  | median rounds | per-round median (range)   | by CPU per request | target | readings at target |`,
    `|----------------------------------------|--------------:|---------------------------:|-------------------:|-------:|-------------------:|`,
    ...targets.filter(([, v]) => v !== null).map(([name, v, min]) => {
      const met = min === null ? '—' : `${[v!.rps, v!.perRound, v!.cpu].filter((x) => x >= min).length} of 3`;
      const range = `${f3(v!.perRound)} (${f3(v!.perRoundMin)}–${f3(v!.perRoundMax)})`;
      return `| ${name.padEnd(38)} | ${pad(f3(v!.rps), 13)} | ${pad(range, 26)} | ${pad(f3(v!.cpu), 18)} | ${min === null ? '     —' : `≥ ${min}`} | ${pad(met, 18)} |`;
    }),
    '',
    ...(forwardAuth === null ? [] : [
      `forward-auth (target ≤ 0.5): keygate CPU per decision behind nginx ${forwardAuth.decisionUs.toFixed(1)} µs / per proxied request ${forwardAuth.proxiedUs.toFixed(1)} µs = ${f3(forwardAuth.cpu)}` +
        ` (per-round median ${f3(forwardAuth.perRound)}, ${f3(forwardAuth.perRoundMin)}–${f3(forwardAuth.perRoundMax)}): ${forwardAuth.cpu <= 0.5 ? 'met' : 'NOT met'}`,
      `  nginx runs on core ${LOAD_CORE} with the load generator and the upstream, so the forward-auth row's req/s is nginx's and that core's, not keygate's`,
    ]),
    ...(pacedOverhead === null || saturatedOverhead === null ? [] : [
      `p99 over the bare proxy at ${K.connections} connections (target < 1 ms):`,
      `  saturated, autocannon (the table above, whole ms): ${ratios.p99OverheadMs} ms`,
      `  saturated, timed in µs (median of per-round differences): p50 ${saturatedOverhead.p50Us} µs, p99 ${saturatedOverhead.p99Us} µs` +
        ` — bare p99 ${medianOf('bareSaturated', (x) => x.p99)} µs at ${medianOf('bareSaturated', (x) => x.rps)} req/s, keygate p99 ${medianOf('keySaturated', (x) => x.p99)} µs at ${medianOf('keySaturated', (x) => x.rps)} req/s`,
      `  paced at ${RATE} req/s (µs, median of per-round differences): p50 ${pacedOverhead.p50Us} µs, p99 ${pacedOverhead.p99Us} µs` +
        ` — bare p99 ${medianOf('bare', (x) => x.p99)} µs, keygate p99 ${medianOf('key', (x) => x.p99)} µs`,
    ]),
    `"default config": the key path with the access log on (the default) and keygate's stdout redirected to a file, as in production; every other keygate row runs with accessLog: false`,
    `workers: 2 share core ${SUT_CORE} with their primary here: it shows what the multi-process design costs, not scaling`,
    `Redis rows: redis-server shares core ${LOAD_CORE} with the load generator and the upstream, which slows every Redis row; "Redis, no limit" isolates the limit's own cost`,
    `policy check (cache hit, keep-alive repeat, bench/policy-check.ts): ${nsPerCheck ?? 'failed'} ns/op`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  const file = writeResults('', { at, machine, cores: CORES, node: process.version, ...K, rate: RATE, results: rows, paced: paced === null ? null : Object.fromEntries(paced), ratios, nsPerCheck });
  process.stdout.write(`results written to ${file}\n`);
}

runMain(main);
