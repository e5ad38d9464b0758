import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Actor } from '../domain/entities.js';
import { PermissionCatalogue } from '../domain/permissions.js';
import { EmbeddedStore } from '../store/embedded/embedded-store.js';
import type { WriteOp } from '../store/types.js';
import { KeyService } from './key-service.js';
import { createKeySchema, parseBody } from './schemas.js';

const logger = pino({ level: 'silent' });
const WS = 'ws_rate_defaults';
const actor: Actor = { type: 'admin', name: 'ops' };

const CONFIG = `
admin:
  tokens:
    - { name: ops, token: "a-test-admin-token-of-enough-length" }
secrets:
  pepper: "a-test-pepper-of-enough-length"
upstreams:
  events: { url: "http://127.0.0.1:9000" }
routes:
  - { name: send-events, method: POST, path: /v1/events, upstream: events, permission: events.create }
rateLimit:
  defaults:
    workspace: { limit: 100, windowSeconds: 1 }
    profile: { limit: 5, windowSeconds: 60 }
`;

/**
 * A fresh embedded store for each test, holding the workspace WS and whatever `extra` puts
 * (given the time it is made), closed and removed after the test.
 */
function freshStore(extra: (at: string) => WriteOp[] = () => []): () => EmbeddedStore {
  let dir = '';
  let store: EmbeddedStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keygate-key-service-'));
    store = new EmbeddedStore({ path: join(dir, 'data'), logger });
    await store.open();
    const at = new Date().toISOString();
    await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: { id: WS, name: 'ws', createdAt: at } } }, ...extra(at)], audit: [] });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => store;
}

function config(text: string): Config {
  const result = parseConfigText(text, {});
  if (!result.ok) throw new Error(result.errors.join('\n'));
  return result.config;
}

describe('KeyService.create: rate-limit defaults', () => {
  let store: EmbeddedStore;
  const opened = freshStore();
  beforeEach(() => { store = opened(); });

  /** Creates a key from a request body, parsed as the admin API parses it. */
  async function create(body: Record<string, unknown>, text = CONFIG) {
    const service = new KeyService({ store, config: config(text), catalogue: new PermissionCatalogue(['events.create']) });
    const { key } = await service.create(parseBody(createKeySchema, { workspaceId: WS, name: 'k', permissions: ['events.create'], ...body }), actor);
    const stored = await store.getKey(key.id);
    return { key, stored: stored! };
  }

  it('gives a workspace key without a rateLimit the workspace default', async () => {
    const { key, stored } = await create({});
    expect(key.rateLimit).toEqual({ limit: 100, windowSeconds: 1 });
    expect(stored.rateLimit).toEqual({ limit: 100, windowSeconds: 1 });
  });

  it('gives a profile key without a rateLimit the profile default', async () => {
    const { key, stored } = await create({ type: 'profile' });
    expect(key.rateLimit).toEqual({ limit: 5, windowSeconds: 60 });
    expect(stored.rateLimit).toEqual({ limit: 5, windowSeconds: 60 });
  });

  it('gives no rate limit for an explicit rateLimit: null', async () => {
    const { key, stored } = await create({ rateLimit: null });
    expect(key.rateLimit).toBeNull();
    expect(stored.rateLimit).toBeNull();
    expect((await create({ type: 'profile', rateLimit: null })).stored.rateLimit).toBeNull();
  });

  it('keeps an explicit rateLimit over the default', async () => {
    const { key, stored } = await create({ rateLimit: { limit: 7, windowSeconds: 30 } });
    expect(key.rateLimit).toEqual({ limit: 7, windowSeconds: 30 });
    expect(stored.rateLimit).toEqual({ limit: 7, windowSeconds: 30 });
    expect((await create({ type: 'profile', rateLimit: { limit: 0, windowSeconds: 1 } })).stored.rateLimit).toEqual({ limit: 0, windowSeconds: 1 });
  });

  it('gives no rate limit when the config has no default for the key type', async () => {
    const text = CONFIG.replace(/rateLimit:\n(.*\n)*/, 'rateLimit:\n  defaults:\n    profile: { limit: 5, windowSeconds: 60 }\n');
    expect((await create({}, text)).stored.rateLimit).toBeNull();
    expect((await create({ type: 'profile' }, text)).stored.rateLimit).toEqual({ limit: 5, windowSeconds: 60 });
  });

  it('does not apply a default to the quota', async () => {
    expect((await create({})).stored.quota).toBeNull();
  });

  it('leaves rateLimit out of the parsed request when omitted, so the default can apply', () => {
    expect(parseBody(createKeySchema, { workspaceId: WS, name: 'k' }).rateLimit).toBeUndefined();
    expect(parseBody(createKeySchema, { workspaceId: WS, name: 'k', rateLimit: null }).rateLimit).toBeNull();
  });
});

