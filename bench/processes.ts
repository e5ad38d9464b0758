// One process is not another: starts BENCH_PROCESSES (4) keygate processes with the same
// config and key, and as many bare proxies, all pinned to core 0, then loads them in turn
// round by round (core 1) and prints each process's req/s and CPU µs per request. The spread
// between processes of the same code is why `npm run bench` starts every system afresh each
// round. BENCH_CPU_PROF=1 runs the keygate processes under --cpu-prof (profiles kept in
// bench/results/) to compare a slow one with a fast one.
//   npm run build && npx tsx bench/processes.ts
// Knobs: BENCH_PROCESSES (4), BENCH_ROUNDS (3), BENCH_SECONDS (4), BENCH_WARMUP_SECONDS (3),
// BENCH_CONNECTIONS (64).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOAD_CORE, ROOT, SUT_CORE, TSX, adminCall, knobs, listening, load, measuredLoad, median, pinSelf, runMain, startKeygate, startPinned,
  startUpstream, stop, writeResults,
} from './lib.js';

const K = knobs({ seconds: 4, warmup: 3, rounds: 3, connections: 64 });
const N = Number(process.env.BENCH_PROCESSES ?? 4);
const PROFILE = process.env.BENCH_CPU_PROF === '1';
const ROUTES = [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }];

interface Target { name: string; url: string; proc: ChildProcess; headers: Record<string, string> }

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-processes-'));
  const profDir = join(ROOT, 'bench', 'results', `processes-${Date.now()}`);
  const upstream = await startUpstream();
  const targets: Target[] = [];
  try {
    let secret = '';
    for (let i = 0; i < N; i++) {
      // Each process has a store and a key of its own, made the same way.
      const kg = await startKeygate(dir, `kg${i}`, {
        upstreamPort: upstream.port, store: { driver: 'embedded', path: join(dir, `data${i}`) }, routes: ROUTES,
        nodeArgs: PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(profDir, `kg${i}`)] : [],
      });
      const target: Target = { name: `keygate ${i + 1}`, url: `${kg.gateway}/v1/events`, proc: kg.proc, headers: {} };
      targets.push(target);
      const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'bench' });
      ({ secret } = await adminCall(kg.admin, 'POST', '/v1/keys', {
        workspaceId: ws.id, name: 'bench', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'],
      }) as { secret: string });
      target.headers = { 'x-api-key': secret };
    }
    for (let i = 0; i < N; i++) {
      const p = await startPinned(SUT_CORE, [TSX, join(ROOT, 'bench', 'bare-proxy.ts')], { UPSTREAM: upstream.url }, listening);
      targets.push({ name: `bare proxy ${i + 1}`, url: `http://127.0.0.1:${p.line.listening as number}/v1/events`, proc: p.proc, headers: { 'x-api-key': secret } });
    }
    for (const t of targets) await load(t.url, { connections: K.connections, seconds: K.warmup, headers: t.headers });
    const rounds = new Map<string, Array<{ rps: number; cpu: number }>>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < K.rounds; round++) {
      for (const t of targets) {
        const r = await measuredLoad(t.url, { connections: K.connections, seconds: K.seconds, headers: t.headers }, t.proc.pid!, 1);
        if (r.non2xx + r.errors > 0) throw new Error(`${t.name}: ${r.non2xx} non-2xx answers and ${r.errors} errors`);
        rounds.get(t.name)!.push({ rps: r.rps, cpu: r.cpuUsPerReq });
      }
    }
    const lines = [
      '',
      `${N} keygate processes and ${N} bare proxies, same code and config each, ${K.rounds} rounds of ${K.seconds} s at ${K.connections} connections`,
      '| process        | req/s (median) | CPU µs/req (median) | CPU µs/req per round |',
      '|----------------|---------------:|--------------------:|----------------------|',
      ...targets.map((t) => {
        const list = rounds.get(t.name)!;
        return `| ${t.name.padEnd(14)} | ${String(median(list.map((x) => x.rps))).padStart(14)} | ${median(list.map((x) => x.cpu)).toFixed(1).padStart(19)} | ${list.map((x) => x.cpu.toFixed(1)).join(' / ')} |`;
      }),
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const file = writeResults('processes-', { at: new Date().toISOString(), ...K, processes: N, rounds: Object.fromEntries(rounds) });
    process.stdout.write(`results written to ${file}${PROFILE ? `; profiles in ${profDir}` : ''}\n`);
  } finally {
    // SIGINT: keygate drains and exits 0, which is when --cpu-prof writes its profile.
    for (const t of targets) await stop(t.proc, 'SIGINT');
    await stop(upstream.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
