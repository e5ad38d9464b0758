import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUID, SECRET, createKey, createWorkspace, expectError, sleep, stopAndClean } from './support/admin.js';
import { startKeygate, type Keygate } from './support/keygate.js';

const DAY_MS = 86_400_000;

let kg: Keygate;

beforeAll(async () => {
  kg = await startKeygate();
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('workspaces', () => {
  it('creates a workspace with 201 and a GUID id, and reads it back alone and in the list', async () => {
    const before = Date.now();
    const res = await kg.admin('POST', '/v1/workspaces', { name: 'Acme' });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(GUID);
    expect(res.body.name).toBe('Acme');
    expect(Date.parse(res.body.createdAt)).toBeGreaterThanOrEqual(before - 1000);

    const one = await kg.admin('GET', `/v1/workspaces/${res.body.id}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(res.body);

    const list = await kg.admin('GET', '/v1/workspaces');
    expect(list.status).toBe(200);
    expect(list.body.items).toContainEqual(res.body);
  });
});

describe('key lifecycle', () => {
  it('creates a key: 201 {key, secret} with the secret format, version 1, active, a 90-day default expiry and a prefix of the secret', async () => {
    const ws = await createWorkspace(kg);
    const before = Date.now();
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'ios-app', permissions: ['events.create'] });
    const after = Date.now();
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['key', 'secret']);
    const { key, secret } = res.body;
    expect(secret).toMatch(SECRET);
    expect(key.id).toMatch(/^key_/);
    expect(key.workspaceId).toBe(ws);
    expect(key.name).toBe('ios-app');
    expect(key.description).toBe('');
    expect(key.type).toBe('workspace');
    expect(key.environment).toBe('live');
    expect(key.version).toBe(1);
    expect(key.status).toBe('active');
    expect(key.permissions).toEqual(['events.create']);
    expect(key.groupId).toBeNull();
    expect(key.ownerId).toBeNull();
    expect(key.lastUsedAt).toBeNull();
    expect(key.simpleAuth).toEqual({ enabled: false });
    expect(typeof key.prefix).toBe('string');
    expect(key.prefix.length).toBeGreaterThan('kg_live_'.length);
    expect(key.prefix.length).toBeLessThan(secret.length);
    expect(secret.startsWith(key.prefix)).toBe(true);
    const expires = Date.parse(key.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 90 * DAY_MS - 60_000);
    expect(expires).toBeLessThanOrEqual(after + 90 * DAY_MS + 60_000);
    // The secret itself is never part of the key object.
    expect(JSON.stringify(key)).not.toContain(secret);
  });

  it('GET /v1/keys/{id} returns the same key the create returned', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'get-me', description: 'a description', permissions: ['events.read'] });
    const res = await kg.admin('GET', `/v1/keys/${key.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(key);
  });

  it('creates test-environment and profile keys with the matching secret format', async () => {
    const ws = await createWorkspace(kg);
    const { key, secret } = await createKey(kg, { workspaceId: ws, name: 'test-profile', type: 'profile', environment: 'test' });
    expect(secret).toMatch(/^kg_test_[0-9A-Za-z]{24}_[0-9A-Za-z]{6}$/);
    expect(key.type).toBe('profile');
    expect(key.environment).toBe('test');
    expect(secret.startsWith(key.prefix)).toBe(true);
  });

  it('honours an explicit expiresAt and expiresAt null (never)', async () => {
    const ws = await createWorkspace(kg);
    const at = new Date(Date.now() + 5 * DAY_MS).toISOString();
    const a = await createKey(kg, { workspaceId: ws, name: 'five-days', expiresAt: at });
    expect(Date.parse(a.key.expiresAt)).toBe(Date.parse(at));
    const b = await createKey(kg, { workspaceId: ws, name: 'never', expiresAt: null });
    expect(b.key.expiresAt).toBeNull();
  });

  it('a preset on create expands to its permissions ("read-only" gives ["*.read"])', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'reader', preset: 'read-only' });
    expect(key.permissions).toEqual(['*.read']);
    const full = await createKey(kg, { workspaceId: ws, name: 'all', preset: 'full-access' });
    expect(full.key.permissions).toEqual(['*']);
  });

  it('PATCH changes the given fields, bumps the version by one and leaves the others alone', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'patch-me', permissions: ['events.create'], ipAllowlist: ['10.0.0.0/8'] });
    const res = await kg.admin('PATCH', `/v1/keys/${key.id}`, {
      name: 'patched', description: 'now described', permissions: ['events.read', 'profiles.*'],
      ipAllowlist: ['2001:db8::/32'], eventDenylist: ['transaction.charge'], rateLimit: { limit: 100, windowSeconds: 1 },
      quota: { limit: 1000, period: 'month' },
    });
    expect(res.status).toBe(200);
    expect(res.body.version).toBe(2);
    expect(res.body.name).toBe('patched');
    expect(res.body.description).toBe('now described');
    expect(res.body.permissions).toEqual(['events.read', 'profiles.*']);
    expect(res.body.ipAllowlist).toEqual(['2001:db8::/32']);
    expect(res.body.eventDenylist).toEqual(['transaction.charge']);
    expect(res.body.rateLimit).toEqual({ limit: 100, windowSeconds: 1 });
    expect(res.body.quota).toEqual({ limit: 1000, period: 'month' });
    expect(res.body.id).toBe(key.id);
    expect(res.body.prefix).toBe(key.prefix);
    expect(res.body.createdAt).toBe(key.createdAt);
    expect(res.body.expiresAt).toBe(key.expiresAt);
    expect(Date.parse(res.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(key.updatedAt));

    const again = await kg.admin('PATCH', `/v1/keys/${key.id}`, { name: 'patched twice' });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(3);

    const got = await kg.admin('GET', `/v1/keys/${key.id}`);
    expect(got.body).toEqual(again.body);
  });

  it('PATCH {"enabled": false} makes the status disabled, and {"enabled": true} active again', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'toggle' });
    const off = await kg.admin('PATCH', `/v1/keys/${key.id}`, { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body.status).toBe('disabled');
    expect(off.body.version).toBe(2);
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.status).toBe('disabled');
    const on = await kg.admin('PATCH', `/v1/keys/${key.id}`, { enabled: true });
    expect(on.body.status).toBe('active');
    expect(on.body.version).toBe(3);
  });

  it('a key whose expiresAt passes reads status expired', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'short-lived', expiresAt: new Date(Date.now() + 2000).toISOString() });
    expect(key.status).toBe('active');
    await sleep(2300);
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.status).toBe('expired');
    const list = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&status=expired`);
    expect(list.body.items.map((k: any) => k.id)).toEqual([key.id]);
  });

  it('changing locked permissions is 409 PERMISSIONS_LOCKED and changes nothing; unlocking alone works, then the change goes through', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'locked', permissions: ['events.create'], permissionsLocked: true });
    expect(key.permissionsLocked).toBe(true);

    const refused = await kg.admin('PATCH', `/v1/keys/${key.id}`, { permissions: ['events.create', 'events.read'] });
    expectError(refused, 409, 'PERMISSIONS_LOCKED');
    const preset = await kg.admin('PATCH', `/v1/keys/${key.id}`, { preset: 'full-access' });
    expectError(preset, 409, 'PERMISSIONS_LOCKED');
    const unchanged = await kg.admin('GET', `/v1/keys/${key.id}`);
    expect(unchanged.body.version).toBe(1);
    expect(unchanged.body.permissions).toEqual(['events.create']);

    // Other fields of a locked key may still change.
    const renamed = await kg.admin('PATCH', `/v1/keys/${key.id}`, { name: 'still locked' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.permissionsLocked).toBe(true);

    const unlocked = await kg.admin('PATCH', `/v1/keys/${key.id}`, { permissionsLocked: false });
    expect(unlocked.status).toBe(200);
    expect(unlocked.body.permissionsLocked).toBe(false);
    expect(unlocked.body.permissions).toEqual(['events.create']);

    const changed = await kg.admin('PATCH', `/v1/keys/${key.id}`, { permissions: ['events.read'] });
    expect(changed.status).toBe(200);
    expect(changed.body.permissions).toEqual(['events.read']);
  });

  it('rotate: 200 {key, secret} with a new secret, version + 1, and accepts gracePeriodSeconds', async () => {
    const ws = await createWorkspace(kg);
    const created = await createKey(kg, { workspaceId: ws, name: 'rotate-me' });
    const res = await kg.admin('POST', `/v1/keys/${created.key.id}/rotate`, { gracePeriodSeconds: 60 });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['key', 'secret']);
    expect(res.body.secret).toMatch(SECRET);
    expect(res.body.secret).not.toBe(created.secret);
    expect(res.body.key.id).toBe(created.key.id);
    expect(res.body.key.version).toBe(2);
    expect(res.body.secret.startsWith(res.body.key.prefix)).toBe(true);

    const noBody = await kg.admin('POST', `/v1/keys/${created.key.id}/rotate`);
    expect(noBody.status).toBe(200);
    expect(noBody.body.key.version).toBe(3);
    expect(noBody.body.secret).not.toBe(res.body.secret);

    const zero = await kg.admin('POST', `/v1/keys/${created.key.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(zero.status).toBe(200);
    expect(zero.body.key.version).toBe(4);

    expect((await kg.admin('GET', `/v1/keys/${created.key.id}`)).body.version).toBe(4);
  });

  it('DELETE is 204, then GET is 404 KEY_NOT_FOUND and a second DELETE is 404', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'delete-me' });
    const del = await kg.admin('DELETE', `/v1/keys/${key.id}`);
    expect(del.status).toBe(204);
    expect(del.body).toBeNull();
    expectError(await kg.admin('GET', `/v1/keys/${key.id}`), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('DELETE', `/v1/keys/${key.id}`), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('PATCH', `/v1/keys/${key.id}`, { name: 'x' }), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('POST', `/v1/keys/${key.id}/rotate`, {}), 404, 'KEY_NOT_FOUND');
    const list = await kg.admin('GET', `/v1/keys?workspaceId=${ws}`);
    expect(list.body.items).toEqual([]);
  });

  it('GET /v1/keys/{id}/usage answers the usage shape for a fresh key', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'usage', rateLimit: { limit: 5, windowSeconds: 1 }, quota: { limit: 10, period: 'day' } });
    const res = await kg.admin('GET', `/v1/keys/${key.id}/usage`);
    expect(res.status).toBe(200);
    expect(res.body.requests.total).toBe(0);
    expect(res.body.requests.byOutcome).toEqual({});
    expect(res.body.lastUsedAt).toBeNull();
    expect(res.body.rateLimit).toMatchObject({ limit: 5, windowSeconds: 1, remaining: 5 });
    expect(res.body.quota).toMatchObject({ limit: 10, period: 'day', used: 0, remaining: 10 });
  });
});

