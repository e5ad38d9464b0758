import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { stringify } from 'yaml';

export const ROOT = resolve(import.meta.dirname, '..');
export const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
export const CORES = availableParallelism();
/** The system under test gets core 0; the load generator and the upstream share core 1. */
export const SUT_CORE = '0';
export const LOAD_CORE = CORES > 1 ? '1' : '0';
export const ADMIN_TOKEN = 'bench-admin-token-0123456789';
export const PEPPER = 'bench-pepper-0123456789abcdef';

/** A positive number from the environment variable `name`, or `fallback` when it is unset. */
export function num(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(v)}`);
  return n;
}

export interface Knobs { seconds: number; warmup: number; rounds: number; connections: number }

/** BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS over each bench's defaults. */
export function knobs(defaults: Knobs): Knobs {
  return {
    seconds: num('BENCH_SECONDS', defaults.seconds),
    warmup: num('BENCH_WARMUP_SECONDS', defaults.warmup),
    rounds: num('BENCH_ROUNDS', defaults.rounds),
    connections: num('BENCH_CONNECTIONS', defaults.connections),
  };
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const round3 = (x: number): number => Number(x.toFixed(3));

export function pinSelf(core: string): void {
  try {
    execFileSync('taskset', ['-cp', core, String(process.pid)], { stdio: 'ignore' });
  } catch {
    process.stderr.write('taskset not available: running unpinned\n');
  }
}

export interface Started { proc: ChildProcess; line: Record<string, unknown> }

export const listening = (l: Record<string, unknown>): boolean => typeof l.listening === 'number';

/**
 * Starts a process pinned to `core` and resolves with the first stdout JSON line `ready` accepts.
 * With `stdoutFile`, stdout goes to that file (as in production: `keygate serve > file`), and
 * the file is read for the line.
 */
export function startPinned(core: string, args: string[], env: Record<string, string>, ready: (line: Record<string, unknown>) => boolean,
  stdoutFile?: string): Promise<Started> {
  // A fresh file each start: a long bench writes tens of MiB of access log a round.
  const out = stdoutFile === undefined ? 'pipe' : openSync(stdoutFile, 'w');
  const proc = spawn('taskset', ['-c', core, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', out, 'inherit'] });
  if (typeof out === 'number') closeSync(out);
  return new Promise((resolve, reject) => {
    let buf = '';
    let started = false;
    let poll: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearInterval(poll);
      proc.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start`));
    }, 20_000);
    const scan = (): void => {
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (ready(line)) {
            started = true;
            clearTimeout(timer);
            clearInterval(poll);
            resolve({ proc, line });
            return;
          }
        } catch {
          // not a JSON line
        }
      }
    };
    if (stdoutFile === undefined) {
      proc.stdout!.on('data', (d: Buffer) => {
        if (started) return;
        buf += d.toString();
        scan();
      });
    } else {
      let offset = 0;
      poll = setInterval(() => {
        const size = statSync(stdoutFile).size;
        if (size <= offset) return;
        const fd = openSync(stdoutFile, 'r');
        const chunk = Buffer.alloc(size - offset);
        readSync(fd, chunk, 0, chunk.length, offset);
        closeSync(fd);
        offset = size;
        buf += chunk.toString();
        scan();
      }, 50);
    }
    proc.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
  });
}

/** Stops `proc` with `signal` (SIGINT lets a `--cpu-prof` process write its profile), then SIGKILL after 10 s. */
export async function stop(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** The benchmark's upstream (`bench/upstream.ts`), pinned to the load core. */
export async function startUpstream(): Promise<{ proc: ChildProcess; port: number; url: string }> {
  const { proc, line } = await startPinned(LOAD_CORE, [TSX, join(ROOT, 'bench', 'upstream.ts')], {}, listening);
  const port = line.listening as number;
  return { proc, port, url: `http://127.0.0.1:${port}` };
}

export interface Keygate { proc: ChildProcess; gateway: string; admin: string }

/**
 * A keygate process from `dist/` (run `npm run build` first) on the given store, pinned to
 * `core`. The access log is off unless `logFile` names the file its stdout goes to (the
 * default config, as run in production: access log on, stdout to a file). `extra` is merged
 * over the config's top level (`gateway` is merged one level deeper).
 */
export async function startKeygate(dir: string, name: string, opts: {
  upstreamPort: number; store: Record<string, unknown>; routes: unknown[]; core?: string; gateway?: Record<string, unknown>; extra?: Record<string, unknown>;
  /** Flags for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Access log on, stdout (every log line) written to this file (emptied at each start). */
  logFile?: string;
  /** Another build's `dist/cli.js` (default: this tree's). */
  cli?: string;
}): Promise<Keygate> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify({
    gateway: { listen: { host: '127.0.0.1', port: 0 }, workers: 1, accessLog: opts.logFile !== undefined, ...opts.gateway },
    admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'bench', token: ADMIN_TOKEN }] },
    status: { listen: { host: '127.0.0.1', port: 0 } },
    store: opts.store,
    secrets: { pepper: PEPPER },
    upstreams: { api: { url: `http://127.0.0.1:${opts.upstreamPort}` } },
    routes: opts.routes,
    ...opts.extra,
  }));
  const { proc, line } = await startPinned(opts.core ?? SUT_CORE, [process.execPath, ...(opts.nodeArgs ?? []), opts.cli ?? join(ROOT, 'dist', 'cli.js'), 'serve', '--config', file], {}, (l) => l.msg === 'ready', opts.logFile);
  return { proc, gateway: String(line.gateway), admin: String(line.admin) };
}

