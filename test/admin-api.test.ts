import SwaggerParser from '@apidevtools/swagger-parser';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_RESOURCES } from '../src/domain/admin-scopes.js';
import { createKey, createWorkspace, expectError, filesContaining, stopAndClean } from './support/admin.js';
import { baseConfig, startKeygate, type Keygate } from './support/keygate.js';
import { adminResponseMismatches } from './support/openapi-check.js';
import { requireRedis, startRedis, type RedisServer } from './support/redis-server.js';
import { uniquePrefix } from './support/redis-nodes.js';

const READ_ONLY_TOKEN = 'config-read-only-token-0123456789';

let kg: Keygate;

beforeAll(async () => {
  kg = await startKeygate({
    config: (dir) => {
      const base = baseConfig(dir);
      const admin = base.admin as { tokens: unknown[] };
      return { ...base, admin: { ...admin, tokens: [...admin.tokens, { name: 'reader', token: READ_ONLY_TOKEN, scopes: ['keys:read', 'workspaces:read'] }] } };
    },
  });
});

afterAll(async () => {
  await stopAndClean(kg);
});

const as = (secret: string) => ({ authorization: `Bearer ${secret}` });

/** Makes an admin token through the API with the config's all-powerful token. */
async function makeToken(body: Record<string, unknown>): Promise<{ token: any; secret: string }> {
  const res = await kg.admin('POST', '/v1/admin-tokens', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { token: any; secret: string };
}

/** Every item of a list, walking its cursors with `limit`. */
async function walk(path: string, limit: number, headers: Record<string, string> = {}): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 200; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await kg.admin('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, undefined, headers);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
    if (cursor === null) return items;
  }
  throw new Error(`${path} did not end`);
}

