// The status listener of a real `keygate serve`: health, readiness and metrics on their own
// port with no token, the same answers as the admin port (summed over workers), "draining" on
// SIGTERM, "store not connected" while Redis is not reachable at start-up, and off on request.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { gatewayConfig, gw, metricSum, pollUntil } from './support/gateway.js';
import { CLI, startKeygate, type Keygate } from './support/keygate.js';
import { promtool, requirePromtool } from './support/promtool.js';
import { useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();

async function get(url: string): Promise<{ status: number; text: string; json: any }> {
  const res = await fetch(url);
  const text = await res.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { /* metrics text */ }
  return { status: res.status, text, json };
}

describe('status port, one process', () => {
  let kg: Keygate;
  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest }) });
  });
  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('is named in the ready line and serves /healthz, /readyz and /metrics without a token', async () => {
    expect(kg.statusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(kg.statusUrl).not.toBe(kg.adminUrl);
    expect(await get(`${kg.statusUrl}/healthz`)).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await get(`${kg.statusUrl}/readyz`)).toMatchObject({ status: 200, json: { ready: true, status: 'ready' } });
    const metrics = await get(`${kg.statusUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^# HELP keygate_/m);
  });

  it('serves no admin API, with or without a token', async () => {
    const res = await fetch(`${kg.statusUrl}/v1/workspaces`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('counts the same gateway requests as the admin port does (the admin port keeps /healthz /readyz /metrics)', async () => {
    const ws = await createWorkspace(kg, 'status');
    const { secret } = await createKey(kg, { workspaceId: ws, name: 'status', permissions: ['*'] });
    for (let i = 0; i < 3; i++) expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
    const fromStatus = (await get(`${kg.statusUrl}/metrics`)).text;
    const fromAdmin = (await get(`${kg.adminUrl}/metrics`)).text;
    expect(metricSum(fromStatus, 'keygate_requests_total', { route: 'list-events', outcome: 'OK' })).toBe(3);
    expect(metricSum(fromAdmin, 'keygate_requests_total', { route: 'list-events', outcome: 'OK' })).toBe(3);
    expect((await get(`${kg.adminUrl}/readyz`)).json).toEqual({ ready: true, status: 'ready' });
    expect((await get(`${kg.adminUrl}/healthz`)).status).toBe(200);
  });
});

describe('status port while draining', () => {
  it('answers /readyz 503 "draining" and /healthz 200 from SIGTERM until the last request is done', async () => {
    const kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest }) });
    try {
      const ws = await createWorkspace(kg, 'drain');
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'drain', permissions: ['*'] });
      const slow = gw(kg, '/v1/events', { headers: { 'x-api-key': secret, 'x-upstream-delay': '1500' } });
      await pollUntil(async () => pair.events.started.length, (n) => n > 0, 2_000);
      kg.proc.kill('SIGTERM');
      const seen = await pollUntil(() => get(`${kg.statusUrl}/readyz`), (r) => r.status === 503, 1_000, 10);
      expect(seen.value).toMatchObject({ status: 503, json: { ready: false, status: 'not ready', reason: 'draining' } });
      expect((await get(`${kg.statusUrl}/healthz`)).status).toBe(200);
      expect((await slow).status).toBe(200);
      expect(await kg.stop()).toBe(0);
    } finally {
      await stopAndClean(kg);
    }
  });
});

describe('status port with workers', () => {
  let kg: Keygate;
  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest, gateway: { workers: 2 } }) });
  });
  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('serves the sum over every worker, as the admin port does', async () => {
    const ws = await createWorkspace(kg, 'workers');
    const { secret } = await createKey(kg, { workspaceId: ws, name: 'workers', permissions: ['*'] });
    // Connection: close spreads the requests over both workers.
    const n = 30;
    const answers = await Promise.all(Array.from({ length: n }, () => gw(kg, '/v1/events', { headers: { 'x-api-key': secret, connection: 'close' } })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const fromStatus = (await get(`${kg.statusUrl}/metrics`)).text;
    expect(metricSum(fromStatus, 'keygate_requests_total', { route: 'list-events', outcome: 'OK' })).toBe(n);
    expect(metricSum((await get(`${kg.adminUrl}/metrics`)).text, 'keygate_requests_total', { route: 'list-events', outcome: 'OK' })).toBe(n);
    expect((await get(`${kg.statusUrl}/readyz`)).json).toEqual({ ready: true, status: 'ready' });
    // Gauges of state are the worst process's, not a sum: build info stays 1, staleness stays small.
    expect(metricSum(fromStatus, 'keygate_build_info')).toBe(1);
    expect(metricSum(fromStatus, 'keygate_propagation_max_staleness_seconds')).toBe(30);
    expect(metricSum(fromStatus, 'keygate_propagation_staleness_seconds')).toBeLessThan(5);
    expect(metricSum(fromStatus, 'keygate_key_cache_entries')).toBeGreaterThanOrEqual(1);
    if (requirePromtool()) expect(promtool(['check', 'metrics'], fromStatus)).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});

describe('status port configuration', () => {
  it('is not opened with status.enabled: false', async () => {
    const kg = await startKeygate({
      config: (dir) => ({ ...gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest })(dir), status: { enabled: false } }),
    });
    try {
      expect(kg.statusUrl).toBeNull();
      expect(kg.output.some((l) => l.includes('status port listening'))).toBe(false);
    } finally {
      await stopAndClean(kg);
    }
  });

  it('answers /healthz 200 and /readyz 503 "store not connected" while Redis is not reachable at start-up', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    const dir = mkdtempSync(join(tmpdir(), 'keygate-status-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, stringify({
      ...gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest })(dir),
      store: { driver: 'redis', url: `redis://127.0.0.1:${port}`, startupTimeoutMs: 60_000 },
    }));
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      const statusUrl = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`no status line:\n${out}`)), 10_000);
        proc.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /"status":"(http:[^"]+)"/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      expect((await get(`${statusUrl}/healthz`)).status).toBe(200);
      expect(await get(`${statusUrl}/readyz`)).toMatchObject({ status: 503, json: { ready: false, status: 'not ready', reason: 'store not connected' } });
      proc.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