describe('KeyService.create: presets', () => {
  let store: EmbeddedStore;
  const opened = freshStore();
  beforeEach(() => { store = opened(); });

  it('checks a preset\'s permissions against the catalogue as it checks permissions given one by one (regression: a preset skipped the check)', async () => {
    // A preset the catalogue does not back (config checks refuse this in a file; the service checks it too).
    const cfg: Config = { ...config(CONFIG), permissionPresets: { stale: ['events.create', 'events.delete'] } };
    const service = new KeyService({ store, config: cfg, catalogue: new PermissionCatalogue(['events.create']) });
    const refused = service.create(parseBody(createKeySchema, { workspaceId: WS, name: 'k', preset: 'stale' }), actor);
    await expect(refused).rejects.toMatchObject({ code: 'BAD_REQUEST', problems: ['preset: "stale"[1]: unknown permission "events.delete"'] });
    const byHand = service.create(parseBody(createKeySchema, { workspaceId: WS, name: 'k', permissions: ['events.create', 'events.delete'] }), actor);
    await expect(byHand).rejects.toMatchObject({ code: 'BAD_REQUEST', problems: ['permissions[1]: unknown permission "events.delete"'] });
    expect(await store.scanKeys(0, 10)).toEqual([]);
  });
});

describe('KeyService: an owner deleted while a key is written to name it', () => {
  let store: EmbeddedStore;
  const opened = freshStore((at) => [
    { op: 'put', entity: { type: 'owner', value: { id: 'own_1', name: 'o', status: 'active', permissions: ['events.create'], createdAt: at, updatedAt: at, version: 1 } } },
  ]);
  beforeEach(() => { store = opened(); });

  /** Deletes the owner just before the first key write reaches the store, as a racing admin would. */
  function deleteOwnerBeforeNextKeyWrite(): void {
    const commit = store.commit.bind(store);
    let done = false;
    store.commit = async (batch) => {
      if (!done && batch.ops.some((op) => op.op === 'put' && op.entity.type === 'key')) {
        done = true;
        await commit({ ops: [{ op: 'delete', type: 'owner', id: 'own_1' }], audit: [], expectEmptyOwners: ['own_1'] });
      }
      return commit(batch);
    };
  }

  it('refuses the create (CONFLICT) rather than store a key naming a missing owner', async () => {
    const service = new KeyService({ store, config: config(CONFIG), catalogue: new PermissionCatalogue(['events.create']) });
    deleteOwnerBeforeNextKeyWrite();
    await expect(service.create(parseBody(createKeySchema, { workspaceId: WS, name: 'k', ownerId: 'own_1' }), actor)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await store.scanKeys(0, 10)).toEqual([]);
  });

  it('refuses a PATCH moving a key to the owner, after its retries find the owner gone', async () => {
    const service = new KeyService({ store, config: config(CONFIG), catalogue: new PermissionCatalogue(['events.create']) });
    const { key } = await service.create(parseBody(createKeySchema, { workspaceId: WS, name: 'k' }), actor);
    deleteOwnerBeforeNextKeyWrite();
    await expect(service.update(key.id, { ownerId: 'own_1' }, actor)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect((await store.getKey(key.id))!.ownerId).toBeNull();
  });
});
