// `npm run bench`: the gateway's hot path against the floor, side by side in one run.
// keygate and the bare proxy are pinned to core 0; this process (autocannon) and the
// upstream to core 1. Results print as a table and are written to bench/results/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { ChildProcess } from 'node:child_process';
import { CORES, LOAD_CORE, SUT_CORE, load, pinSelf, startPinned, stop, type LoadResult } from './lib.js';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

const listening = (l: Record<string, unknown>): boolean => typeof l.listening === 'number';

interface Scenario { name: string; url: string; headers: Record<string, string> }
type Row = LoadResult & { name: string; rounds: number[] };

async function startKeygate(upstreamPort: number, dataDir: string): Promise<{ proc: ChildProcess; gateway: string; admin: string }> {
  const config = {
    gateway: { listen: { host: '127.0.0.1', port: 0 }, workers: 1, accessLog: false },
    admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'bench', token: ADMIN_TOKEN }] },
    store: { driver: 'embedded', path: join(dataDir, 'data') },
    secrets: { pepper: 'bench-pepper-0123456789abcdef' },
    upstreams: { api: { url: `http://127.0.0.1:${upstreamPort}` } },
    routes: [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }],
  };
  const file = join(dataDir, 'bench.yaml');
  writeFileSync(file, stringify(config));
  const { proc, line } = await startPinned(SUT_CORE, [process.execPath, join(ROOT, 'dist', 'cli.js'), 'serve', '--config', file], {}, (l) => l.msg === 'ready');
  return { proc, gateway: String(line.gateway), admin: String(line.admin) };
}

async function adminCall(admin: string, method: string, path: string, body: unknown): Promise<any> {
  const res = await fetch(admin + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Every process stays up for the whole run and the scenarios alternate round by round, so
 * JIT warm-up and machine drift hit them alike; each row is the round with the median req/s.
 */
async function measureAll(scenarios: Scenario[]): Promise<Row[]> {
  for (const s of scenarios) await load(s.url, { connections: CONNECTIONS, seconds: WARMUP, headers: s.headers });
  const runs = new Map<string, LoadResult[]>(scenarios.map((s) => [s.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of scenarios) {
      const r = await load(s.url, { connections: CONNECTIONS, seconds: SECONDS, headers: s.headers });
      runs.get(s.name)!.push(r);
      process.stderr.write(`round ${round + 1} ${s.name}: ${r.rps} req/s, p99 ${r.p99} ms\n`);
    }
  }
  return scenarios.map((s) => {
    const list = runs.get(s.name)!;
    const mid = median(list.map((r) => r.rps));
    const pick = list.find((r) => r.rps === mid)!;
    return { name: s.name, ...pick, rounds: list.map((r) => r.rps) };
  });
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const procs: ChildProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
  let results: Row[];
  try {
    const upstream = await startPinned(LOAD_CORE, [TSX, join(ROOT, 'bench', 'upstream.ts')], {}, listening);
    procs.push(upstream.proc);
    const upstreamUrl = `http://127.0.0.1:${upstream.line.listening as number}`;
    const bare = await startPinned(SUT_CORE, [TSX, join(ROOT, 'bench', 'bare-proxy.ts')], { UPSTREAM: upstreamUrl }, listening);
    procs.push(bare.proc);
    const kg = await startKeygate(upstream.line.listening as number, dataDir);
    procs.push(kg.proc);
    const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'bench' });
    const { secret } = await adminCall(kg.admin, 'POST', '/v1/keys', {
      workspaceId: ws.id, name: 'bench', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'],
    });
    const minted = await fetch(`${kg.gateway}/auth/token`, { method: 'POST', headers: { 'x-api-key': secret } });
    const { token } = (await minted.json()) as { token: string };
    results = await measureAll([
      { name: 'upstream direct', url: `${upstreamUrl}/v1/events`, headers: {} },
      { name: 'bare undici proxy', url: `http://127.0.0.1:${bare.line.listening as number}/v1/events`, headers: {} },
      { name: 'keygate key path (permission + IP)', url: `${kg.gateway}/v1/events`, headers: { 'x-api-key': secret } },
      { name: 'keygate token path (same checks)', url: `${kg.gateway}/v1/events`, headers: { authorization: `Bearer ${token}` } },
    ]);
  } finally {
    for (const p of procs.reverse()) await stop(p);
    rmSync(dataDir, { recursive: true, force: true });
  }

  const byName = new Map(results.map((r) => [r.name, r]));
  const bare = byName.get('bare undici proxy')!;
  const key = byName.get('keygate key path (permission + IP)')!;
  const tokenPath = byName.get('keygate token path (same checks)')!;
  const ratios = {
    keyVsBare: Number((key.rps / bare.rps).toFixed(3)),
    tokenVsKey: Number((tokenPath.rps / key.rps).toFixed(3)),
    p99OverheadMs: Number((key.p99 - bare.p99).toFixed(2)),
  };
  const rows = results.map((r) => `| ${r.name.padEnd(36)} | ${String(r.rps).padStart(8)} | ${String(r.p50).padStart(6)} | ${String(r.p99).padStart(6)} | ${String(r.non2xx + r.errors).padStart(7)} | ${r.rounds.join(' / ')}`);
  process.stdout.write([
    `keygate bench — ${new Date().toISOString()} — ${CORES} cores, node ${process.version}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS}s (median shown)`,
    '| scenario                             |    req/s | p50 ms | p99 ms | non-2xx | req/s per round',
    '|--------------------------------------|---------:|-------:|-------:|--------:|----------------',
    ...rows,
    `key path / bare proxy req/s: ${ratios.keyVsBare}; p99 overhead over bare proxy: ${ratios.p99OverheadMs} ms; token path / key path req/s: ${ratios.tokenVsKey}`,
    '',
  ].join('\n'));
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, cores: CORES, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, results, ratios }, null, 2));
  process.stdout.write(`results written to ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