describe('concurrent writes', () => {
  it('20 concurrent creates all answer 201 with distinct ids and secrets, and all are listed', async () => {
    const ws = await createWorkspace(kg);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => kg.admin('POST', '/v1/keys', { workspaceId: ws, name: `c-${i}` })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(new Set(results.map((r) => r.body.key.id)).size).toBe(20);
    expect(new Set(results.map((r) => r.body.secret)).size).toBe(20);
    const list = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=100`);
    expect(list.body.items).toHaveLength(20);
  });

  it('10 concurrent PATCHes of one key all succeed, each with its own version, ending at version 11', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'contended' });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => kg.admin('PATCH', `/v1/keys/${key.id}`, { description: `writer ${i}` })));
    expect(results.map((r) => `${r.status} ${r.body.error?.code ?? ''}`.trim())).toEqual(Array(10).fill('200'));
    expect(results.map((r) => r.body.version as number).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.version).toBe(11);
  });

  it('10 concurrent rotations of one key all succeed with distinct secrets, ending at version 11', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'contended-rotate' });
    const results = await Promise.all(Array.from({ length: 10 }, () => kg.admin('POST', `/v1/keys/${key.id}/rotate`, { gracePeriodSeconds: 0 })));
    expect(results.map((r) => `${r.status} ${r.body.error?.code ?? ''}`.trim())).toEqual(Array(10).fill('200'));
    expect(new Set(results.map((r) => r.body.secret)).size).toBe(10);
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.version).toBe(11);
  });
});

describe('listing keys', () => {
  let ws: string;
  let otherWs: string;
  let group: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ws = await createWorkspace(kg, 'list-ws');
    otherWs = await createWorkspace(kg, 'other-ws');
    const g = await kg.admin('POST', '/v1/groups', { name: 'list-group' });
    group = g.body.id;
    ids.alpha = (await createKey(kg, { workspaceId: ws, name: 'Alpha Service', groupId: group })).key.id;
    ids.beta = (await createKey(kg, { workspaceId: ws, name: 'beta', description: 'Handles the SHOPPING cart' })).key.id;
    ids.gamma = (await createKey(kg, { workspaceId: ws, name: 'gamma', type: 'profile', groupId: group })).key.id;
    ids.delta = (await createKey(kg, { workspaceId: ws, name: 'delta', environment: 'test' })).key.id;
    ids.epsilon = (await createKey(kg, { workspaceId: ws, name: 'epsilon', enabled: false })).key.id;
    ids.other = (await createKey(kg, { workspaceId: otherWs, name: 'alpha elsewhere' })).key.id;
  });

  const idsOf = (res: { body: any }): string[] => (res.body.items as any[]).map((k) => k.id);

  it('filters by workspaceId and answers {items, nextCursor}', async () => {
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
    expect(res.body.nextCursor).toBeNull();
    expect(idsOf(res).sort()).toEqual([ids.alpha, ids.beta, ids.gamma, ids.delta, ids.epsilon].sort());
    for (const k of res.body.items) expect(k.workspaceId).toBe(ws);
  });

  it('q is a case-insensitive substring of the name', async () => {
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&q=aLPHA%20s`);
    expect(idsOf(res)).toEqual([ids.alpha]);
    const both = await kg.admin('GET', '/v1/keys?q=ALPHA');
    expect(idsOf(both).sort()).toEqual([ids.alpha, ids.other].sort());
  });

  it('q is a case-insensitive substring of the description', async () => {
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&q=shopping`);
    expect(idsOf(res)).toEqual([ids.beta]);
  });

  it('q is a case-insensitive substring of the prefix', async () => {
    const key = (await kg.admin('GET', `/v1/keys/${ids.delta}`)).body;
    const flipped = [...(key.prefix as string)].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('');
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&q=${encodeURIComponent(flipped)}`);
    expect(idsOf(res)).toContain(ids.delta);
    for (const k of res.body.items) expect((k.prefix as string).toLowerCase()).toContain((key.prefix as string).toLowerCase());
  });

  it('q that matches nothing gives an empty list', async () => {
    const res = await kg.admin('GET', '/v1/keys?q=zz-no-such-key-zz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ items: [], nextCursor: null });
  });

  it('filters by groupId', async () => {
    const res = await kg.admin('GET', `/v1/keys?groupId=${group}`);
    expect(idsOf(res).sort()).toEqual([ids.alpha, ids.gamma].sort());
  });

  it('filters by type', async () => {
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&type=profile`);
    expect(idsOf(res)).toEqual([ids.gamma]);
    const ws2 = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&type=workspace`);
    expect(idsOf(ws2).sort()).toEqual([ids.alpha, ids.beta, ids.delta, ids.epsilon].sort());
  });

  it('filters by environment', async () => {
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&environment=test`);
    expect(idsOf(res)).toEqual([ids.delta]);
  });

  it('filters by status', async () => {
    const disabled = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&status=disabled`);
    expect(idsOf(disabled)).toEqual([ids.epsilon]);
    const active = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&status=active`);
    expect(idsOf(active).sort()).toEqual([ids.alpha, ids.beta, ids.gamma, ids.delta].sort());
  });

  it('combines filters (workspace + type + group)', async () => {
    const res = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&type=workspace&groupId=${group}`);
    expect(idsOf(res)).toEqual([ids.alpha]);
  });

  it('limit=2 over 5 keys walks every key exactly once and ends with nextCursor null', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const path: string = `/v1/keys?workspaceId=${ws}&limit=2${cursor !== null ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await kg.admin('GET', path);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...idsOf(res));
      cursor = res.body.nextCursor;
      pages++;
      expect(pages).toBeLessThanOrEqual(5);
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual([ids.alpha, ids.beta, ids.gamma, ids.delta, ids.epsilon].sort());
  });

  it('a full last page (limit equal to the remaining count) still ends with nextCursor null or an empty next page', async () => {
    const first = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=5`);
    expect(first.body.items).toHaveLength(5);
    if (first.body.nextCursor !== null) {
      const next = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=5&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(next.body).toEqual({ items: [], nextCursor: null });
    }
  });

  it('a cursor the server did not issue is 400 BAD_REQUEST naming cursor', async () => {
    for (const bad of ['garbage', 'AAAA', '!!!', Buffer.from('s:-1').toString('base64url')]) {
      const res = await kg.admin('GET', `/v1/keys?cursor=${encodeURIComponent(bad)}`);
      expectError(res, 400, 'BAD_REQUEST');
      expect(res.body.error.message).toContain('cursor');
    }
  });
});

