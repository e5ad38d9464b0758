// p50/p99 in microseconds at 64 connections (autocannon records whole milliseconds, too
// coarse to tell whether keygate adds under 1 ms), bare undici proxy against the keygate key
// path, same pinning as `npm run bench`, alternating round by round:
//   - saturated: a closed loop of 64 requesters over a 64-connection undici Pool (each sends
//     its next request when the last one is answered); p99 is mostly queueing here;
//   - paced: the same 64 connections sending BENCH_RATE requests per second in all, each
//     request timed from when it was due (so a stall counts against it), which shows what
//     keygate itself adds to a request.
// Run: npm run build && npx tsx bench/latency.ts
// Knobs: BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_RATE (4000).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ROOT, SUT_CORE, LOAD_CORE, TSX, adminCall, knobs, listening, median, pinSelf, startKeygate, startPinned, startUpstream, stop, timedLoad, writeResults, runMain, type TimedResult,
} from './lib.js';

const CONNECTIONS = 64;
const K = knobs({ seconds: 5, warmup: 3, rounds: 3, connections: CONNECTIONS });
const RATE = Number(process.env.BENCH_RATE ?? 4_000);

type Result = TimedResult;
const run = (origin: string, headers: Record<string, string>, seconds: number, rate: number | null): Promise<Result> =>
  timedLoad(origin, '/v1/events', headers, CONNECTIONS, seconds, rate);

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-latency-'));
  const upstream = await startUpstream();
  const bare = await startPinned(SUT_CORE, [TSX, join(ROOT, 'bench', 'bare-proxy.ts')], { UPSTREAM: upstream.url }, listening);
  const kg = await startKeygate(dir, 'latency', {
    upstreamPort: upstream.port, store: { driver: 'embedded', path: join(dir, 'data') },
    routes: [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }],
  });
  try {
    const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'bench' });
    const { secret } = (await adminCall(kg.admin, 'POST', '/v1/keys', { workspaceId: ws.id, name: 'bench', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'] })) as { secret: string };
    const targets = [
      { name: 'bare undici proxy', origin: `http://127.0.0.1:${bare.line.listening as number}`, headers: {} as Record<string, string> },
      { name: 'keygate key path', origin: kg.gateway, headers: { 'x-api-key': secret } },
    ];
    const modes: Array<{ name: string; rate: number | null }> = [{ name: 'saturated', rate: null }, { name: `paced at ${RATE} req/s`, rate: RATE }];
    for (const t of targets) await run(t.origin, t.headers, K.warmup, null);
    const results = new Map<string, Result[]>();
    for (let r = 0; r < K.rounds; r++) {
      for (const m of modes) {
        for (const t of targets) {
          const key = `${m.name}|${t.name}`;
          const res = await run(t.origin, t.headers, K.seconds, m.rate);
          results.set(key, [...(results.get(key) ?? []), res]);
          process.stderr.write(`round ${r + 1} ${m.name} ${t.name}: ${res.rps} req/s, p50 ${res.p50} µs, p99 ${res.p99} µs\n`);
        }
      }
    }
    const lines: string[] = [''];
    const summary: Record<string, unknown> = {};
    for (const m of modes) {
      const [bareRs, kgRs] = targets.map((t) => results.get(`${m.name}|${t.name}`)!);
      for (const [t, rs] of [[targets[0]!, bareRs!], [targets[1]!, kgRs!]] as const) {
        lines.push(`${m.name.padEnd(22)} ${t.name.padEnd(18)} ${String(median(rs.map((x) => x.rps))).padStart(6)} req/s  p50 ${median(rs.map((x) => x.p50))} µs  p99 ${median(rs.map((x) => x.p99))} µs   (rounds: ${rs.map((x) => `${x.rps}/${x.p99}µs`).join(', ')})`);
      }
      const p99Overhead = median(kgRs!.map((x, i) => x.p99 - bareRs![i]!.p99));
      const p50Overhead = median(kgRs!.map((x, i) => x.p50 - bareRs![i]!.p50));
      lines.push(`${m.name.padEnd(22)} keygate over the bare proxy: p50 ${p50Overhead} µs, p99 ${p99Overhead} µs (median of per-round differences)`, '');
      summary[m.name] = { bare: bareRs, keygate: kgRs, p50OverheadUs: p50Overhead, p99OverheadUs: p99Overhead };
    }
    process.stdout.write(lines.join('\n'));
    process.stdout.write(`results written to ${writeResults('latency-', { at: new Date().toISOString(), node: process.version, rate: RATE, ...K, connections: CONNECTIONS, summary })}\n`);
  } finally {
    await stop(kg.proc);
    await stop(bare.proc);
    await stop(upstream.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
