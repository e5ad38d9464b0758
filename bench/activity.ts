// The cost of recording each key's activity (`keys.activityPerKey`) on the key path: two
// keygate processes, the default (1 000 records per key) and activity off (0), each on the
// embedded store with its own key, loaded in turn round by round; prints req/s and CPU µs per
// request of each and their ratio. CPU per request is what the shared-machine noise disturbs
// least; `npm run bench` remains the judge of the 3% target.
//   npm run build && npx tsx bench/activity.ts
// Knobs: BENCH_ROUNDS (5), BENCH_SECONDS (4), BENCH_WARMUP_SECONDS (2), BENCH_CONNECTIONS (64).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOAD_CORE, adminCall, knobs, measuredLoad, median, pinSelf, round3, runMain, startKeygate, startUpstream, stop, writeResults,
} from './lib.js';

const K = knobs({ seconds: 4, warmup: 2, rounds: 5, connections: 64 });
const ROUTES = [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }];

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-activity-bench-'));
  const upstream = await startUpstream();
  const systems: Array<{ name: string; url: string; pid: number; secret: string; stop: () => Promise<void>; rps: number[]; cpu: number[] }> = [];
  try {
    for (const [name, perKey] of [['activity on (default)', 1_000], ['activity off', 0]] as const) {
      const kg = await startKeygate(dir, name.replace(/\W+/g, '-'), {
        upstreamPort: upstream.port, store: { driver: 'embedded', path: join(dir, `data-${perKey}`) }, routes: ROUTES,
        extra: { keys: { activityPerKey: perKey } },
      });
      const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'bench' });
      const { secret } = await adminCall(kg.admin, 'POST', '/v1/keys', { workspaceId: ws.id, name: 'bench', permissions: ['*'] });
      systems.push({ name, url: `${kg.gateway}/v1/events`, pid: kg.proc.pid!, secret, stop: () => stop(kg.proc), rps: [], cpu: [] });
    }
    for (let round = 0; round < K.rounds; round++) {
      // Alternate which goes first, so neither always runs on the warmer machine.
      const order = round % 2 === 0 ? systems : [...systems].reverse();
      for (const s of order) {
        const r = await measuredLoad(s.url, { connections: K.connections, seconds: K.seconds, headers: { 'x-api-key': s.secret } }, s.pid, K.warmup);
        if (r.non2xx > 0 || r.errors > 0) throw new Error(`${s.name}: ${r.non2xx} non-2xx, ${r.errors} errors`);
        s.rps.push(r.rps);
        s.cpu.push(r.cpuUsPerReq);
        console.log(`round ${round + 1} ${s.name}: ${r.rps} req/s, ${r.cpuUsPerReq} µs CPU/request`);
      }
    }
    const [on, off] = systems as [typeof systems[0], typeof systems[0]];
    const summary = {
      on: { rps: median(on.rps), cpuUsPerReq: median(on.cpu) },
      off: { rps: median(off.rps), cpuUsPerReq: median(off.cpu) },
      rpsRatio: round3(median(on.rps) / median(off.rps)),
      cpuRatio: round3(median(on.cpu) / median(off.cpu)),
      perRoundCpuRatio: round3(median(on.cpu.map((c, i) => c / off.cpu[i]!))),
    };
    console.table([{ system: on.name, ...summary.on }, { system: off.name, ...summary.off }]);
    console.log(`on/off: req/s ${summary.rpsRatio}, CPU per request ${summary.cpuRatio} (per-round median ${summary.perRoundCpuRatio})`);
    console.log(`written: ${writeResults('activity', { knobs: K, on, off, summary })}`);
  } finally {
    for (const s of systems) await s.stop();
    await stop(upstream.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