/** One admin API call; throws with the answer on anything but 2xx. */
export async function adminCall(admin: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(admin + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? null : res.json();
}

export interface LoadResult { rps: number; p50: number; p99: number; non2xx: number; errors: number; requests: number }

export interface LoadOptions {
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
  method?: string;
  body?: string;
  /** Each request carries the next of these secrets in turn, as X-Api-Key. */
  keys?: readonly string[];
}

export async function load(url: string, opts: LoadOptions): Promise<LoadResult> {
  const keys = opts.keys;
  let next = 0;
  const result = await autocannon({
    url,
    connections: opts.connections,
    duration: opts.seconds,
    pipelining: 1,
    headers: opts.headers ?? {},
    method: (opts.method ?? 'GET') as 'GET',
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    ...(keys ? { requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-api-key': keys[next++ % keys.length]! } }) }] } : {}),
  });
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    requests: result.requests.total,
  };
}

/**
 * A measured run of `url` and the CPU the process (tree) `pid` spent per request on it, after
 * an unmeasured `rewarmSeconds` (a process that sat idle while others ran has had its heap and
 * code trimmed by V8).
 */
export async function measuredLoad(url: string, opts: LoadOptions, pid: number, rewarmSeconds: number): Promise<LoadResult & { cpuUsPerReq: number }> {
  if (rewarmSeconds > 0) await load(url, { ...opts, seconds: rewarmSeconds });
  const cpuBefore = treeCpu(pid, allPids());
  const r = await load(url, opts);
  return { ...r, cpuUsPerReq: round3(((treeCpu(pid, allPids()) - cpuBefore) / Math.max(1, r.requests)) * 1e6) };
}

export interface TimedResult { rps: number; p50: number; p99: number }

/**
 * GETs `path` over `connections` connections for `seconds`, timing each request in µs
 * (autocannon records whole milliseconds). `rate` null: a closed loop, each requester sending
 * its next request when the last is answered. Otherwise requests are due at `rate` per second
 * in all, staggered. A request whose predecessor on its connection was answered after it was
 * due is timed from when it was due, so a stall counts against it; otherwise from when it is
 * sent (the load generator's own timer slop is not the target's).
 */
export async function timedLoad(origin: string, path: string, headers: Record<string, string>, connections: number, seconds: number, rate: number | null): Promise<TimedResult> {
  const pool = new Pool(origin, { connections, pipelining: 1 });
  const samples: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  const every = rate === null ? 0 : (connections / rate) * 1000;
  const loop = async (n: number): Promise<void> => {
    let due = start + (rate === null ? 0 : (n * every) / connections);
    while (due < end && performance.now() < end) {
      const wait = due - performance.now();
      const stalled = wait < 0;
      if (rate !== null && wait > 0) await sleep(wait);
      const from = rate === null || !stalled ? performance.now() : due;
      const res = await pool.request({ path, method: 'GET', headers });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      const now = performance.now();
      samples.push((now - from) * 1000);
      due = rate === null ? now : due + every;
    }
  };
  await Promise.all(Array.from({ length: connections }, (_, n) => loop(n)));
  await pool.close();
  samples.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!);
  return { rps: Math.round(samples.length / seconds), p50: at(0.5), p99: at(0.99) };
}

/** Writes `data` as `bench/results/<prefix><timestamp>.json` and returns the file. */
export function writeResults(prefix: string, data: unknown): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${prefix}${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2));
  return file;
}

/** Resident set size of a process in MiB, from /proc (null when it is gone). */
export function rssMiB(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

// CPU accounting, from /proc: what a process (with its children) has used so far.

export const TICK = 100; // USER_HZ on Linux

export function procStat(pid: number): { ppid: number; cpu: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK };
  } catch {
    return null;
  }
}

export function allPids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** CPU seconds used so far by `root` and all its descendants. */
export function treeCpu(root: number, pids: number[]): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const pid of pids) {
    const s = procStat(pid);
    if (s) { parent.set(pid, s.ppid); cpu.set(pid, s.cpu); }
  }
  let total = 0;
  for (const [pid, c] of cpu) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) { total += c; break; }
    }
  }
  return total;
}

/** Runs a bench's main, printing the stack and exiting 1 on failure. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
    process.exit(1);
  });
}
