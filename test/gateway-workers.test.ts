import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { gatewayConfig, gw, metricSum, scrape, type GatewayResponse } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
const pair = useUpstreamPair();

beforeAll(async () => {
  ({ events, eventsTest } = pair);
});

/**
 * Which process answered. Request ids carry a random per-process prefix (8 characters); this
 * is only used to make sure a batch really reached both workers, not as a contract.
 */
const workerOf = (res: GatewayResponse): string => (res.headers.get('x-request-id') ?? '').slice(0, 8);

/** `n` requests, each on its own connection (Connection: close), so the kernel spreads them. */
async function batch(kg: Keygate, n: number, path: string, headers: Record<string, string>): Promise<GatewayResponse[]> {
  const out: GatewayResponse[] = [];
  for (let i = 0; i < n; i++) out.push(await gw(kg, path, { headers: { ...headers, connection: 'close' } }));
  return out;
}

/** Sends single requests until both workers have answered 200 (their caches then hold the key). */
async function warmBothWorkers(kg: Keygate, secret: string): Promise<void> {
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) {
    const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': secret, connection: 'close' } });
    expect(res.status, res.text).toBe(200);
    seen.add(workerOf(res));
  }
  expect(seen.size, 'both workers answered').toBe(2);
}

/**
 * Sends batches of 20 Connection: close requests until one batch is refused entirely with
 * `status`. `ms` is from `since` to the START of that batch, so a slow machine does not count
 * the batch's own duration as propagation delay.
 */
async function untilAllRefused(kg: Keygate, secret: string, status: number, since: number): Promise<{ last: GatewayResponse[]; ms: number }> {
  for (;;) {
    const batchStart = Date.now();
    const last = await batch(kg, 20, '/v1/events', { 'x-api-key': secret });
    if (last.every((r) => r.status === status) || Date.now() - since > 5000) return { last, ms: batchStart - since };
  }
}

/** Another batch is refused too, and the two batches together were answered by both workers. */
async function expectStillRefusedOnBoth(kg: Keygate, secret: string, status: number, last: GatewayResponse[]): Promise<void> {
  const again = await batch(kg, 20, '/v1/events', { 'x-api-key': secret });
  expect(again.map((r) => r.status)).toEqual(Array(20).fill(status));
  expect(new Set([...last, ...again].map(workerOf)).size, 'both workers answered').toBe(2);
}

describe('gateway.workers: 2', () => {
  let kg: Keygate;
  let ws: string;

  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events, eventsTest, gateway: { workers: 2 } }) });
    ws = await createWorkspace(kg, 'workers');
  });

  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('serves the gateway port from two worker processes (Connection: close requests spread over both)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'spread', permissions: ['*'] });
    const res = await batch(kg, 40, '/v1/events', { 'x-api-key': k.secret });
    expect(res.map((r) => r.status)).toEqual(Array(40).fill(200));
    expect(new Set(res.map(workerOf)).size).toBe(2);
  });

  it('enforces a PATCH disable made on the admin port on every worker within 1 s', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'to-disable', permissions: ['*'] });
    await warmBothWorkers(kg, k.secret);
    const patch = await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    const { last, ms } = await untilAllRefused(kg, k.secret, 403, Date.now());
    expect(last.map((r) => r.body?.error?.code)).toEqual(Array(20).fill('KEY_DISABLED'));
    expect(ms, `all workers refused after ${ms} ms`).toBeLessThan(1000);
    await expectStillRefusedOnBoth(kg, k.secret, 403, last);
  });

  it('enforces a DELETE on every worker within 1 s (401)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'to-delete', permissions: ['*'] });
    await warmBothWorkers(kg, k.secret);
    expect((await kg.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const { last, ms } = await untilAllRefused(kg, k.secret, 401, Date.now());
    expect(last.map((r) => r.body?.error?.code)).toEqual(Array(20).fill('UNAUTHENTICATED'));
    expect(ms, `all workers refused after ${ms} ms`).toBeLessThan(1000);
    await expectStillRefusedOnBoth(kg, k.secret, 401, last);
  });

  it("enforces an owner's disabling on every worker within 1 s (403 KEY_SUSPENDED)", async () => {
    const owner = await kg.admin('POST', '/v1/owners', { name: 'workers-owner', permissions: ['*'] });
    expect(owner.status).toBe(201);
    const k = await createKey(kg, { workspaceId: ws, name: 'owned', permissions: ['*'], ownerId: owner.body.id });
    await warmBothWorkers(kg, k.secret);
    expect((await kg.admin('PATCH', `/v1/owners/${owner.body.id}`, { status: 'disabled' })).status).toBe(200);
    const { last, ms } = await untilAllRefused(kg, k.secret, 403, Date.now());
    expect(last.map((r) => r.body?.error?.code)).toEqual(Array(20).fill('KEY_SUSPENDED'));
    expect(ms, `all workers refused after ${ms} ms`).toBeLessThan(1000);
    await expectStillRefusedOnBoth(kg, k.secret, 403, last);
  });

  it('stops an old secret on every worker within 1 s of a rotation with gracePeriodSeconds 0; the new one works everywhere', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'rotated', permissions: ['*'] });
    await warmBothWorkers(kg, k.secret);
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(rot.status).toBe(200);
    const { last, ms } = await untilAllRefused(kg, k.secret, 401, Date.now());
    expect(last.map((r) => r.status)).toEqual(Array(20).fill(401));
    expect(ms, `all workers refused after ${ms} ms`).toBeLessThan(1000);
    await expectStillRefusedOnBoth(kg, k.secret, 401, last);
    const fresh = await batch(kg, 20, '/v1/events', { 'x-api-key': rot.body.secret });
    expect(fresh.map((r) => r.status)).toEqual(Array(20).fill(200));
  });

  it('lets a newly created key work on every worker at once, even after unknown secrets were refused there', async () => {
    const secretBefore = 'kg_live_000000000000000000000000_000000';
    await batch(kg, 10, '/v1/events', { 'x-api-key': secretBefore });
    const k = await createKey(kg, { workspaceId: ws, name: 'fresh', permissions: ['*'] });
    const res = await batch(kg, 20, '/v1/events', { 'x-api-key': k.secret });
    expect(res.map((r) => r.status)).toEqual(Array(20).fill(200));
  });

  it('lists 2 gateway nodes on GET /v1/nodes, each with an id, an applied store version and a recent report time', async () => {
    const res = await kg.admin('GET', '/v1/nodes');
    expect(res.status).toBe(200);
    const gateways = (res.body.items as any[]).filter((n) => n.role === undefined || n.role === 'gateway');
    expect(gateways).toHaveLength(2);
    expect(new Set(gateways.map((n) => n.id)).size).toBe(2);
    for (const n of gateways) {
      expect(typeof n.id).toBe('string');
      expect(typeof n.appliedVersion).toBe('number');
      expect(Date.now() - Date.parse(n.reportedAt)).toBeLessThan(60_000);
    }
  });

  it('sums keygate_requests_total over both workers on GET /metrics', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'metrics', permissions: ['*'] });
    const before = metricSum(await scrape(kg), 'keygate_requests_total', { route: 'get-file', outcome: 'OK' });
    const res = await batch(kg, 30, '/v1/files/m', { 'x-api-key': k.secret });
    expect(res.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(new Set(res.map(workerOf)).size, 'both workers answered').toBe(2);
    const after = metricSum(await scrape(kg), 'keygate_requests_total', { route: 'get-file', outcome: 'OK' });
    expect(after - before).toBe(30);
  });

  it('records usage from both workers on GET /v1/keys/{id}/usage', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'usage', permissions: ['*'] });
    const res = await batch(kg, 20, '/v1/events', { 'x-api-key': k.secret });
    expect(new Set(res.map(workerOf)).size, 'both workers answered').toBe(2);
    const started = Date.now();
    let usage: any = null;
    while (Date.now() - started < 4000) {
      usage = (await kg.admin('GET', `/v1/keys/${k.key.id}/usage`)).body;
      if (usage?.requests?.total >= 20) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(usage.requests).toEqual({ total: 20, byOutcome: { OK: 20 } });
  });

  it('drains on SIGTERM with 2 workers: a request in flight (upstream delays 500 ms) completes with 200 and the process exits 0', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'drain', permissions: ['*'] });
    const inflight = gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret, 'x-upstream-delay': '500' } });
    await events.waitFor(1, 5000);
    const exited = kg.stop('SIGTERM');
    const res = await inflight;
    expect(res.status, res.text).toBe(200);
    expect(res.body.name).toBe('events');
    expect(await exited).toBe(0);
  });
});