describe('groups', () => {
  it('create (201), list, patch and delete (204) a group', async () => {
    const created = await kg.admin('POST', '/v1/groups', { name: 'mobile', description: 'mobile apps' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'mobile', description: 'mobile apps' });
    expect(typeof created.body.id).toBe('string');
    const id = created.body.id as string;

    const list = await kg.admin('GET', '/v1/groups');
    expect(list.status).toBe(200);
    expect(list.body.items.map((g: any) => g.id)).toContain(id);

    const patched = await kg.admin('PATCH', `/v1/groups/${id}`, { name: 'mobile-apps' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id, name: 'mobile-apps', description: 'mobile apps' });
    const listed = (await kg.admin('GET', '/v1/groups')).body.items.find((g: any) => g.id === id);
    expect(listed.name).toBe('mobile-apps');

    const del = await kg.admin('DELETE', `/v1/groups/${id}`);
    expect(del.status).toBe(204);
    expect((await kg.admin('GET', '/v1/groups')).body.items.map((g: any) => g.id)).not.toContain(id);
    expectError(await kg.admin('DELETE', `/v1/groups/${id}`), 404, 'GROUP_NOT_FOUND');
    expectError(await kg.admin('PATCH', `/v1/groups/${id}`, { name: 'x' }), 404, 'GROUP_NOT_FOUND');
  });

  it('deleting a group that still has keys is 409 GROUP_IN_USE; after moving the key out it is 204', async () => {
    const ws = await createWorkspace(kg);
    const group = (await kg.admin('POST', '/v1/groups', { name: 'busy' })).body.id as string;
    const { key } = await createKey(kg, { workspaceId: ws, name: 'member', groupId: group });
    expect(key.groupId).toBe(group);
    expectError(await kg.admin('DELETE', `/v1/groups/${group}`), 409, 'GROUP_IN_USE');
    expect((await kg.admin('GET', '/v1/groups')).body.items.map((g: any) => g.id)).toContain(group);

    const moved = await kg.admin('PATCH', `/v1/keys/${key.id}`, { groupId: null });
    expect(moved.status).toBe(200);
    expect(moved.body.groupId).toBeNull();
    expect((await kg.admin('DELETE', `/v1/groups/${group}`)).status).toBe(204);
  });
});

