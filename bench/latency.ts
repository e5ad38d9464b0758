// p50/p99 in microseconds at 64 connections: autocannon records whole milliseconds, too coarse
// to tell whether keygate adds under 1 ms. A closed loop of 64 concurrent requesters over a
// 64-connection undici Pool, timed with hrtime; same pinning as `npm run bench`.
// Run: npm run build && npx tsx bench/latency.ts
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { LOAD_CORE, SUT_CORE, pinSelf, startPinned, stop } from './lib.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const CONNECTIONS = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const listening = (l: Record<string, unknown>): boolean => typeof l.listening === 'number';

async function run(origin: string, headers: Record<string, string>, seconds: number): Promise<{ rps: number; p50: number; p99: number }> {
  const pool = new Pool(origin, { connections: CONNECTIONS, pipelining: 1 });
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = process.hrtime.bigint();
      const res = await pool.request({ path: '/v1/events', method: 'GET', headers });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, loop));
  await pool.close();
  samples.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!);
  return { rps: Math.round(samples.length / seconds), p50: at(0.5), p99: at(0.99) };
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-latency-'));
  const upstream = await startPinned(LOAD_CORE, [TSX, join(ROOT, 'bench', 'upstream.ts')], {}, listening);
  const upstreamUrl = `http://127.0.0.1:${upstream.line.listening as number}`;
  const bare = await startPinned(SUT_CORE, [TSX, join(ROOT, 'bench', 'bare-proxy.ts')], { UPSTREAM: upstreamUrl }, listening);
  const token = 'bench-admin-token-0123456789';
  const file = join(dir, 'bench.yaml');
  writeFileSync(file, stringify({
    gateway: { listen: { host: '127.0.0.1', port: 0 }, accessLog: false },
    admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'bench', token }] },
    store: { path: join(dir, 'data') },
    secrets: { pepper: 'bench-pepper-0123456789abcdef' },
    upstreams: { api: { url: upstreamUrl } },
    routes: [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }],
  }));
  const kg = await startPinned(SUT_CORE, [process.execPath, join(ROOT, 'dist', 'cli.js'), 'serve', '--config', file], {}, (l) => l.msg === 'ready');
  try {
    const admin = String(kg.line.admin);
    const call = async (path: string, body: unknown): Promise<any> => (await fetch(admin + path, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    })).json();
    const ws = await call('/v1/workspaces', { name: 'bench' });
    const { secret } = (await call('/v1/keys', { workspaceId: ws.id, name: 'bench', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'] })) as { secret: string };
    const targets: Array<{ name: string; origin: string; headers: Record<string, string> }> = [
      { name: 'bare undici proxy', origin: `http://127.0.0.1:${bare.line.listening as number}`, headers: {} },
      { name: 'keygate key path', origin: String(kg.line.gateway), headers: { 'x-api-key': secret } },
    ];
    for (const t of targets) await run(t.origin, t.headers, 3);
    const results = new Map<string, Array<{ rps: number; p50: number; p99: number }>>(targets.map((t) => [t.name, []]));
    for (let r = 0; r < ROUNDS; r++) for (const t of targets) results.get(t.name)!.push(await run(t.origin, t.headers, SECONDS));
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rows = targets.map((t) => {
      const rs = results.get(t.name)!;
      return { name: t.name, rps: median(rs.map((x) => x.rps)), p50: median(rs.map((x) => x.p50)), p99: median(rs.map((x) => x.p99)), rounds: rs };
    });
    for (const row of rows) process.stdout.write(`${row.name.padEnd(20)} ${String(row.rps).padStart(7)} req/s  p50 ${row.p50} µs  p99 ${row.p99} µs   (rounds: ${row.rounds.map((x) => `${x.rps}/${x.p99}µs`).join(', ')})\n`);
    process.stdout.write(`keygate p99 overhead at ${CONNECTIONS} connections: ${rows[1]!.p99 - rows[0]!.p99} µs (median of ${ROUNDS} rounds)\n`);
  } finally {
    await stop(kg.proc);
    await stop(bare.proc);
    await stop(upstream.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
