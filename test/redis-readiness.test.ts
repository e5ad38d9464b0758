import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireRedis, startRedis } from './support/redis-server.js';
import { sleep } from './support/admin.js';
import { ADMIN_TOKEN, CLI } from './support/keygate.js';
import { redisNodeConfig, startNode, uniquePrefix, useCleanup } from './support/redis-nodes.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
beforeAll(() => {
  ({ events, eventsTest } = pair);
});

async function readyz(adminUrl: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${adminUrl}/readyz`);
  return { status: res.status, body: await res.json() };
}

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Serving {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  /** Resolves with the first log line (parsed) that `match` accepts; rejects after `timeoutMs`. */
  waitFor(match: (line: any) => boolean, timeoutMs: number): Promise<any>;
}

/** `keygate serve` on a config, without waiting for the ready line. */
function serve(config: Record<string, unknown>, defer: (fn: () => unknown) => void): Serving {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-startup-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(config));
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KEYGATE_LOG_LEVEL: 'info' } });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  defer(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      lines.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (d: Buffer) => { lines.push(d.toString()); });
  const parse = (l: string): any => { try { return JSON.parse(l); } catch { return null; } };
  return {
    proc,
    lines,
    exited,
    waitFor: (match, timeoutMs) => new Promise((resolve, reject) => {
      const check = (): void => {
        const found = lines.map(parse).find((l) => l !== null && match(l));
        if (found === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no such log line within ${timeoutMs} ms:\n${lines.join('\n')}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    }),
  };
}

describe.skipIf(!requireRedis())('readiness on Redis', () => {
  const defer = useCleanup();

  it('answers /readyz 503 with the reason once its view of the store is stale past maxStalenessMs while Redis hangs, and 200 again after it resumes (regression)', async () => {
    const maxStalenessMs = 1_500;
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const kg = await startNode(defer, { events, eventsTest, url: redis.url, keyPrefix: uniquePrefix('readyz'), propagation: { maxStalenessMs } });
    expect((await readyz(kg.adminUrl)).status).toBe(200);

    redis.pause();
    defer(() => { if (redis.running) redis.resume(); });
    const pausedAt = Date.now();
    await sleep(500);
    expect((await readyz(kg.adminUrl)).status, 'not stale yet').toBe(200);
    let seen = await readyz(kg.adminUrl);
    while (seen.status === 200 && Date.now() - pausedAt < maxStalenessMs + 3_000) {
      await sleep(50);
      seen = await readyz(kg.adminUrl);
    }
    const notReadyAfter = Date.now() - pausedAt;
    console.log(`readyz: 503 ${notReadyAfter} ms after Redis hung (bound ${maxStalenessMs} ms): ${JSON.stringify(seen.body)}`);
    expect(seen.status).toBe(503);
    expect(seen.body.ready).toBe(false);
    expect(seen.body.reason).toMatch(/^store view stale: last confirmed \d+\.\d s ago \(bound 1\.5 s\)$/);
    expect(notReadyAfter).toBeLessThan(maxStalenessMs + 2_000);
    const { body: { reason } } = seen;
    expect(Number(/confirmed (\S+) s/.exec(reason)![1]) * 1000).toBeGreaterThanOrEqual(maxStalenessMs);

    redis.resume();
    const resumedAt = Date.now();
    while (seen.status !== 200 && Date.now() - resumedAt < 5_000) {
      await sleep(50);
      seen = await readyz(kg.adminUrl);
    }
    console.log(`readyz: 200 again ${Date.now() - resumedAt} ms after Redis resumed`);
    expect(seen).toEqual({ status: 200, body: { ready: true, status: 'ready' } });
  });

  it('waits for a Redis that is not up yet at start-up, not ready meanwhile, and serves once it comes (regression)', async () => {
    const port = await freePort();
    const config = redisNodeConfig({ events, eventsTest, url: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix('startup') })('/nonexistent');
    const node = serve(config, defer);
    const waiting = await node.waitFor((l) => typeof l.admin === 'string' && /waiting for the store/.test(l.msg), 10_000);
    const health = await fetch(`${waiting.admin}/healthz`);
    expect(health.status).toBe(200);
    expect(await readyz(waiting.admin)).toEqual({ status: 503, body: { ready: false, status: 'not ready', reason: 'store not connected' } });
    const early = await fetch(`${waiting.admin}/v1/workspaces`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(early.status).toBe(503);
    expect((await early.json() as any).error.code).toBe('STORE_UNAVAILABLE');

    await sleep(2_000);
    const redis = await startRedis({ port });
    defer(() => redis.cleanup());
    const redisUpAt = Date.now();
    const ready = await node.waitFor((l) => l.msg === 'ready', 15_000);
    console.log(`startup: ready ${Date.now() - redisUpAt} ms after Redis came up; `
      + `${node.lines.filter((l) => /connecting to Redis failed; retrying/.test(l)).length} attempts logged`);
    expect(node.lines.filter((l) => /connecting to Redis failed; retrying/.test(l)).length).toBeGreaterThanOrEqual(2);
    const kg = { adminUrl: ready.admin as string, gatewayUrl: ready.gateway as string };
    expect(await readyz(kg.adminUrl)).toEqual({ status: 200, body: { ready: true, status: 'ready' } });
    const admin = async (method: string, path: string, body?: unknown): Promise<any> => {
      const res = await fetch(kg.adminUrl + path, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: await res.json() };
    };
    const ws = await admin('POST', '/v1/workspaces', { name: 'after-wait' });
    expect(ws.status).toBe(201);
    const key = await admin('POST', '/v1/keys', { workspaceId: ws.body.id, name: 'k', permissions: ['*'] });
    expect(key.status).toBe(201);
    const res = await fetch(`${kg.gatewayUrl}/v1/events`, { headers: { 'x-api-key': key.body.secret } });
    expect(res.status).toBe(200);
  });

  it('exits 0 promptly on SIGTERM or SIGINT while waiting for Redis at start-up, closing the waiting admin port (regression: killed by the signal, exit 143)', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const port = await freePort();
      const config = redisNodeConfig({ events, eventsTest, url: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix('stop-waiting') })('/nonexistent');
      const node = serve(config, defer);
      const waiting = await node.waitFor((l) => typeof l.admin === 'string' && /waiting for the store/.test(l.msg), 10_000);
      expect((await fetch(`${waiting.admin}/healthz`)).status).toBe(200);
      const signalledAt = Date.now();
      node.proc.kill(signal);
      const code = await node.exited;
      const ms = Date.now() - signalledAt;
      console.log(`startup: ${signal} while waiting for Redis: exit ${code} (${node.proc.signalCode ?? 'no signal'}) after ${ms} ms`);
      expect(node.proc.signalCode).toBeNull();
      expect(code).toBe(0);
      expect(ms).toBeLessThan(2_000);
      expect(node.lines.some((l) => l.includes('stopped while waiting for the store') && l.includes(signal))).toBe(true);
      await expect(fetch(`${waiting.admin}/healthz`)).rejects.toThrow();
    }
  });

  it('exits 1 with a clear message when Redis does not come within store.startupTimeoutMs', async () => {
    const port = await freePort();
    const config = redisNodeConfig({ events, eventsTest, url: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix('never'), store: { startupTimeoutMs: 2_000 } })('/nonexistent');
    const started = Date.now();
    const node = serve(config, defer);
    const code = await node.exited;
    const ms = Date.now() - started;
    const fatal = node.lines.find((l) => /"level":"fatal"/.test(l)) ?? '';
    console.log(`startup: exited ${code} after ${ms} ms: ${fatal}`);
    expect(code).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(2_000);
    expect(ms).toBeLessThan(2_000 + 8_000);
    expect(fatal).toMatch(/connecting to Redis: gave up after \d+ attempts in \d+ ms \(store\.startupTimeoutMs 2000\)/);
    expect(fatal).toContain(`127.0.0.1:${port}`);
  });
});
