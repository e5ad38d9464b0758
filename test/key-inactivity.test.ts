// Inactivity expiry and rotation due on a fake clock: the embedded store, the key service, the
// hygiene sweep and a real gateway node in process, days passing without anyone waiting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { KeyHygiene } from '../src/control-plane/key-hygiene.js';
import { KeyService } from '../src/control-plane/key-service.js';
import { createKeySchema, keyListQuerySchema, parseBody } from '../src/control-plane/schemas.js';
import type { Actor } from '../src/domain/entities.js';
import { PermissionCatalogue } from '../src/domain/permissions.js';
import { Metrics } from '../src/observability/metrics.js';
import { createGatewayNode, type GatewayNode } from '../src/runtime/gateway-node.js';
import { EmbeddedStore } from '../src/store/embedded/embedded-store.js';
import { storeKeySource } from '../src/store/key-source.js';
import { LocalRateLimiter } from '../src/store/rate-limit/local.js';
import { startUpstream, type RecordingUpstream } from './support/upstream.js';

const DAY = 86_400_000;
const logger = pino({ level: 'silent' });
const actor: Actor = { type: 'admin', name: 'ops' };
const WS = 'ws_clock';

function config(upstream: string, keys: string): Config {
  const loaded = parseConfigText(`
gateway: { listen: { host: 127.0.0.1, port: 0 } }
admin: { tokens: [{ name: ops, token: a-test-admin-token-of-enough-length }] }
secrets: { pepper: a-test-pepper-of-enough-length }
keys: ${keys}
upstreams: { events: { url: "${upstream}" } }
routes:
  - { name: list-events, method: GET, path: /v1/events, upstream: events, permission: events.read }
`, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  return loaded.config;
}

interface World {
  cfg: Config;
  store: EmbeddedStore;
  keys: KeyService;
  hygiene: KeyHygiene;
  metrics: Metrics;
  node: GatewayNode;
  url: string;
  clock: { now: number };
}

let root: string;
let upstream: RecordingUpstream;
const open: World[] = [];

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'keygate-clock-'));
  upstream = await startUpstream('events');
});

afterEach(async () => {
  for (const w of open.splice(0)) {
    w.node.server.closeAllConnections();
    await new Promise<void>((resolve) => w.node.server.close(() => resolve()));
    await w.node.close();
    await w.hygiene.stop();
    await w.store.close();
  }
  await upstream.close();
  rmSync(root, { recursive: true, force: true });
});

async function world(keysConfig: string): Promise<World> {
  const cfg = config(upstream.url, keysConfig);
  const clock = { now: Date.parse('2030-01-01T00:00:00.000Z') };
  const now = (): number => clock.now;
  const store = new EmbeddedStore({ path: join(root, `data-${open.length}`), logger });
  await store.open();
  await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: { id: WS, name: 'w', createdAt: new Date(clock.now).toISOString() } } }], audit: [] });
  const keys = new KeyService({ store, config: cfg, catalogue: new PermissionCatalogue(cfg.routes.map((r) => r.permission)), now });
  const metrics = new Metrics();
  const hygiene = new KeyHygiene({ store, keys, config: cfg, metrics, logger, now });
  const node = createGatewayNode({
    config: cfg, logger, metrics,
    source: storeKeySource(store),
    fresh: () => true,
    usageSink: (deltas) => store.recordUsage(deltas),
    activitySink: (records) => store.recordActivity(records, cfg.keys.activityPerKey),
    limiter: new LocalRateLimiter(),
    reportLeaks: async () => [],
  });
  store.subscribe((changes) => node.applyChanges(changes));
  await new Promise<void>((resolve) => node.server.listen(0, '127.0.0.1', resolve));
  const w: World = { cfg, store, keys, hygiene, metrics, node, url: `http://127.0.0.1:${(node.server.address() as AddressInfo).port}`, clock };
  open.push(w);
  return w;
}

async function createKey(w: World, name: string): Promise<{ id: string; secret: string }> {
  const { key, secret } = await w.keys.create(parseBody(createKeySchema, { workspaceId: WS, name, permissions: ['events.read'], expiresAt: null }), actor);
  return { id: key.id, secret };
}

async function call(w: World, secret: string): Promise<{ status: number; body: any; headers: Record<string, string> }> {
  const res = await fetch(`${w.url}/v1/events`, { headers: { 'x-api-key': secret } });
  return { status: res.status, body: await res.json(), headers: Object.fromEntries(res.headers) };
}

/** A use of the key recorded at the fake clock's time, as a node's usage batch would. */
async function usedAt(w: World, keyId: string, at: number): Promise<void> {
  await w.store.recordUsage([{ keyId, byOutcome: { OK: 1 }, lastUsedAt: new Date(at).toISOString() }]);
}

