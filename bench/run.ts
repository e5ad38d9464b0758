// `npm run bench`: the gateway's hot path against the floor, side by side in one run.
// keygate and the bare proxy are pinned to core 0; this process (autocannon) and the
// upstream to core 1. Results print as a table and are written to bench/results/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { CORES, LOAD_CORE, SUT_CORE, load, pinSelf, startPinned, stop, type LoadResult } from './lib.js';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

const listening = (l: Record<string, unknown>): boolean => typeof l.listening === 'number';

async function measure(name: string, url: string, headers: Record<string, string> = {}): Promise<LoadResult & { name: string }> {
  await load(url, { connections: CONNECTIONS, seconds: WARMUP, headers });
  const r = await load(url, { connections: CONNECTIONS, seconds: SECONDS, headers });
  process.stderr.write(`${name}: ${r.rps} req/s, p99 ${r.p99} ms\n`);
  return { name, ...r };
}

async function startKeygate(upstreamPort: number, dataDir: string): Promise<{ stopIt: () => Promise<void>; gateway: string; admin: string }> {
  const config = {
    gateway: { listen: { host: '127.0.0.1', port: 0 }, workers: 1, accessLog: false },
    admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'bench', token: ADMIN_TOKEN }] },
    store: { driver: 'embedded', path: dataDir },
    secrets: { pepper: 'bench-pepper-0123456789abcdef' },
    upstreams: { api: { url: `http://127.0.0.1:${upstreamPort}` } },
    routes: [{ name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' }],
  };
  const file = join(dataDir, 'bench.yaml');
  writeFileSync(file, stringify(config));
  const { proc, line } = await startPinned(SUT_CORE, [process.execPath, join(ROOT, 'dist', 'cli.js'), 'serve', '--config', file],
    {}, (l) => l.msg === 'ready');
  return { stopIt: () => stop(proc), gateway: String(line.gateway), admin: String(line.admin) };
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

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const results: Array<LoadResult & { name: string }> = [];
  const upstream = await startPinned(LOAD_CORE, [TSX, join(ROOT, 'bench', 'upstream.ts')], {}, listening);
  const upstreamPort = upstream.line.listening as number;
  try {
    results.push(await measure('upstream direct', `http://127.0.0.1:${upstreamPort}/v1/events`));

    const bare = await startPinned(SUT_CORE, [TSX, join(ROOT, 'bench', 'bare-proxy.ts')], { UPSTREAM: `http://127.0.0.1:${upstreamPort}` }, listening);
    results.push(await measure('bare undici proxy', `http://127.0.0.1:${bare.line.listening as number}/v1/events`));
    await stop(bare.proc);

    const dataDir = mkdtempSync(join(tmpdir(), 'keygate-bench-'));
    try {
      const kg = await startKeygate(upstreamPort, dataDir);
      const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'bench' });
      const { secret } = await adminCall(kg.admin, 'POST', '/v1/keys', {
        workspaceId: ws.id, name: 'bench', permissions: ['events.read'], ipAllowlist: ['127.0.0.0/8', '10.0.0.0/8'],
      });
      results.push(await measure('keygate key path (permission + IP)', `${kg.gateway}/v1/events`, { 'x-api-key': secret }));
      await kg.stopIt();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  } finally {
    await stop(upstream.proc);
  }

  const byName = new Map(results.map((r) => [r.name, r]));
  const bare = byName.get('bare undici proxy')!;
  const key = byName.get('keygate key path (permission + IP)')!;
  const ratios = {
    keyVsBare: Number((key.rps / bare.rps).toFixed(3)),
    p99OverheadMs: Number((key.p99 - bare.p99).toFixed(2)),
  };
  const rows = results.map((r) => `| ${r.name.padEnd(36)} | ${String(r.rps).padStart(8)} | ${String(r.p50).padStart(6)} | ${String(r.p99).padStart(6)} | ${String(r.non2xx + r.errors).padStart(7)} |`);
  process.stdout.write([
    `keygate bench — ${new Date().toISOString()} — ${CORES} cores, node ${process.version}, ${CONNECTIONS} connections, ${SECONDS}s per run`,
    '| scenario                             |    req/s | p50 ms | p99 ms | non-2xx |',
    '|--------------------------------------|---------:|-------:|-------:|--------:|',
    ...rows,
    `key path / bare proxy req/s: ${ratios.keyVsBare}; p99 overhead over bare proxy: ${ratios.p99OverheadMs} ms`,
    '',
  ].join('\n'));
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, cores: CORES, connections: CONNECTIONS, seconds: SECONDS, results, ratios }, null, 2));
  process.stdout.write(`results written to ${file}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
