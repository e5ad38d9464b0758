import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import autocannon from 'autocannon';

export const CORES = availableParallelism();
/** The system under test gets core 0; the load generator and the upstream share core 1. */
export const SUT_CORE = '0';
export const LOAD_CORE = CORES > 1 ? '1' : '0';

export function pinSelf(core: string): void {
  try {
    execFileSync('taskset', ['-cp', core, String(process.pid)], { stdio: 'ignore' });
  } catch {
    process.stderr.write('taskset not available: running unpinned\n');
  }
}

export interface Started { proc: ChildProcess; line: Record<string, unknown> }

/** Starts a process pinned to `core` and resolves with the first stdout JSON line `ready` accepts. */
export function startPinned(core: string, args: string[], env: Record<string, string>, ready: (line: Record<string, unknown>) => boolean): Promise<Started> {
  const proc = spawn('taskset', ['-c', core, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start`)), 20_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (ready(line)) {
            clearTimeout(timer);
            resolve({ proc, line });
          }
        } catch {
          // not a JSON line
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
  });
}

export async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface LoadResult { rps: number; p50: number; p99: number; non2xx: number; errors: number; requests: number }

export async function load(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string>; method?: string; body?: string }): Promise<LoadResult> {
  const result = await autocannon({
    url,
    connections: opts.connections,
    duration: opts.seconds,
    pipelining: 1,
    headers: opts.headers ?? {},
    method: (opts.method ?? 'GET') as 'GET',
    ...(opts.body !== undefined ? { body: opts.body } : {}),
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
