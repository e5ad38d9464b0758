// Key hygiene across processes: two keygate nodes on one Redis (activity recorded by both and
// read from either, a leak report enforced on both within the propagation bound), and one
// node with two gateway workers (activity and secret-scanning reports through the primary).
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { gatewayConfig, gw, pollUntil, type GatewayResponse } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { redisNodeConfig, stopNode, uniquePrefix, untilStatus } from './support/redis-nodes.js';
import { requireRedis, startRedis, type RedisServer } from './support/redis-server.js';
import { useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
const MAX_STALENESS_MS = 5_000;

/** Which process answered: request ids start with a per-process prefix (diagnostic only). */
const processOf = (id: string): string => id.slice(0, 8);

async function activityOf(kg: Keygate, keyId: string, n: number): Promise<any[]> {
  const polled = await pollUntil(() => kg.admin('GET', `/v1/keys/${keyId}/activity?limit=500`), (r) => r.status === 200 && r.body.items.length >= n, 8_000, 100);
  expect(polled.value.status, JSON.stringify(polled.value.body)).toBe(200);
  return polled.value.body.items as any[];
}

describe.skipIf(!requireRedis())('two keygate nodes on one Redis', () => {
  let redis: RedisServer;
  let a: Keygate;
  let b: Keygate;
  let ws: string;

  beforeAll(async () => {
    redis = await startRedis();
    const config = redisNodeConfig({
      events: pair.events, eventsTest: pair.eventsTest, url: redis.url, keyPrefix: uniquePrefix('hygiene'),
      propagation: { maxStalenessMs: MAX_STALENESS_MS },
    });
    const withCap = (dir: string): Record<string, unknown> => ({ ...config(dir), keys: { activityPerKey: 10 } });
    a = await startKeygate({ config: withCap });
    b = await startKeygate({ config: withCap });
    ws = await createWorkspace(a, 'hygiene-nodes');
  });

  afterAll(async () => {
    if (b) await stopNode(b);
    if (a) await stopNode(a);
    await redis?.cleanup();
  });

  it('records the activity of a key from both nodes, reads the same from either, and keeps the newest 10', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'two-nodes', permissions: ['events.read'] });
    const sent: GatewayResponse[] = [];
    for (let i = 0; i < 4; i++) {
      for (const node of [a, b]) {
        const res = await gw(node, '/v1/events', { headers: { 'x-api-key': k.secret } });
        expect(res.status).toBe(200);
        sent.push(res);
      }
    }
    const ids = sent.map((r) => r.headers.get('x-request-id')!);
    const fromA = await activityOf(a, k.key.id, 8);
    const fromB = await activityOf(b, k.key.id, 8);
    expect(fromB).toEqual(fromA);
    expect(fromA.map((i) => i.requestId).sort()).toEqual([...ids].sort());
    expect(new Set(fromA.map((i) => processOf(i.requestId))).size, 'records from both nodes').toBe(2);
    expect(JSON.stringify(fromA)).not.toContain(k.secret);

    // Past the cap, only the newest 10 are kept (each node's batch, then the stream's own trim).
    for (let i = 0; i < 6; i++) expect((await gw(i % 2 ? a : b, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const capped = await pollUntil(() => b.admin('GET', `/v1/keys/${k.key.id}/activity?limit=500`),
      (r) => r.body.items.length === 10 && !r.body.items.some((i: any) => i.requestId === ids[0]), 8_000, 100);
    expect(capped.ok, JSON.stringify(capped.value.body)).toBe(true);
    const paged = await a.admin('GET', `/v1/keys/${k.key.id}/activity?limit=4`);
    expect(paged.body.items).toEqual(capped.value.body.items.slice(0, 4));
    const next = await b.admin('GET', `/v1/keys/${k.key.id}/activity?limit=4&cursor=${paged.body.nextCursor}`);
    expect(next.body.items).toEqual(capped.value.body.items.slice(4, 8));
  });

  it('enforces a leak report made on node A on node B within the propagation bound', async () => {
    const k = await createKey(a, { workspaceId: ws, name: 'leaked', permissions: ['events.read'] });
    for (const node of [a, b]) expect((await gw(node, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const sent = Date.now();
    const res = await a.admin('POST', '/v1/leaks', { secret: k.secret, source: 'slack', url: 'https://acme.slack.example/archives/C1/p2' });
    expect(res.body).toEqual({ keyId: k.key.id, action: 'disable' });
    for (const node of [a, b]) {
      const refused = await untilStatus(node, k.secret, 403, sent, MAX_STALENESS_MS);
      expect(refused.ok, `refused within ${MAX_STALENESS_MS} ms`).toBe(true);
      expect(refused.res.body.error.code).toBe('KEY_DISABLED');
    }
  });
});

describe('one node with two gateway workers', () => {
  const github = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  let kg: Keygate;
  let ws: string;

  beforeAll(async () => {
    kg = await startKeygate({
      config: (dir) => ({
        ...gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest, gateway: { workers: 2 } })(dir),
        leaks: { action: 'notify', github: { publicKeys: [{ id: 'gh-1', key: github.publicKey.export({ type: 'spki', format: 'pem' }).toString() }] } },
      }),
    });
    ws = await createWorkspace(kg, 'workers');
  });

  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('records the activity of requests answered by either worker', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'workers', permissions: ['events.read'] });
    const ids: string[] = [];
    const processes = new Set<string>();
    for (let i = 0; i < 40 && (processes.size < 2 || ids.length < 6); i++) {
      const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret, connection: 'close' } });
      expect(res.status).toBe(200);
      ids.push(res.headers.get('x-request-id')!);
      processes.add(processOf(ids[ids.length - 1]!));
    }
    expect(processes.size, 'both workers answered').toBe(2);
    const items = await activityOf(kg, k.key.id, ids.length);
    expect(items.map((i) => i.requestId).sort()).toEqual([...ids].sort());
  });

  it('applies a secret-scanning report received by a worker through the primary (notify: the key stays on, the report is audited)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'notify', permissions: ['events.read'] });
    const body = JSON.stringify([{ token: k.secret, type: 'keygate_api_key', url: 'https://gist.github.com/x/1', source: 'gist' }]);
    const signature = sign('sha256', Buffer.from(body), { key: github.privateKey, dsaEncoding: 'der' }).toString('base64');
    const res = await gw(kg, '/auth/secret-scanning', {
      method: 'POST', body,
      headers: { 'content-type': 'application/json', 'github-public-key-identifier': 'gh-1', 'github-public-key-signature': signature },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual([{ token_raw: k.secret, token_type: 'keygate_api_key', label: 'true_positive' }]);
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const audit = await kg.admin('GET', `/v1/audit?keyId=${k.key.id}&limit=1`);
    expect(audit.body.items[0]).toMatchObject({ action: 'key.leak', detail: { action: 'notify', source: 'github:gist', url: 'https://gist.github.com/x/1' }, after: { status: 'active' } });
  });
});