describe('inactivity expiry (keys.inactivityDays)', () => {
  it('expires a key unused for longer than the setting: 403 KEY_EXPIRED saying inactivity, status expired with its reason', async () => {
    const w = await world('{ inactivityDays: 30 }');
    const idle = await createKey(w, 'idle');
    const busy = await createKey(w, 'busy');
    expect((await call(w, idle.secret)).status).toBe(200);
    await usedAt(w, idle.id, w.clock.now);
    await usedAt(w, busy.id, w.clock.now);

    w.clock.now += 29 * DAY;
    expect((await w.hygiene.sweep()).expired).toEqual([]);
    await usedAt(w, busy.id, w.clock.now);

    w.clock.now += 2 * DAY;
    expect((await w.hygiene.sweep()).expired).toEqual([idle.id]);
    const refused = await call(w, idle.secret);
    expect(refused.status).toBe(403);
    expect(refused.headers['www-authenticate']).toBeUndefined();
    expect(refused.body.error.code).toBe('KEY_EXPIRED');
    expect(refused.body.error.message).toMatch(/unused/);
    expect(await w.keys.get(idle.id)).toMatchObject({ status: 'expired', expiredReason: 'inactivity', expiresAt: null });
    expect((await call(w, busy.secret)).status).toBe(200);
    expect((await w.keys.get(busy.id)).status).toBe('active');
    const audit = await w.store.listAudit({ targetId: idle.id, limit: 1 });
    expect(audit[0]).toMatchObject({ action: 'key.expire', actor: { type: 'system' }, detail: { reason: 'inactivity' } });
    // The next sweep has nothing left to do.
    expect((await w.hygiene.sweep()).expired).toEqual([]);
  });

  it('counts a never-used key from its creation', async () => {
    const w = await world('{ inactivityDays: 7 }');
    const k = await createKey(w, 'never-used');
    w.clock.now += 6 * DAY;
    expect((await w.hygiene.sweep()).expired).toEqual([]);
    w.clock.now += 2 * DAY;
    expect((await w.hygiene.sweep()).expired).toEqual([k.id]);
  });

  it('is revived by a PATCH of enabled or expiresAt, its idle time counting afresh', async () => {
    const w = await world('{ inactivityDays: 10 }');
    const a = await createKey(w, 'a');
    const b = await createKey(w, 'b');
    w.clock.now += 11 * DAY;
    expect((await w.hygiene.sweep()).expired.sort()).toEqual([a.id, b.id].sort());

    const revivedA = (await w.keys.update(a.id, { enabled: true }, actor)).key;
    expect(revivedA).toMatchObject({ status: 'active', expiredReason: null });
    const revivedB = (await w.keys.update(b.id, { expiresAt: new Date(w.clock.now + 365 * DAY).toISOString() }, actor)).key;
    expect(revivedB.status).toBe('active');
    expect((await call(w, a.secret)).status).toBe(200);
    expect((await call(w, b.secret)).status).toBe(200);

    w.clock.now += 9 * DAY;
    expect((await w.hygiene.sweep()).expired).toEqual([]);
    w.clock.now += 2 * DAY;
    expect((await w.hygiene.sweep()).expired.sort()).toEqual([a.id, b.id].sort());
  });

  it('is off by default: no key expires for going unused', async () => {
    const w = await world('{}');
    expect(w.cfg.keys.inactivityDays).toBeNull();
    const k = await createKey(w, 'old');
    w.clock.now += 3_000 * DAY;
    expect((await w.hygiene.sweep()).expired).toEqual([]);
    expect((await call(w, k.secret)).status).toBe(200);
  });
});

describe('rotation due (keys.rotationReminderDays)', () => {
  it('marks keys whose secret is older than the reminder, filters the list on it, and counts them in keygate_keys_rotation_due', async () => {
    const w = await world('{ rotationReminderDays: 90 }');
    const old = await createKey(w, 'old');
    w.clock.now += 60 * DAY;
    const young = await createKey(w, 'young');
    const rotated = await createKey(w, 'rotated');
    w.clock.now += 31 * DAY;
    expect((await w.keys.get(old.id)).rotationDue).toBe(true);
    expect((await w.keys.get(young.id)).rotationDue).toBe(false);

    // Rotating restarts the secret's age.
    const oldRotated = await createKey(w, 'placeholder');
    await w.keys.rotate(rotated.id, 0, actor);
    expect((await w.keys.get(rotated.id)).rotationDue).toBe(false);
    expect((await w.keys.get(rotated.id)).rotatedAt).toBe(new Date(w.clock.now).toISOString());

    const due = await w.keys.list(parseBody(keyListQuerySchema, { rotationDue: 'true' }));
    expect(due.items.map((k) => k.id)).toEqual([old.id]);
    const notDue = await w.keys.list(parseBody(keyListQuerySchema, { rotationDue: 'false' }));
    expect(notDue.items.map((k) => k.id).sort()).toEqual([young.id, rotated.id, oldRotated.id].sort());
    expect(() => parseBody(keyListQuerySchema, { rotationDue: 'yes' })).toThrow(/rotationDue/);

    expect((await w.hygiene.sweep()).rotationDue).toBe(1);
    const gauge = await w.metrics.registry.getSingleMetricAsString('keygate_keys_rotation_due');
    expect(gauge).toMatch(/^keygate_keys_rotation_due 1$/m);
    w.clock.now += 60 * DAY;
    await w.hygiene.sweep();
    expect(await w.metrics.registry.getSingleMetricAsString('keygate_keys_rotation_due')).toMatch(/^keygate_keys_rotation_due 2$/m);
  });
});