describe('owners', () => {
  it('creates an owner (201) with status active, lists it and reads it', async () => {
    const res = await kg.admin('POST', '/v1/owners', { name: 'team-a', permissions: ['events.*'] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'team-a', status: 'active', permissions: ['events.*'] });
    expect(typeof res.body.id).toBe('string');
    const list = await kg.admin('GET', '/v1/owners');
    expect(list.status).toBe(200);
    expect(list.body.items.map((o: any) => o.id)).toContain(res.body.id);
  });

  it("disabling an owner makes its keys read suspended; re-enabling makes them active again", async () => {
    const ws = await createWorkspace(kg);
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'team-b', permissions: ['*'] })).body;
    const { key } = await createKey(kg, { workspaceId: ws, name: 'owned', ownerId: owner.id });
    expect(key.ownerId).toBe(owner.id);
    expect(key.status).toBe('active');

    const disabled = await kg.admin('PATCH', `/v1/owners/${owner.id}`, { status: 'disabled' });
    expect(disabled.status).toBe(200);
    expect(disabled.body.status).toBe('disabled');
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.status).toBe('suspended');
    const suspendedList = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&status=suspended`);
    expect(suspendedList.body.items.map((k: any) => k.id)).toEqual([key.id]);

    const enabled = await kg.admin('PATCH', `/v1/owners/${owner.id}`, { status: 'active' });
    expect(enabled.status).toBe(200);
    expect(enabled.body.status).toBe('active');
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.status).toBe('active');
  });

  it('an explicitly disabled key of a disabled owner reads disabled', async () => {
    const ws = await createWorkspace(kg);
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'team-c' })).body;
    const { key } = await createKey(kg, { workspaceId: ws, name: 'off', ownerId: owner.id, enabled: false });
    await kg.admin('PATCH', `/v1/owners/${owner.id}`, { status: 'disabled' });
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.status).toBe('disabled');
  });
});

describe('simple authentication', () => {
  it('creating a profile key with simpleAuth enabled returns the salt in that response only', async () => {
    const ws = await createWorkspace(kg);
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'profile-app', type: 'profile', simpleAuth: { enabled: true } });
    expect(res.status).toBe(201);
    const salt = res.body.key.simpleAuth.salt;
    expect(res.body.key.simpleAuth.enabled).toBe(true);
    expect(typeof salt).toBe('string');
    expect(salt.length).toBeGreaterThanOrEqual(16);

    const got = await kg.admin('GET', `/v1/keys/${res.body.key.id}`);
    expect(got.body.simpleAuth).toEqual({ enabled: true });
    expect(JSON.stringify(got.body)).not.toContain(salt);
    const list = await kg.admin('GET', `/v1/keys?workspaceId=${ws}`);
    expect(JSON.stringify(list.body)).not.toContain(salt);
    const patched = await kg.admin('PATCH', `/v1/keys/${res.body.key.id}`, { name: 'renamed' });
    expect(patched.body.simpleAuth).toEqual({ enabled: true });
    const audit = await kg.admin('GET', `/v1/audit?keyId=${res.body.key.id}`);
    expect(audit.body.items.length).toBeGreaterThan(0);
    expect(JSON.stringify(audit.body)).not.toContain(salt);
  });

  it('PATCH enabling simpleAuth on a profile key returns a salt once; enabling it again shows none', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'profile-late', type: 'profile' });
    expect(key.simpleAuth).toEqual({ enabled: false });

    const on = await kg.admin('PATCH', `/v1/keys/${key.id}`, { simpleAuth: { enabled: true } });
    expect(on.status).toBe(200);
    expect(on.body.simpleAuth.enabled).toBe(true);
    const salt = on.body.simpleAuth.salt;
    expect(typeof salt).toBe('string');
    expect(salt.length).toBeGreaterThanOrEqual(16);

    const got = await kg.admin('GET', `/v1/keys/${key.id}`);
    expect(got.body.simpleAuth).toEqual({ enabled: true });
    const again = await kg.admin('PATCH', `/v1/keys/${key.id}`, { simpleAuth: { enabled: true } });
    expect(again.status).toBe(200);
    expect(again.body.simpleAuth).toEqual({ enabled: true });
    const audit = await kg.admin('GET', `/v1/audit?keyId=${key.id}`);
    expect(JSON.stringify(audit.body)).not.toContain(salt);

    const off = await kg.admin('PATCH', `/v1/keys/${key.id}`, { simpleAuth: { enabled: false } });
    expect(off.body.simpleAuth).toEqual({ enabled: false });
    const reOn = await kg.admin('PATCH', `/v1/keys/${key.id}`, { simpleAuth: { enabled: true } });
    expect(typeof reOn.body.simpleAuth.salt).toBe('string');
    expect(reOn.body.simpleAuth.salt).not.toBe(salt);
  });

  it('simpleAuth on a workspace key is a 400 naming simpleAuth', async () => {
    const ws = await createWorkspace(kg);
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'ws-simple', simpleAuth: { enabled: true } });
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.message).toContain('simpleAuth');
  });
});

describe('permissions catalogue', () => {
  it('GET /v1/permissions lists the modules from the routes and the presets', async () => {
    const res = await kg.admin('GET', '/v1/permissions');
    expect(res.status).toBe(200);
    expect(res.body.modules).toEqual({
      events: ['events.create', 'events.read'],
      profiles: ['profiles.read', 'profiles.update'],
    });
    expect(res.body.presets).toEqual({ 'read-only': ['*.read'], 'full-access': ['*'] });
  });
});

describe('audit', () => {
  it('records key.create, key.update, key.rotate and key.delete with actor "ops", before and after; ?keyId= filters', async () => {
    const ws = await createWorkspace(kg);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'audited' });
    await kg.admin('PATCH', `/v1/keys/${key.id}`, { name: 'audited-2' });
    await kg.admin('POST', `/v1/keys/${key.id}/rotate`, { gracePeriodSeconds: 10 });
    const other = await createKey(kg, { workspaceId: ws, name: 'not-this-one' });
    expect((await kg.admin('DELETE', `/v1/keys/${key.id}`)).status).toBe(204);

    const res = await kg.admin('GET', `/v1/audit?keyId=${key.id}`);
    expect(res.status).toBe(200);
    const items = res.body.items as any[];
    expect(items.map((e) => e.action).sort()).toEqual(['key.create', 'key.delete', 'key.rotate', 'key.update']);
    for (const e of items) {
      expect(Object.keys(e).sort()).toEqual(['action', 'actor', 'after', 'at', 'before', 'id', 'target', 'workspaceId']);
      expect(e.target).toEqual({ type: 'key', id: key.id });
      expect(e.actor.name).toBe('ops');
      expect(Number.isNaN(Date.parse(e.at))).toBe(false);
    }
    const byAction = Object.fromEntries(items.map((e) => [e.action, e]));
    expect(byAction['key.create'].before).toBeNull();
    expect(byAction['key.create'].after).toMatchObject({ id: key.id, name: 'audited', version: 1 });
    expect(byAction['key.update'].before).toMatchObject({ name: 'audited', version: 1 });
    expect(byAction['key.update'].after).toMatchObject({ name: 'audited-2', version: 2 });
    expect(byAction['key.rotate'].before).toMatchObject({ version: 2 });
    expect(byAction['key.rotate'].after).toMatchObject({ version: 3 });
    expect(byAction['key.delete'].before).toMatchObject({ id: key.id, version: 3 });
    expect(byAction['key.delete'].after).toBeNull();
    expect(items.some((e) => e.target.id === other.key.id)).toBe(false);

    // Newest first.
    const times = items.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(items[0].action).toBe('key.delete');

    const all = await kg.admin('GET', '/v1/audit?limit=1000');
    expect(all.body.items.some((e: any) => e.target.id === other.key.id && e.action === 'key.create')).toBe(true);
  });

  it('records owner.update with actor "ops" and the status before and after', async () => {
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'audited-owner' })).body;
    await kg.admin('PATCH', `/v1/owners/${owner.id}`, { status: 'disabled' });
    const res = await kg.admin('GET', '/v1/audit?limit=1000');
    const entry = (res.body.items as any[]).find((e) => e.action === 'owner.update' && e.target.id === owner.id);
    expect(entry).toBeDefined();
    expect(entry.actor.name).toBe('ops');
    expect(entry.target).toEqual({ type: 'owner', id: owner.id });
    expect(entry.before.status).toBe('active');
    expect(entry.after.status).toBe('disabled');
  });

  it('limit caps the number of audit entries returned', async () => {
    const res = await kg.admin('GET', '/v1/audit?limit=2');
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(2);
  });

  it('audit entries never carry a secret hash or salt field', async () => {
    const res = await kg.admin('GET', '/v1/audit?limit=1000');
    const text = JSON.stringify(res.body);
    expect(text).not.toMatch(/secretHash|retiredSecrets|"salt"/);
  });
});
