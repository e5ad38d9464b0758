// Body policies: what inspecting an event body costs. One keygate (embedded store, pinned to
// core 0) serves the same POST route twice: once declaring `events` (the body is read, parsed
// strictly and checked against the key's event lists) and once not (the body streams). Each is
// loaded with a 1 KiB event and with a 100-event batch; scenarios alternate round by round.
//   npm run build && npx tsx bench/body-policy.ts
// Knobs: BENCH_ROUNDS (3), BENCH_SECONDS (8), BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS (64).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { CORES, LOAD_CORE, SUT_CORE, adminCall, knobs, load, pinSelf, startKeygate, startUpstream, stop, writeResults, type LoadResult } from './lib.js';

const { seconds: SECONDS, warmup: WARMUP, rounds: ROUNDS, connections: CONNECTIONS } = knobs({ seconds: 8, warmup: 3, rounds: 3, connections: 64 });

/** A realistic single event of about 1 KiB. */
function event(i: number, padTo = 0): Record<string, unknown> {
  const e: Record<string, unknown> = {
    action: i % 5 === 0 ? 'page.view' : 'cart.add',
    profileId: `p_${100000 + i}`,
    occurredAt: '2026-11-23T05:00:00.000Z',
    properties: { sku: `SKU-${i}`, price: 19.99, currency: 'EUR', tags: ['a', 'b', 'c'], referrer: 'https://example.com/landing?utm=bench' },
  };
  if (padTo > 0) e.note = 'x'.repeat(Math.max(0, padTo - JSON.stringify(e).length - 10));
  return e;
}

const ONE = JSON.stringify(event(1, 1024));
const BATCH = JSON.stringify(Array.from({ length: 100 }, (_, i) => event(i)));

interface Scenario { name: string; url: string; body: string }

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const procs: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-body-'));
  try {
    const upstream = await startUpstream();
    procs.push(upstream.proc);
    const kg = await startKeygate(dir, 'bench', {
      upstreamPort: upstream.port,
      store: { driver: 'embedded', path: join(dir, 'data') },
      gateway: { maxBodyBytes: 1_048_576 },
      routes: [
        { name: 'inspected', method: 'POST', path: '/v1/events', upstream: 'api', permission: 'events.create', events: { field: 'action' } },
        { name: 'streamed', method: 'POST', path: '/v1/raw-events', upstream: 'api', permission: 'events.create' },
      ],
    });
    procs.push(kg.proc);
    const { admin, gateway } = kg;
    const ws = await adminCall(admin, 'POST', '/v1/workspaces', { name: 'bench' });
    // Lists with exact names and prefixes, so the check does real work; the bench events pass.
    const { secret } = await adminCall(admin, 'POST', '/v1/keys', {
      workspaceId: ws.id, name: 'bench', permissions: ['events.create'],
      eventAllowlist: ['page.*', 'cart.add', 'cart.remove', 'checkout.*'], eventDenylist: ['transaction.*', 'admin.grant'],
    });
    const headers = { 'x-api-key': secret as string, 'content-type': 'application/json' };
    const scenarios: Scenario[] = [
      { name: '1 KiB event, streamed (no events on the route)', url: `${gateway}/v1/raw-events`, body: ONE },
      { name: '1 KiB event, inspected', url: `${gateway}/v1/events`, body: ONE },
      { name: `100-event batch (${(BATCH.length / 1024).toFixed(1)} KiB), streamed`, url: `${gateway}/v1/raw-events`, body: BATCH },
      { name: '100-event batch, inspected', url: `${gateway}/v1/events`, body: BATCH },
    ];
    const opts = (s: Scenario) => ({ connections: CONNECTIONS, seconds: SECONDS, method: 'POST', headers, body: s.body });
    for (const s of scenarios) {
      const r = await load(s.url, { ...opts(s), seconds: WARMUP });
      if (r.non2xx > 0) throw new Error(`${s.name}: ${r.non2xx} non-2xx answers in warm-up`);
    }
    const runs = new Map<string, LoadResult[]>(scenarios.map((s) => [s.name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of scenarios) {
        const r = await load(s.url, opts(s));
        runs.get(s.name)!.push(r);
        process.stderr.write(`round ${round + 1} ${s.name}: ${r.rps} req/s, p99 ${r.p99} ms, non-2xx ${r.non2xx}\n`);
      }
    }
    const rows = scenarios.map((s) => {
      const list = runs.get(s.name)!;
      const sorted = [...list].sort((a, b) => a.rps - b.rps);
      return { name: s.name, ...sorted[Math.floor(sorted.length / 2)]!, rounds: list.map((r) => r.rps) };
    });
    const at = new Date().toISOString();
    console.log(`\nkeygate body-policy bench — ${at} — ${CORES} cores, node ${process.version}`);
    console.log(`${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS}s (median round); keygate on core ${SUT_CORE}, load and upstream on core ${LOAD_CORE}\n`);
    console.log('| scenario | req/s | p50 ms | p99 ms | non-2xx | req/s per round |');
    console.log('|---|---:|---:|---:|---:|---|');
    for (const r of rows) console.log(`| ${r.name} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.rounds.join(' / ')} |`);
    const ratio = (a: number, b: number): string => (rows[a]!.rps / rows[b]!.rps).toFixed(3);
    console.log(`\ninspected / streamed: 1 KiB event ${ratio(1, 0)}, 100-event batch ${ratio(3, 2)}`);
    writeResults('body-policy-', { at, node: process.version, cores: CORES, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, rows });
  } finally {
    for (const p of procs.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