describe('the OpenAPI document', () => {
  it('is served at /openapi.json without a token, lints as OpenAPI 3.1, and is the one the build writes to docs/openapi.json', async () => {
    const res = await fetch(`${kg.adminUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = await res.json() as any;
    expect(doc.openapi).toBe('3.1.0');
    // swagger-parser validates against the OpenAPI 3.1 schema and resolves every $ref.
    await SwaggerParser.validate(structuredClone(doc));
    const written = JSON.parse(readFileSync(resolve(import.meta.dirname, '../docs/openapi.json'), 'utf8'));
    expect(written).toEqual(doc);
  });

  it('describes every resource with the scope each operation needs, and lists paginated everywhere', async () => {
    const doc = await (await fetch(`${kg.adminUrl}/openapi.json`)).json() as any;
    for (const path of ['/v1/workspaces/{id}', '/v1/groups/{id}', '/v1/owners/{id}', '/v1/admin-tokens/{id}']) {
      expect(Object.keys(doc.paths[path]).sort(), path).toEqual(path.startsWith('/v1/admin-tokens') ? ['delete', 'get'] : ['delete', 'get', 'patch']);
    }
    for (const [path, item] of Object.entries(doc.paths as Record<string, any>)) {
      for (const op of Object.values(item as Record<string, any>)) {
        expect(op['x-required-scope'], path).toBeTypeOf('string');
        const ok = op.responses['200']?.content?.['application/json']?.schema;
        if (ok?.properties?.items) {
          const names = (op.parameters ?? []).map((p: any) => p.name);
          expect(names, path).toEqual(expect.arrayContaining(['limit', 'cursor']));
          expect(ok.required.sort(), path).toEqual(['items', 'nextCursor']);
        }
      }
    }
    expect(doc.paths['/v1/keys'].post['x-required-scope']).toBe('keys:write');
    expect(doc.paths['/v1/permissions'].get['x-required-scope']).toBe('any valid admin token');
  });

  it('the response check finds an answer that strays from the document', () => {
    const headers = new Headers();
    expect(adminResponseMismatches('GET', '/v1/workspaces/x', 200, { id: 'x', name: 'n', createdAt: 'yesterday' }, headers).join()).toMatch(/schema/);
    expect(adminResponseMismatches('GET', '/v1/workspaces', 200, { items: [] }, headers).join()).toMatch(/nextCursor/);
    expect(adminResponseMismatches('GET', '/v1/workspaces/x', 201, { id: 'x' }, headers).join()).toMatch(/not documented/);
    expect(adminResponseMismatches('GET', '/v1/nothing-here', 200, {}, headers).join()).toMatch(/no such operation/);
    expect(adminResponseMismatches('DELETE', '/v1/keys/k', 204, null, headers)).toEqual([]);
  });
});

describe('scoped admin tokens', () => {
  it('POST /v1/admin-tokens is 201 {token, secret} with Location; the secret is shown once and stored only hashed', async () => {
    const res = await kg.admin('POST', '/v1/admin-tokens', { name: 'ci', scopes: ['keys:write'] });
    expect(res.status).toBe(201);
    const { token, secret } = res.body;
    expect(secret).toMatch(/^kgadm_[0-9A-Za-z]{22}_[0-9A-Za-z]{32}$/);
    expect(token).toMatchObject({ name: 'ci', scopes: ['keys:write'], workspaces: null, createdBy: { name: 'ops', tokenId: 'config:ops' } });
    expect(res.headers.get('location')).toBe(`/v1/admin-tokens/${token.id}`);
    const got = await kg.admin('GET', res.headers.get('location')!);
    expect(got.body).toEqual(token);
    expect(JSON.stringify(got.body)).not.toContain(secret.slice(-32));
    const listed = await walk('/v1/admin-tokens', 50);
    expect(JSON.stringify(listed)).not.toContain(secret.slice(-32));
    expect(JSON.stringify(listed)).not.toMatch(/secretHash/);
    expect(filesContaining(kg.dataDir, secret.slice(-32))).toEqual([]);
    // It works, for what its scope allows.
    expect((await kg.admin('GET', '/v1/keys', undefined, as(secret))).status).toBe(200);
  });

  it('a missing token is 401 asking for one; an unknown or mistyped one is 401 saying it is not valid', async () => {
    const missing = await fetch(`${kg.adminUrl}/v1/keys`);
    const missingBody = await missing.json() as any;
    expect(missing.status).toBe(401);
    expect(missingBody.error.message).toMatch(/required/);
    const wrong = await kg.admin('GET', '/v1/keys', undefined, as('kgadm_0000000000000000000000_00000000000000000000000000000000'));
    expectError(wrong, 401, 'UNAUTHENTICATED');
    expect(wrong.body.error.message).toMatch(/not valid/);
  });

  it.each(ADMIN_RESOURCES.filter((r) => r !== 'audit'))('%s: read scope lists but cannot write; write implies read; another scope gets 403 ADMIN_SCOPE_MISSING naming the scope', async (resource) => {
    const reader = await makeToken({ name: `${resource}-reader`, scopes: [`${resource}:read`] });
    const writer = await makeToken({ name: `${resource}-writer`, scopes: [`${resource}:write`] });
    const other = await makeToken({ name: `${resource}-other`, scopes: [resource === 'keys' ? 'groups:write' : 'keys:write'] });
    const list = resource === 'signing-keys' ? '/v1/signing-keys' : `/v1/${resource}`;
    const write: [string, string, unknown] = resource === 'signing-keys'
      ? ['POST', '/v1/signing-keys/rotate', undefined]
      : resource === 'keys' ? ['POST', '/v1/keys', { workspaceId: 'nope', name: 'x' }]
      : resource === 'admin-tokens' ? ['POST', '/v1/admin-tokens', { name: 'x', scopes: ['admin-tokens:read'] }]
      : ['POST', `/v1/${resource}`, { name: 'x' }];
    expect((await kg.admin('GET', list, undefined, as(reader.secret))).status).toBe(200);
    const refused = await kg.admin(write[0], write[1], write[2], as(reader.secret));
    expectError(refused, 403, 'ADMIN_SCOPE_MISSING');
    expect(refused.body.error.message).toContain(`"${resource}:write"`);
    expect((await kg.admin('GET', list, undefined, as(writer.secret))).status).toBe(200);
    expect([201, 400]).toContain((await kg.admin(write[0], write[1], write[2], as(writer.secret))).status);
    const none = await kg.admin('GET', list, undefined, as(other.secret));
    expectError(none, 403, 'ADMIN_SCOPE_MISSING');
    expect(none.body.error.message).toContain(`"${resource}:read"`);
  });

  it('audit:read reads the audit log; without it the log is 403; the catalogue and nodes need only a valid token', async () => {
    const auditor = await makeToken({ name: 'auditor', scopes: ['audit:read'] });
    const keysOnly = await makeToken({ name: 'keys-only', scopes: ['keys:read'] });
    expect((await kg.admin('GET', '/v1/audit', undefined, as(auditor.secret))).status).toBe(200);
    const refused = await kg.admin('GET', '/v1/audit', undefined, as(keysOnly.secret));
    expectError(refused, 403, 'ADMIN_SCOPE_MISSING');
    expect(refused.body.error.message).toContain('"audit:read"');
    expect((await kg.admin('GET', '/v1/permissions', undefined, as(keysOnly.secret))).status).toBe(200);
    expect((await kg.admin('GET', '/v1/nodes', undefined, as(keysOnly.secret))).status).toBe(200);
  });

  it('config tokens take scopes too: a read-only one reads keys and cannot write them', async () => {
    expect((await kg.admin('GET', '/v1/keys', undefined, as(READ_ONLY_TOKEN))).status).toBe(200);
    expectError(await kg.admin('POST', '/v1/workspaces', { name: 'no' }, as(READ_ONLY_TOKEN)), 403, 'ADMIN_SCOPE_MISSING');
  });

  it('a token cannot make a token reaching further than itself', async () => {
    const maker = await makeToken({ name: 'maker', scopes: ['admin-tokens:write', 'keys:read'] });
    const beyond = await kg.admin('POST', '/v1/admin-tokens', { name: 'x', scopes: ['keys:write', '*'] }, as(maker.secret));
    expectError(beyond, 400, 'BAD_REQUEST');
    expect(beyond.body.error.message).toContain('scopes[0]');
    expect(beyond.body.error.message).toContain('scopes[1]');
    expect((await kg.admin('POST', '/v1/admin-tokens', { name: 'x', scopes: ['keys:read'] }, as(maker.secret))).status).toBe(201);
  });

  it('an unknown scope is a 400 naming it', async () => {
    const res = await kg.admin('POST', '/v1/admin-tokens', { name: 'x', scopes: ['keys:read', 'keys:delete'] });
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.message).toContain('scopes[1]');
  });

  it('DELETE revokes a token at once; the audit log names the token that made each change', async () => {
    const { token, secret } = await makeToken({ name: 'short-lived', scopes: ['workspaces:write'] });
    const made = await kg.admin('POST', '/v1/workspaces', { name: 'by-token' }, as(secret));
    expect(made.status).toBe(201);
    const audit = await kg.admin('GET', `/v1/audit?targetId=${made.body.id}`);
    expect(audit.body.items[0].actor).toEqual({ type: 'admin', name: 'short-lived', tokenId: token.id });
    expect((await kg.admin('DELETE', `/v1/admin-tokens/${token.id}`)).status).toBe(204);
    expectError(await kg.admin('GET', '/v1/workspaces', undefined, as(secret)), 401, 'UNAUTHENTICATED');
    expectError(await kg.admin('DELETE', `/v1/admin-tokens/${token.id}`), 404, 'ADMIN_TOKEN_NOT_FOUND');
    const revoked = await kg.admin('GET', `/v1/audit?targetType=admin-token&targetId=${token.id}`);
    expect(revoked.body.items.map((e: any) => e.action)).toEqual(['admin-token.delete', 'admin-token.create']);
  });
});

describe('a token confined to workspace A', () => {
  let a: string;
  let b: string;
  let keyA: any;
  let keyB: any;
  let secretB: string;
  let confined: string;
  let groupB: string;
  let ownerB: string;

  beforeAll(async () => {
    a = await createWorkspace(kg, 'confined-a');
    b = await createWorkspace(kg, 'confined-b');
    keyA = (await createKey(kg, { workspaceId: a, name: 'in-a' })).key;
    groupB = (await kg.admin('POST', '/v1/groups', { name: 'group-b', workspaceId: b })).body.id;
    ownerB = (await kg.admin('POST', '/v1/owners', { name: 'owner-b', workspaceId: b })).body.id;
    ({ key: keyB, secret: secretB } = await createKey(kg, { workspaceId: b, name: 'in-b', groupId: groupB, ownerId: ownerB }));
    confined = (await makeToken({ name: 'tenant-a', scopes: ['*'], workspaces: [a] })).secret;
  });

  it('lists only what is of A: workspaces, keys, groups, owners and audit entries', async () => {
    const h = as(confined);
    expect((await walk('/v1/workspaces', 50, h)).map((w) => w.id)).toEqual([a]);
    const keys = await walk('/v1/keys', 50, h);
    expect(keys.map((k) => k.id)).toContain(keyA.id);
    expect(keys.every((k) => k.workspaceId === a)).toBe(true);
    expect((await walk(`/v1/keys?workspaceId=${b}`, 50, h))).toEqual([]);
    expect((await walk('/v1/groups', 50, h)).map((g) => g.id)).not.toContain(groupB);
    expect((await walk('/v1/owners', 50, h)).map((o) => o.id)).not.toContain(ownerB);
    const audit = await walk('/v1/audit', 100, h);
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.every((e) => e.workspaceId === a)).toBe(true);
  });

  it("gets 404, not 403, for B's objects: the workspace, its keys and their usage, its groups and owners", async () => {
    const h = as(confined);
    expectError(await kg.admin('GET', `/v1/workspaces/${b}`, undefined, h), 404, 'WORKSPACE_NOT_FOUND');
    expectError(await kg.admin('GET', `/v1/keys/${keyB.id}`, undefined, h), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('GET', `/v1/keys/${keyB.id}/usage`, undefined, h), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('PATCH', `/v1/keys/${keyB.id}`, { name: 'stolen' }, h), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('POST', `/v1/keys/${keyB.id}/rotate`, {}, h), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('DELETE', `/v1/keys/${keyB.id}`, undefined, h), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('GET', `/v1/groups/${groupB}`, undefined, h), 404, 'GROUP_NOT_FOUND');
    expectError(await kg.admin('DELETE', `/v1/owners/${ownerB}`, undefined, h), 404, 'OWNER_NOT_FOUND');
    expect((await walk(`/v1/audit?keyId=${keyB.id}`, 50, h))).toEqual([]);
    // Nothing of B changed.
    expect((await kg.admin('GET', `/v1/keys/${keyB.id}`)).body.name).toBe('in-b');
  });

  it("gets 404 for the activity of B's keys and owners, and for a leak report of B's secret, which changes nothing", async () => {
    const h = as(confined);
    expectError(await kg.admin('GET', `/v1/keys/${keyB.id}/activity`, undefined, h), 404, 'KEY_NOT_FOUND');
    expectError(await kg.admin('GET', `/v1/owners/${ownerB}/activity`, undefined, h), 404, 'OWNER_NOT_FOUND');
    expectError(await kg.admin('POST', '/v1/leaks', { secret: secretB, source: 'paste' }, h), 404, 'KEY_NOT_FOUND');
    expect((await kg.admin('GET', `/v1/keys/${keyB.id}`)).body).toMatchObject({ status: 'active', version: keyB.version });
    expect((await kg.admin('GET', `/v1/keys/${keyA.id}/activity`, undefined, h)).body).toEqual({ items: [], nextCursor: null });
  });

  it('key activity needs keys:read, owner activity owners:read, a leak report keys:write', async () => {
    const keysReader = as((await makeToken({ name: 'activity-keys-reader', scopes: ['keys:read'] })).secret);
    const ownersReader = as((await makeToken({ name: 'activity-owners-reader', scopes: ['owners:read'] })).secret);
    expect((await kg.admin('GET', `/v1/keys/${keyA.id}/activity`, undefined, keysReader)).status).toBe(200);
    expectError(await kg.admin('GET', `/v1/keys/${keyA.id}/activity`, undefined, ownersReader), 403, 'ADMIN_SCOPE_MISSING');
    expect((await kg.admin('GET', `/v1/owners/${ownerB}/activity`, undefined, ownersReader)).status).toBe(200);
    expectError(await kg.admin('GET', `/v1/owners/${ownerB}/activity`, undefined, keysReader), 403, 'ADMIN_SCOPE_MISSING');
    const refused = await kg.admin('POST', '/v1/leaks', { secret: secretB }, keysReader);
    expectError(refused, 403, 'ADMIN_SCOPE_MISSING');
    expect(refused.body.error.message).toContain('keys:write');
    expect((await kg.admin('GET', `/v1/keys/${keyB.id}`)).body.status).toBe('active');
  });

  it("cannot create a key in B (B reads as unknown) nor a workspace, and works in A", async () => {
    const h = as(confined);
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: b, name: 'sneaky' }, h);
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.message).toContain(`workspaceId: unknown workspace "${b}"`);
    expectError(await kg.admin('POST', '/v1/workspaces', { name: 'new' }, h), 403, 'WORKSPACE_CONFINED');
    expect((await kg.admin('POST', '/v1/keys', { workspaceId: a, name: 'fine' }, h)).status).toBe(201);
    expect((await kg.admin('PATCH', `/v1/keys/${keyA.id}`, { description: 'mine' }, h)).status).toBe(200);
  });
});

describe('every resource complete', () => {
  it('a 201 carries Location, which reads the resource back; single resources carry an ETag', async () => {
    const ws = await kg.admin('POST', '/v1/workspaces', { name: 'located' });
    const group = await kg.admin('POST', '/v1/groups', { name: 'located' });
    const owner = await kg.admin('POST', '/v1/owners', { name: 'located' });
    const key = await kg.admin('POST', '/v1/keys', { workspaceId: ws.body.id, name: 'located' });
    for (const [res, id] of [[ws, ws.body.id], [group, group.body.id], [owner, owner.body.id], [key, key.body.key.id]] as const) {
      const location = res.headers.get('location')!;
      expect(location).toMatch(new RegExp(`^/v1/[a-z]+/${id}$`));
      const got = await kg.admin('GET', location);
      expect(got.status).toBe(200);
      expect(got.body.id).toBe(id);
      expect(got.headers.get('etag')).toMatch(/^"[^"]+"$/);
      expect(res.headers.get('etag')).toBe(got.headers.get('etag'));
    }
  });

  it('workspaces: PATCH renames; DELETE is 409 WORKSPACE_IN_USE while it holds keys, 204 once it holds none, taking its groups and owners', async () => {
    const ws = await createWorkspace(kg, 'old-name');
    const renamed = await kg.admin('PATCH', `/v1/workspaces/${ws}`, { name: 'new-name' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe('new-name');
    expect((await kg.admin('GET', `/v1/workspaces/${ws}`)).body.name).toBe('new-name');
    const { key } = await createKey(kg, { workspaceId: ws, name: 'holding' });
    expectError(await kg.admin('DELETE', `/v1/workspaces/${ws}`), 409, 'WORKSPACE_IN_USE');
    expect((await kg.admin('DELETE', `/v1/keys/${key.id}`)).status).toBe(204);
    const group = (await kg.admin('POST', '/v1/groups', { name: 'of-the-workspace', workspaceId: ws })).body;
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'of-the-workspace', workspaceId: ws })).body;
    expect((await kg.admin('DELETE', `/v1/workspaces/${ws}`)).status).toBe(204);
    expectError(await kg.admin('GET', `/v1/workspaces/${ws}`), 404, 'WORKSPACE_NOT_FOUND');
    // Its own groups and owners went with it.
    expectError(await kg.admin('GET', `/v1/groups/${group.id}`), 404, 'GROUP_NOT_FOUND');
    expectError(await kg.admin('GET', `/v1/owners/${owner.id}`), 404, 'OWNER_NOT_FOUND');
    expectError(await kg.admin('DELETE', `/v1/workspaces/${ws}`), 404, 'WORKSPACE_NOT_FOUND');
  });

  it('groups: GET one; owners: DELETE is 409 OWNER_IN_USE while keys refer to it, 204 after', async () => {
    const group = await kg.admin('POST', '/v1/groups', { name: 'readable', description: 'd' });
    const got = await kg.admin('GET', `/v1/groups/${group.body.id}`);
    expect(got.body).toEqual(group.body);
    const ws = await createWorkspace(kg, 'owners');
    const owner = (await kg.admin('POST', '/v1/owners', { name: 'referenced' })).body;
    const { key } = await createKey(kg, { workspaceId: ws, name: 'owned', ownerId: owner.id });
    expectError(await kg.admin('DELETE', `/v1/owners/${owner.id}`), 409, 'OWNER_IN_USE');
    expect((await kg.admin('PATCH', `/v1/keys/${key.id}`, { ownerId: null })).status).toBe(200);
    expect((await kg.admin('DELETE', `/v1/owners/${owner.id}`)).status).toBe(204);
    expectError(await kg.admin('GET', `/v1/owners/${owner.id}`), 404, 'OWNER_NOT_FOUND');
  });

  it.each([
    ['workspaces', { name: 'v1' }, { name: 'v2' }],
    ['groups', { name: 'v1' }, { name: 'v2' }],
    ['owners', { name: 'v1' }, { name: 'v2' }],
    ['keys', { name: 'v1' }, { name: 'v2' }],
  ] as const)('%s: If-Match with a stale ETag is 412 on PATCH and DELETE and changes nothing; the current one goes through', async (resource, create, patch) => {
    const body = resource === 'keys' ? { ...create, workspaceId: await createWorkspace(kg, 'etag') } : create;
    const made = await kg.admin('POST', `/v1/${resource}`, body);
    const id = resource === 'keys' ? made.body.key.id : made.body.id;
    const stale = made.headers.get('etag')!;
    const first = await kg.admin('PATCH', `/v1/${resource}/${id}`, patch, { 'if-match': stale });
    expect(first.status).toBe(200);
    const current = first.headers.get('etag')!;
    expect(current).not.toBe(stale);
    expectError(await kg.admin('PATCH', `/v1/${resource}/${id}`, { name: 'lost-update' }, { 'if-match': stale }), 412, 'PRECONDITION_FAILED');
    expectError(await kg.admin('DELETE', `/v1/${resource}/${id}`, undefined, { 'if-match': stale }), 412, 'PRECONDITION_FAILED');
    expectError(await kg.admin('DELETE', `/v1/${resource}/${id}`, undefined, { 'if-match': 'W/' + current }), 412, 'PRECONDITION_FAILED');
    const after = await kg.admin('GET', `/v1/${resource}/${id}`);
    expect(after.body.name).toBe('v2');
    expect(after.headers.get('etag')).toBe(current);
    expect((await kg.admin('DELETE', `/v1/${resource}/${id}`, undefined, { 'if-match': `"nope", ${current}` })).status).toBe(204);
  });

  it('every list pages with limit and cursor, each item once, in the same {items, nextCursor} shape', async () => {
    const ws = await createWorkspace(kg, 'paged');
    for (let i = 0; i < 3; i++) {
      await createWorkspace(kg, `paged-${i}`);
      await kg.admin('POST', '/v1/groups', { name: `paged-${i}` });
      await kg.admin('POST', '/v1/owners', { name: `paged-${i}` });
      await createKey(kg, { workspaceId: ws, name: `paged-${i}` });
      await makeToken({ name: `paged-${i}`, scopes: ['keys:read'] });
      await kg.admin('POST', '/v1/signing-keys/rotate');
    }
    for (const list of ['/v1/workspaces', '/v1/groups', '/v1/owners', '/v1/keys', '/v1/admin-tokens', '/v1/audit', '/v1/signing-keys', '/v1/nodes']) {
      const all = (await kg.admin('GET', `${list}?limit=500`)).body;
      expect(all.nextCursor, list).toBeNull();
      const paged = await walk(list, 2);
      expect(paged.map((x) => x.id), list).toEqual(all.items.map((x: any) => x.id));
      if (list !== '/v1/nodes') expect(paged.length, list).toBeGreaterThanOrEqual(3);
      const bad = await kg.admin('GET', `${list}?limit=0&cursor=%21`);
      expectError(bad, 400, 'BAD_REQUEST');
      expect(bad.body.error.message).toContain('limit');
    }
  });

  it('the audit log filters by actor, action, target type and id and time range, and pages through them', async () => {
    const since = new Date().toISOString();
    const { token, secret } = await makeToken({ name: 'filtered-actor', scopes: ['*'] });
    const ws = (await kg.admin('POST', '/v1/workspaces', { name: 'audited' }, as(secret))).body.id;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: `a${i}` }, as(secret))).body.key.id);
    await kg.admin('PATCH', `/v1/keys/${ids[0]}`, { name: 'changed' }, as(secret));
    const byActor = await walk(`/v1/audit?actor=${token.id}`, 2);
    expect(byActor.map((e) => e.action)).toEqual(['key.update', 'key.create', 'key.create', 'key.create', 'workspace.create']);
    expect((await walk('/v1/audit?actor=filtered-actor&action=key.create', 1)).length).toBe(3);
    expect((await walk('/v1/audit?actor=filtered-actor&action=key.*', 1)).length).toBe(4);
    expect((await walk(`/v1/audit?targetType=workspace&targetId=${ws}`, 5)).map((e) => e.action)).toEqual(['workspace.create']);
    expect((await walk(`/v1/audit?since=${encodeURIComponent(since)}&targetType=key&actor=filtered-actor`, 10)).length).toBe(4);
    expect((await walk(`/v1/audit?until=${encodeURIComponent(since)}&actor=filtered-actor`, 10))).toEqual([]);
    const bad = await kg.admin('GET', '/v1/audit?since=yesterday&targetType=planet');
    expectError(bad, 400, 'BAD_REQUEST');
    expect(bad.body.error.message).toContain('since');
    expect(bad.body.error.message).toContain('targetType');
  });

  it('a 400 names every bad field at once: an unknown permission and a bad IP together', async () => {
    const ws = await createWorkspace(kg, 'bad-fields');
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'x', permissions: ['bogus.perm'], ipAllowlist: ['010.0.0.1'] });
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.message).toContain('permissions[0]');
    expect(res.body.error.message).toContain('ipAllowlist[0]');
    const patch = await kg.admin('POST', '/v1/keys', { workspaceId: 'no-such-ws', name: '', permissions: ['nope.read'] });
    expect(patch.body.error.message).toContain('name');
    expect(patch.body.error.message).toContain('permissions[0]');
    expect(patch.body.error.message).toContain('workspaceId: unknown workspace');
  });

  it("an owner's permissions default to everything, so its keys keep their own; a key's GET shows its effective permissions", async () => {
    const ws = await createWorkspace(kg, 'owner-trap');
    const open = (await kg.admin('POST', '/v1/owners', { name: 'no-permissions-given' })).body;
    expect(open.permissions).toEqual(['*']);
    const { key } = await createKey(kg, { workspaceId: ws, name: 'k', permissions: ['events.*'], ownerId: open.id });
    expect(key.effectivePermissions).toEqual(['events.create', 'events.read']);
    const narrow = (await kg.admin('POST', '/v1/owners', { name: 'narrow', permissions: ['*.read'] })).body;
    const moved = await kg.admin('PATCH', `/v1/keys/${key.id}`, { ownerId: narrow.id });
    expect(moved.body.effectivePermissions).toEqual(['events.read']);
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.effectivePermissions).toEqual(['events.read']);
    const none = (await kg.admin('POST', '/v1/owners', { name: 'explicitly-none', permissions: [] })).body;
    expect((await kg.admin('PATCH', `/v1/keys/${key.id}`, { ownerId: none.id })).body.effectivePermissions).toEqual([]);
  });
});

describe.skipIf(!requireRedis())('admin tokens on two nodes sharing Redis', () => {
  let redis: RedisServer;
  const nodes: Keygate[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    const keyPrefix = uniquePrefix('admin-tokens');
    const config = (dir: string) => ({ ...baseConfig(dir), store: { driver: 'redis', url: redis.url, keyPrefix } });
    nodes.push(await startKeygate({ config }), await startKeygate({ config }));
  });

  afterAll(async () => {
    for (const n of nodes) await stopAndClean(n);
    await redis?.stop();
  });

  it('a token made on one node works on the other, and its revocation on one is refused on the other at once', async () => {
    const [a, b] = nodes as [Keygate, Keygate];
    const made = await a.admin('POST', '/v1/admin-tokens', { name: 'shared', scopes: ['workspaces:read'] });
    expect(made.status).toBe(201);
    expect((await b.admin('GET', '/v1/workspaces', undefined, as(made.body.secret))).status).toBe(200);
    expect((await a.admin('DELETE', `/v1/admin-tokens/${made.body.token.id}`)).status).toBe(204);
    expectError(await b.admin('GET', '/v1/workspaces', undefined, as(made.body.secret)), 401, 'UNAUTHENTICATED');
  });
});