describe('SIGTERM with one process', () => {
  let kg: Keygate;

  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events, eventsTest }) });
  });

  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('drains on SIGTERM: a request in flight (upstream delays 500 ms) completes with 200 and the process exits 0', async () => {
    const ws = await createWorkspace(kg, 'drain');
    const k = await createKey(kg, { workspaceId: ws, name: 'drain', permissions: ['*'] });
    const started = Date.now();
    const inflight = gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret, 'x-upstream-delay': '500' } });
    await events.waitFor(1, 5000);
    const exited = kg.stop('SIGTERM');
    const res = await inflight;
    expect(res.status, res.text).toBe(200);
    expect(res.body.name).toBe('events');
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(await exited).toBe(0);
  });
});

describe('gateway.workers: 2, one worker killed', () => {
  let kg: Keygate;

  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events, eventsTest, gateway: { workers: 2 } }) });
  });

  afterAll(async () => {
    await stopAndClean(kg);
  });

  /** The pids of the gateway nodes GET /v1/nodes lists (node ids end in ":<pid>"). */
  async function listedPids(): Promise<number[]> {
    const res = await kg.admin('GET', '/v1/nodes');
    expect(res.status).toBe(200);
    return (res.body.items as any[]).filter((n) => n.role === 'gateway').map((n) => Number(String(n.id).split(':').pop())).sort((a, b) => a - b);
  }

  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  async function until<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
    const started = Date.now();
    for (;;) {
      const got = await probe();
      if (got !== null) return got;
      if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('lists only live processes on GET /v1/nodes within 15 s of a worker being killed (SIGKILL) and respawned (regression: the dead worker stayed listed)', async () => {
    const before = await until('two workers listed', 10_000, async () => { const p = await listedPids(); return p.length === 2 ? p : null; });
    const [victim, survivor] = before as [number, number];
    process.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    const after = await until('the respawned worker listed in place of the killed one', 20_000, async () => {
      const p = await listedPids();
      return p.length === 2 && !p.includes(victim) && p.every(alive) ? p : null;
    });
    const ms = Date.now() - killedAt;
    console.log(`GET /v1/nodes listed only live workers ${ms} ms after the SIGKILL: ${JSON.stringify({ before, after })}`);
    expect(ms).toBeLessThan(15_000);
    expect(after).toContain(survivor);
    // And it stays that way over the next heartbeat: nothing reports the dead worker again.
    await new Promise((r) => setTimeout(r, 5_500));
    const later = await listedPids();
    expect(later).toEqual(after);
  });
});
