// `npx tsx bench/access-log.ts` (after `npm run build`): what the access log costs, as CPU
// time per request of the keygate process (threads included: the log's writes run on libuv's
// pool), with `accessLog: true` and stdout to a file (the default config, as in production)
// against the same build with `accessLog: false`. CPU per request is what the shared machine
// disturbs least: req/s moves with whatever else runs, the CPU one request takes much less.
// Both keygates are started afresh each round and measured alternately, ACCESS_ROUNDS (7)
// rounds of BENCH_SECONDS (5) after BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (64); keygate
// pinned to core 0, autocannon and the upstream to core 1. Target: log on ≤ 1.05 × log off.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOAD_CORE, adminCall, knobs, load, measuredLoad, median, num, pinSelf, round3, runMain, startKeygate, startUpstream, stop, writeResults, type Keygate,
} from './lib.js';

const K = knobs({ seconds: 5, warmup: 3, rounds: 7, connections: 64 });
const ROUNDS = num('ACCESS_ROUNDS', K.rounds);
const ROUTES = [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }];

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-access-log-'));
  const upstream = await startUpstream();
  const logFile = join(dir, 'keygate.log');
  const store = (name: string): Record<string, unknown> => ({ driver: 'embedded', path: join(dir, name) });
  const start = (name: string, logged: boolean): Promise<Keygate> =>
    startKeygate(dir, name, { upstreamPort: upstream.port, store: store(name), routes: ROUTES, ...(logged ? { logFile } : {}) });
  const secrets = new Map<string, string>();
  const rows = new Map<string, Array<{ rps: number; cpuUsPerReq: number }>>([['on', []], ['off', []]]);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const kgs = { on: await start('on', true), off: await start('off', false) };
      for (const [name, kg] of Object.entries(kgs)) {
        if (!secrets.has(name)) {
          const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name });
          const created = await adminCall(kg.admin, 'POST', '/v1/keys', { workspaceId: ws.id, name, permissions: ['events.read'], ipAllowlist: ['127.0.0.0/8'] });
          secrets.set(name, created.secret as string);
        }
      }
      const url = (name: 'on' | 'off'): string => `${kgs[name].gateway}/v1/events`;
      const opts = (name: 'on' | 'off'): { headers: Record<string, string> } => ({ headers: { 'x-api-key': secrets.get(name)! } });
      for (const name of ['on', 'off'] as const) await load(url(name), { connections: K.connections, seconds: K.warmup, ...opts(name) });
      // Alternate which goes first, so neither always runs on the warmer or cooler spell.
      const order = round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const name of order) {
        const r = await measuredLoad(url(name), { connections: K.connections, seconds: K.seconds, ...opts(name) }, kgs[name].proc.pid!, 1);
        if (r.non2xx + r.errors > 0) throw new Error(`log ${name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
        rows.get(name)!.push({ rps: r.rps, cpuUsPerReq: r.cpuUsPerReq });
        process.stderr.write(`round ${round + 1} log ${name}: ${r.rps} req/s, ${r.cpuUsPerReq} µs CPU/req\n`);
      }
      await stop(kgs.on.proc);
      await stop(kgs.off.proc);
    }
  } finally {
    await stop(upstream.proc);
  }
  const logBytes = statSync(logFile).size;
  rmSync(dir, { recursive: true, force: true });
  const on = rows.get('on')!;
  const off = rows.get('off')!;
  const perRound = on.map((r, i) => r.cpuUsPerReq / off[i]!.cpuUsPerReq);
  const result = {
    cpuUsPerReq: { on: median(on.map((r) => r.cpuUsPerReq)), off: median(off.map((r) => r.cpuUsPerReq)) },
    rps: { on: median(on.map((r) => r.rps)), off: median(off.map((r) => r.rps)) },
    cpuRatio: round3(median(on.map((r) => r.cpuUsPerReq)) / median(off.map((r) => r.cpuUsPerReq))),
    cpuRatioPerRound: { median: round3(median(perRound)), min: round3(Math.min(...perRound)), max: round3(Math.max(...perRound)) },
    rpsRatio: round3(median(on.map((r) => r.rps)) / median(off.map((r) => r.rps))),
    logBytes,
    rounds: { on, off },
  };
  process.stdout.write(`${[
    '',
    `access log cost, ${ROUNDS} rounds of ${K.seconds} s, ${K.connections} connections, median round:`,
    `  CPU per request: log on ${result.cpuUsPerReq.on} µs, log off ${result.cpuUsPerReq.off} µs: on/off ${result.cpuRatio}` +
      ` (per-round median ${result.cpuRatioPerRound.median}, ${result.cpuRatioPerRound.min}–${result.cpuRatioPerRound.max}; target ≤ 1.05)`,
    `  req/s: log on ${result.rps.on}, log off ${result.rps.off}: on/off ${result.rpsRatio}`,
    `  ${(logBytes / 1024 / 1024).toFixed(1)} MiB of log written`,
    '',
  ].join('\n')}`);
  process.stdout.write(`results written to ${writeResults('access-log-', result)}\n`);
}

runMain(main);
