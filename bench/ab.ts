// `npx tsx bench/ab.ts <A/dist/cli.js> [B/dist/cli.js]`: two builds of keygate (B defaults to
// this tree's `dist/`) on the key path at the same time, to tell a change of a few percent on a
// machine that drifts by more than that from one run to the next. Each round starts both afresh
// on core 0 (their start order alternating), warms them, then loads both at once from core 1
// (autocannon, 32 connections each, the upstream there too) and reads each one's req/s and CPU
// per request from /proc: whatever slows the machine during a round slows both. The report is
// the median of the rounds' ratios B / A. A build against itself reads 1.00–1.02 as the median
// (0.98–1.09 per round) on the 2-core development VMs: one process still differs from another,
// so run enough rounds and read effects under 2–3% as none.
// Knobs: BENCH_ROUNDS (8), BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (32 per
// build); AB_LOG_A / AB_LOG_B (1, the default: the default config, access log on with stdout to
// a file; 0: accessLog: false).
// Build A from another commit with:
//   git worktree add ../keygate-a <commit> && ln -s "$PWD/node_modules" ../keygate-a/ \
//     && (cd ../keygate-a && npx tsc -p tsconfig.build.json)
// then `npm run build && npx tsx bench/ab.ts ../keygate-a/dist/cli.js`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  LOAD_CORE, ROOT, adminCall, allPids, knobs, load, median, pinSelf, round3, startKeygate, startUpstream, stop, treeCpu, writeResults, runMain,
  type Keygate,
} from './lib.js';

const K = knobs({ seconds: 5, warmup: 3, rounds: 8, connections: 32 });
const A = process.argv[2] ?? '';
const B = process.argv[3] ?? join(ROOT, 'dist', 'cli.js');
if (A === '') throw new Error('usage: npx tsx bench/ab.ts <A/dist/cli.js> [B/dist/cli.js]');
const LOG = { a: process.env.AB_LOG_A !== '0', b: process.env.AB_LOG_B !== '0' };

interface Side { kg: Keygate; headers: Record<string, string> }

async function start(dir: string, side: 'a' | 'b', cli: string, upstreamPort: number, round: number): Promise<Side> {
  const kg = await startKeygate(dir, `${side}${round}`, {
    cli: resolve(cli), upstreamPort, store: { driver: 'embedded', path: join(dir, `data-${side}${round}`) },
    ...(LOG[side] ? { logFile: join(dir, `${side}.log`) } : {}),
    routes: [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }],
  });
  const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'ab' });
  const key = await adminCall(kg.admin, 'POST', '/v1/keys', {
    workspaceId: ws.id, name: 'ab', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'],
  });
  return { kg, headers: { 'x-api-key': key.secret as string } };
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-ab-'));
  const upstream = await startUpstream();
  const rows: Array<{ a: number; b: number; cpuA: number; cpuB: number }> = [];
  try {
    for (let round = 0; round < K.rounds; round++) {
      const first = round % 2 === 0 ? 'a' : 'b';
      const one = await start(dir, first, first === 'a' ? A : B, upstream.port, round);
      const other = await start(dir, first === 'a' ? 'b' : 'a', first === 'a' ? B : A, upstream.port, round);
      const [a, b] = first === 'a' ? [one, other] : [other, one];
      const url = (s: Side): string => `${s.kg.gateway}/v1/events`;
      await Promise.all([a, b].map((s) => load(url(s), { connections: K.connections, seconds: K.warmup, headers: s.headers })));
      const before = allPids();
      const cpu0 = [treeCpu(a.kg.proc.pid!, before), treeCpu(b.kg.proc.pid!, before)];
      const [ra, rb] = await Promise.all([a, b].map((s) => load(url(s), { connections: K.connections, seconds: K.seconds, headers: s.headers })));
      const after = allPids();
      const cpuA = ((treeCpu(a.kg.proc.pid!, after) - cpu0[0]!) / Math.max(1, ra!.requests)) * 1e6;
      const cpuB = ((treeCpu(b.kg.proc.pid!, after) - cpu0[1]!) / Math.max(1, rb!.requests)) * 1e6;
      rows.push({ a: ra!.rps, b: rb!.rps, cpuA, cpuB });
      process.stdout.write(`round ${round + 1}: A ${ra!.rps} req/s ${cpuA.toFixed(1)} µs/req, B ${rb!.rps} req/s ${cpuB.toFixed(1)} µs/req: B/A ${(rb!.rps / ra!.rps).toFixed(3)}, by CPU ${(cpuA / cpuB).toFixed(3)}\n`);
      await Promise.all([stop(a.kg.proc), stop(b.kg.proc)]);
    }
    const ratios = rows.map((r) => r.b / r.a);
    const cpuRatios = rows.map((r) => r.cpuA / r.cpuB);
    const summary = {
      a: A, b: B, log: LOG, rounds: K.rounds,
      ratio: round3(median(ratios)), min: round3(Math.min(...ratios)), max: round3(Math.max(...ratios)), byCpu: round3(median(cpuRatios)),
    };
    process.stdout.write(`B/A: ${summary.ratio} median of ${K.rounds} rounds (${summary.min}–${summary.max}), by CPU per request ${summary.byCpu}\n`);
    writeResults('ab-', { at: new Date().toISOString(), ...summary, rows });
  } finally {
    await stop(upstream.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
