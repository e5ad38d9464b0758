// Where keygate's CPU goes on one scenario: runs keygate under `node --cpu-prof` (pinned to
// core 0) while autocannon loads it (core 1), then prints the functions with the most self
// time and the share of each module. The .cpuprofile is kept for a flame graph (Chrome
// DevTools, speedscope).
//   npm run build && npx tsx bench/profile.ts [key|logged|token|inspected|forward|redis-key|redis-limit|redis-many]
// (logged: the key path with the default config, access log on and stdout to a file; every
// other scenario runs with accessLog: false. forward: forward-auth decisions on /auth/forward,
// sent as nginx's auth_request sends them (X-Original-URI/-Method, X-Forwarded-For from a trusted proxy). redis-key: the key path on the Redis store without a rate limit)
// Knobs: BENCH_SECONDS (10), BENCH_CONNECTIONS (64), BENCH_TOP (30).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import {
  LOAD_CORE, ROOT, adminCall, knobs, load, pinSelf, startKeygate, startUpstream, stop, writeResults, type LoadOptions, runMain,
} from './lib.js';

const K = knobs({ seconds: 10, warmup: 3, rounds: 1, connections: 64 });
const TOP = Number(process.env.BENCH_TOP ?? 30);
const scenario = process.argv[2] ?? 'key';
const SCENARIOS = ['key', 'logged', 'token', 'inspected', 'forward', 'redis-key', 'redis-limit', 'redis-many'];
if (!SCENARIOS.includes(scenario)) throw new Error(`scenario must be one of ${SCENARIOS.join(', ')}`);

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[] }

function summarise(profile: Profile): string[] {
  const total = profile.nodes.reduce((a, n) => a + n.hitCount, 0);
  const self = new Map<string, number>();
  const modules = new Map<string, number>();
  for (const n of profile.nodes) {
    if (n.hitCount === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url.startsWith('file://') ? relative(ROOT, url.slice(7)) : url || '(native)';
    const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + n.hitCount);
    const mod = file.startsWith('node_modules/') ? file.split('/').slice(0, file.split('/')[1]!.startsWith('@') ? 3 : 2).join('/')
      : file.startsWith('dist/') ? 'keygate (dist)' : file.startsWith('node:') ? 'node core' : functionName.startsWith('(') ? functionName : file;
    modules.set(mod, (modules.get(mod) ?? 0) + n.hitCount);
  }
  const pct = (n: number): string => `${((n / total) * 100).toFixed(1).padStart(5)}%`;
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  return [
    `${total} samples; self time by module:`,
    ...[...modules].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([m, n]) => `  ${pct(n)}  ${m}`),
    `top ${TOP} functions by self time:`,
    ...top.map(([f, n]) => `  ${pct(n)}  ${f}`),
  ];
}

async function main(): Promise<void> {
  pinSelf(LOAD_CORE);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-profile-'));
  const profDir = join(ROOT, 'bench', 'results', `profile-${scenario}-${Date.now()}`);
  let redis: RedisServer | null = null;
  const upstream = await startUpstream();
  try {
    let store: Record<string, unknown> = { driver: 'embedded', path: join(dir, 'data') };
    if (scenario.startsWith('redis')) {
      redis = await startRedis();
      execFileSync('taskset', ['-a', '-cp', LOAD_CORE, String(redis.pid)], { stdio: 'ignore' });
      store = { driver: 'redis', url: redis.url, keyPrefix: 'kgprof:' };
    }
    const kg = await startKeygate(dir, 'profile', {
      upstreamPort: upstream.port, store, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir],
      ...(scenario === 'logged' ? { logFile: join(dir, 'stdout.log') } : {}),
      ...(scenario === 'forward' ? { gateway: { trustedProxies: ['127.0.0.1/32'] } } : {}),
      routes: [
        { name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'api', permission: 'events.read' },
        { name: 'track-event', method: 'POST', path: '/v1/events', upstream: 'api', permission: 'events.create', events: { field: 'action' } },
      ],
    });
    const rateLimit = scenario === 'redis-limit' || scenario === 'redis-many' ? { limit: 1_000_000_000, windowSeconds: 60 } : null;
    const ws = await adminCall(kg.admin, 'POST', '/v1/workspaces', { name: 'profile' });
    const key = async (name: string): Promise<string> => (await adminCall(kg.admin, 'POST', '/v1/keys', {
      workspaceId: ws.id, name, permissions: ['events.read', 'events.create'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'], rateLimit,
      eventAllowlist: ['page.*', 'cart.add'],
    })).secret as string;
    const secret = await key('profile');
    const opts: Omit<LoadOptions, 'connections' | 'seconds'> = { headers: { 'x-api-key': secret } };
    if (scenario === 'token') {
      const res = await fetch(`${kg.gateway}/auth/token`, { method: 'POST', headers: { 'x-api-key': secret } });
      opts.headers = { authorization: `Bearer ${((await res.json()) as { token: string }).token}` };
    } else if (scenario === 'inspected') {
      Object.assign(opts, { method: 'POST', body: JSON.stringify({ action: 'cart.add', profileId: 'p_1', properties: { sku: 'SKU-1', price: 19.99 } }) });
      opts.headers = { 'x-api-key': secret, 'content-type': 'application/json' };
    } else if (scenario === 'forward') {
      opts.headers = { 'x-api-key': secret, 'x-original-uri': '/v1/events', 'x-original-method': 'GET', 'x-forwarded-for': '10.1.2.3' };
    } else if (scenario === 'redis-many') {
      const keys: string[] = [];
      for (let i = 0; i < 64; i++) keys.push(await key(`profile-${i}`));
      delete opts.headers;
      opts.keys = keys;
    }
    const path = scenario === 'forward' ? '/auth/forward' : '/v1/events';
    await load(`${kg.gateway}${path}`, { connections: K.connections, seconds: K.warmup, ...opts });
    const r = await load(`${kg.gateway}${path}`, { connections: K.connections, seconds: K.seconds, ...opts });
    await stop(kg.proc);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('keygate wrote no CPU profile');
    const lines = [`scenario ${scenario}: ${r.rps} req/s, p99 ${r.p99} ms, non-2xx ${r.non2xx + r.errors} (profiling slows it)`, ...summarise(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as Profile)];
    process.stdout.write(`${lines.join('\n')}\nprofile: ${join(profDir, file)}\n`);
    writeResults(`profile-${scenario}-`, { at: new Date().toISOString(), scenario, load: r, summary: lines });
  } finally {
    await stop(upstream.proc);
    await redis?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
