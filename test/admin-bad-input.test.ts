import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, expectError, listAllKeys, rawRequest, stopAndClean } from './support/admin.js';
import { ADMIN_TOKEN, startKeygate, type Keygate } from './support/keygate.js';
import { hostOf, openRaw, sendRaw } from './support/raw-http.js';
import { checkAdminResponse } from './support/openapi-check.js';

// Every bad admin request is refused with the uniform error body and changes nothing: no
// journal bytes, no audit entry, no new record.

let kg: Keygate;
let ws: string;
let keyId: string;
let profileKeyId: string;
let lockedKeyId: string;
let groupId: string;
let ownerId: string;

const MISSING_KEY = 'key_doesNotExist000000000';
const MISSING_GUID = '00000000-0000-4000-8000-000000000000';

interface Res { status: number; body: any; headers: Headers }

/** A request with full control of the headers; `auth: false` sends no Authorization header. */
async function call(method: string, path: string, opts: { body?: string; headers?: Record<string, string>; auth?: boolean } = {}): Promise<Res> {
  const headers: Record<string, string> = { ...(opts.auth === false ? {} : { authorization: `Bearer ${ADMIN_TOKEN}` }), ...opts.headers };
  const res = await fetch(kg.adminUrl + path, { method, headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  const text = await res.text();
  let body: unknown = null;
  try { body = text === '' ? null : JSON.parse(text); } catch { body = text; }
  checkAdminResponse(method, path, res.status, body, res.headers);
  return { status: res.status, body, headers: res.headers };
}

interface StoreView { journalBytes: number; auditCount: number; newestAudit: string | null; keys: string; workspaces: number; groups: string; owners: string }

async function view(): Promise<StoreView> {
  const audit = (await kg.admin('GET', '/v1/audit?limit=1000')).body.items as any[];
  return {
    journalBytes: statSync(join(kg.dataDir, 'journal.log')).size,
    auditCount: audit.length,
    newestAudit: audit[0]?.id ?? null,
    keys: JSON.stringify(await listAllKeys(kg)),
    workspaces: (await kg.admin('GET', '/v1/workspaces')).body.items.length,
    groups: JSON.stringify((await kg.admin('GET', '/v1/groups')).body.items),
    owners: JSON.stringify((await kg.admin('GET', '/v1/owners')).body.items),
  };
}

/**
 * Runs `request`, asserts the error (status, code, body shape, X-Request-Id, and that the
 * message names each of `mentions`), and that nothing in the store changed.
 */
async function expectRejected(request: () => Promise<Res>, status: number, code: string, mentions: string[] = []): Promise<Res> {
  const before = await view();
  const res = await request();
  expectError(res, status, code);
  for (const m of mentions) expect(res.body.error.message, JSON.stringify(res.body)).toContain(m);
  expect(await view()).toEqual(before);
  return res;
}

const json = (method: string, path: string, body: unknown): (() => Promise<Res>) => () => kg.admin(method, path, body);

beforeAll(async () => {
  kg = await startKeygate();
  ws = await createWorkspace(kg, 'bad-input');
  keyId = (await createKey(kg, { workspaceId: ws, name: 'target' })).key.id;
  profileKeyId = (await createKey(kg, { workspaceId: ws, name: 'profile-target', type: 'profile' })).key.id;
  lockedKeyId = (await createKey(kg, { workspaceId: ws, name: 'locked', permissions: ['events.read'], permissionsLocked: true })).key.id;
  groupId = (await kg.admin('POST', '/v1/groups', { name: 'grp' })).body.id;
  ownerId = (await kg.admin('POST', '/v1/owners', { name: 'own' })).body.id;
});

afterAll(async () => {
  await stopAndClean(kg);
});

/** Every write endpoint with a minimal valid body, for the checks that apply to all of them. */
function writeEndpoints(): Array<{ name: string; method: string; path: string; valid: Record<string, unknown> }> {
  return [
    { name: 'POST /v1/workspaces', method: 'POST', path: '/v1/workspaces', valid: { name: 'w' } },
    { name: 'POST /v1/keys', method: 'POST', path: '/v1/keys', valid: { workspaceId: ws, name: 'k' } },
    { name: 'PATCH /v1/keys/{id}', method: 'PATCH', path: `/v1/keys/${keyId}`, valid: { name: 'k' } },
    { name: 'POST /v1/keys/{id}/rotate', method: 'POST', path: `/v1/keys/${keyId}/rotate`, valid: { gracePeriodSeconds: 1 } },
    { name: 'POST /v1/groups', method: 'POST', path: '/v1/groups', valid: { name: 'g' } },
    { name: 'PATCH /v1/groups/{id}', method: 'PATCH', path: `/v1/groups/${groupId}`, valid: { name: 'g' } },
    { name: 'POST /v1/owners', method: 'POST', path: '/v1/owners', valid: { name: 'o' } },
    { name: 'PATCH /v1/owners/{id}', method: 'PATCH', path: `/v1/owners/${ownerId}`, valid: { name: 'o' } },
  ];
}

describe('malformed and mistyped bodies', () => {
  it('malformed JSON is 400 INVALID_BODY on every write endpoint', async () => {
    for (const e of writeEndpoints()) {
      for (const text of ['{"name": "x"', '{name: "x"}', "{'name':'x'}", '{"name":"x"}}', 'nul']) {
        await expectRejected(() => call(e.method, e.path, { body: text, headers: { 'content-type': 'application/json' } }), 400, 'INVALID_BODY');
      }
    }
  });

  it('a duplicate JSON key is 400 INVALID_BODY naming the key on every write endpoint, as on the gateway (regression)', async () => {
    for (const e of writeEndpoints()) {
      const [field, value] = Object.entries(e.valid).at(-1)!;
      const rest = JSON.stringify(e.valid).slice(1, -1);
      // The same name twice, the second spelled with an escape: equal once unescaped.
      const escaped = `${field.slice(0, -1)}\\u${field.charCodeAt(field.length - 1).toString(16).padStart(4, '0')}`;
      for (const text of [`{${rest},"${field}":${JSON.stringify(value)}}`, `{${rest},"${escaped}":${JSON.stringify(value)}}`]) {
        await expectRejected(() => call(e.method, e.path, { body: text, headers: { 'content-type': 'application/json' } }), 400, 'INVALID_BODY', [`duplicate key "${field}"`]);
      }
    }
    await expectRejected(() => call('POST', '/v1/keys', {
      body: `{"workspaceId":"${ws}","name":"k","rateLimit":{"limit":1,"windowSeconds":1,"limit":1000}}`,
      headers: { 'content-type': 'application/json' },
    }), 400, 'INVALID_BODY', ['duplicate key "limit"']);
  });

  it('a body that is not valid UTF-8 is 400 INVALID_BODY', async () => {
    await expectRejected(
      () => rawRequest(kg.adminUrl + '/v1/workspaces', {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
      }).then((r) => ({ status: r.status, body: r.body, headers: new Headers(r.headers as Record<string, string>) })),
      400, 'INVALID_BODY',
    );
  });

  it('a JSON body that is not an object is 400 BAD_REQUEST on every create', async () => {
    for (const e of writeEndpoints().filter((x) => x.method === 'POST' && !x.path.endsWith('/rotate'))) {
      for (const body of ['[]', '"name"', '42', 'true']) {
        await expectRejected(() => call(e.method, e.path, { body, headers: { 'content-type': 'application/json' } }), 400, 'BAD_REQUEST');
      }
    }
  });

  it('name: 5 (wrong type) is 400 BAD_REQUEST naming name on every endpoint that takes a name', async () => {
    for (const e of writeEndpoints().filter((x) => 'name' in x.valid)) {
      await expectRejected(json(e.method, e.path, { ...e.valid, name: 5 }), 400, 'BAD_REQUEST', ['name']);
    }
  });

  it('other wrong types are 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ workspaceId: ws, name: 'k', permissions: 'events.read' }, 'permissions'],
      [{ workspaceId: ws, name: 'k', ipAllowlist: '10.0.0.0/8' }, 'ipAllowlist'],
      [{ workspaceId: ws, name: 'k', basicAuth: 'yes' }, 'basicAuth'],
      [{ workspaceId: ws, name: 'k', enabled: 1 }, 'enabled'],
      [{ workspaceId: ws, name: 'k', simpleAuth: true }, 'simpleAuth'],
      [{ workspaceId: ws, name: 'k', rateLimit: 100 }, 'rateLimit'],
      [{ workspaceId: ws, name: 'k', expiresAt: 12345 }, 'expiresAt'],
      [{ workspaceId: ws, name: 'k', expiresAt: 'tomorrow' }, 'expiresAt'],
      [{ workspaceId: ws, name: 'k', type: 'admin' }, 'type'],
      [{ workspaceId: ws, name: 'k', environment: 'prod' }, 'environment'],
      [{ workspaceId: 7, name: 'k' }, 'workspaceId'],
      [{ name: 'k' }, 'workspaceId'],
      [{ workspaceId: ws }, 'name'],
    ];
    for (const [body, field] of cases) await expectRejected(json('POST', '/v1/keys', body), 400, 'BAD_REQUEST', [field]);
    await expectRejected(json('POST', '/v1/owners', { name: 'o', status: 'gone' }), 400, 'BAD_REQUEST', ['status']);
    await expectRejected(json('PATCH', `/v1/owners/${ownerId}`, { status: 'suspended' }), 400, 'BAD_REQUEST', ['status']);
    await expectRejected(json('POST', '/v1/workspaces', {}), 400, 'BAD_REQUEST', ['name']);
    await expectRejected(json('POST', '/v1/workspaces', { name: '' }), 400, 'BAD_REQUEST', ['name']);
  });
});

describe('unknown and read-only fields', () => {
  it('an unknown field is a 400 whose message names it, on every write endpoint', async () => {
    for (const e of writeEndpoints()) {
      const res = await expectRejected(json(e.method, e.path, { ...e.valid, bogusField: 1 }), 400, 'BAD_REQUEST', ['bogusField']);
      expect(res.body.error.message, e.name).toContain('bogusField');
    }
  });

  it('__proto__ and constructor are unknown fields like any other, on create and PATCH', async () => {
    const raw = (method: string, path: string, text: string) => () => call(method, path, { body: text, headers: { 'content-type': 'application/json' } });
    await expectRejected(raw('POST', '/v1/keys', `{"workspaceId":"${ws}","name":"k","__proto__":{"enabled":false}}`), 400, 'BAD_REQUEST', ['__proto__']);
    await expectRejected(raw('POST', '/v1/keys', `{"workspaceId":"${ws}","name":"k","constructor":{"prototype":{}}}`), 400, 'BAD_REQUEST', ['constructor']);
    await expectRejected(raw('PATCH', `/v1/keys/${keyId}`, '{"__proto__":{"permissionsLocked":true}}'), 400, 'BAD_REQUEST', ['__proto__']);
    await expectRejected(raw('POST', '/v1/workspaces', '{"name":"w","__proto__":null}'), 400, 'BAD_REQUEST', ['__proto__']);
  });

  it('an unknown field inside a nested object is named with its path', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', rateLimit: { limit: 1, windowSeconds: 1, burst: 5 } }), 400, 'BAD_REQUEST', ['rateLimit.burst']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { quota: { limit: 1, period: 'day', rollover: true } }), 400, 'BAD_REQUEST', ['quota.rollover']);
    await expectRejected(json('PATCH', `/v1/keys/${profileKeyId}`, { simpleAuth: { enabled: true, salt: 'mine' } }), 400, 'BAD_REQUEST', ['simpleAuth.salt']);
  });

  it('PATCH with read-only fields (id, type, version, …) is 400 naming the field', async () => {
    const readOnly: Record<string, unknown> = {
      id: 'key_other', type: 'profile', version: 7, workspaceId: MISSING_GUID, environment: 'test', prefix: 'kg_live_abcd',
      status: 'active', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), lastUsedAt: null,
      secret: 'kg_live_x', secretHash: 'x',
    };
    for (const [field, value] of Object.entries(readOnly)) {
      await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { [field]: value }), 400, 'BAD_REQUEST', [field]);
      await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { name: 'fine', [field]: value }), 400, 'BAD_REQUEST', [field]);
    }
    await expectRejected(json('PATCH', `/v1/groups/${groupId}`, { id: 'grp_x' }), 400, 'BAD_REQUEST', ['id']);
    await expectRejected(json('PATCH', `/v1/owners/${ownerId}`, { version: 9 }), 400, 'BAD_REQUEST', ['version']);
  });
});

describe('lengths', () => {
  const long = (n: number): string => 'x'.repeat(n);

  it('name over 200 characters is 400 naming name on every endpoint that takes a name', async () => {
    for (const e of writeEndpoints().filter((x) => 'name' in x.valid)) {
      await expectRejected(json(e.method, e.path, { ...e.valid, name: long(201) }), 400, 'BAD_REQUEST', ['name']);
    }
  });

  it('description over 2000 characters is 400 naming description', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', description: long(2001) }), 400, 'BAD_REQUEST', ['description']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { description: long(2001) }), 400, 'BAD_REQUEST', ['description']);
    await expectRejected(json('POST', '/v1/groups', { name: 'g', description: long(2001) }), 400, 'BAD_REQUEST', ['description']);
    await expectRejected(json('PATCH', `/v1/groups/${groupId}`, { description: long(2001) }), 400, 'BAD_REQUEST', ['description']);
  });
});

describe('policy fields', () => {
  const BAD_CIDRS = ['010.0.0.1', '10.1', '10.0.0.0/33', '::/129', 'fe80::1%eth0'];

  for (const cidr of BAD_CIDRS) {
    it(`ipAllowlist entry ${JSON.stringify(cidr)} is 400 naming ipAllowlist[0] on create and on PATCH`, async () => {
      await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', ipAllowlist: [cidr] }), 400, 'BAD_REQUEST', ['ipAllowlist[0]']);
      await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { ipAllowlist: [cidr] }), 400, 'BAD_REQUEST', ['ipAllowlist[0]']);
      await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { ipAllowlist: ['10.0.0.0/8', cidr] }), 400, 'BAD_REQUEST', ['ipAllowlist[1]']);
    });
  }

  it('more malformed CIDRs are refused too', async () => {
    for (const cidr of ['', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/08', '256.0.0.1', '1.2.3.4.5', ' 10.0.0.1', 'localhost', '0x0a.0.0.1', '2001:db8::/3x', ':::1']) {
      await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', ipAllowlist: [cidr] }), 400, 'BAD_REQUEST', ['ipAllowlist[0]']);
    }
  });

  it('an unknown permission is 400 naming permissions[i] on keys and owners', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', permissions: ['events.delete'] }), 400, 'BAD_REQUEST', ['permissions[0]', 'events.delete']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', permissions: ['events.read', 'billing.*'] }), 400, 'BAD_REQUEST', ['permissions[1]']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', permissions: ['Events.Read'] }), 400, 'BAD_REQUEST', ['permissions[0]']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { permissions: ['nope.nope'] }), 400, 'BAD_REQUEST', ['permissions[0]']);
    await expectRejected(json('POST', '/v1/owners', { name: 'o', permissions: ['nope.nope'] }), 400, 'BAD_REQUEST', ['permissions[0]']);
    await expectRejected(json('PATCH', `/v1/owners/${ownerId}`, { permissions: ['events.read', 'nope.nope'] }), 400, 'BAD_REQUEST', ['permissions[1]']);
  });

  it('an unknown preset, or a preset together with permissions, is 400 naming preset', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', preset: 'superuser' }), 400, 'BAD_REQUEST', ['preset']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', preset: 'read-only', permissions: ['events.read'] }), 400, 'BAD_REQUEST', ['preset']);
  });

  it('basicAuth on a profile key is 400 naming basicAuth (create and PATCH)', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', type: 'profile', basicAuth: true }), 400, 'BAD_REQUEST', ['basicAuth']);
    await expectRejected(json('PATCH', `/v1/keys/${profileKeyId}`, { basicAuth: true }), 400, 'BAD_REQUEST', ['basicAuth']);
  });

  it('negative rate-limit and quota limits are 400 naming the field', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', rateLimit: { limit: -1, windowSeconds: 1 } }), 400, 'BAD_REQUEST', ['rateLimit.limit']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', rateLimit: { limit: 1, windowSeconds: -5 } }), 400, 'BAD_REQUEST', ['rateLimit.windowSeconds']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', quota: { limit: -100, period: 'month' } }), 400, 'BAD_REQUEST', ['quota.limit']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { rateLimit: { limit: -1, windowSeconds: 1 } }), 400, 'BAD_REQUEST', ['rateLimit.limit']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { quota: { limit: -1, period: 'day' } }), 400, 'BAD_REQUEST', ['quota.limit']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { quota: { limit: 5, period: 'week' } }), 400, 'BAD_REQUEST', ['quota.period']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { rateLimit: { limit: 1.5, windowSeconds: 1 } }), 400, 'BAD_REQUEST', ['rateLimit.limit']);
  });

  it('expiresAt in the past is 400 naming expiresAt (create and PATCH)', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', expiresAt: past }), 400, 'BAD_REQUEST', ['expiresAt']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', expiresAt: '2001-01-01T00:00:00Z' }), 400, 'BAD_REQUEST', ['expiresAt']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { expiresAt: past }), 400, 'BAD_REQUEST', ['expiresAt']);
  });

  it('an unknown workspaceId on create is 400 naming workspaceId', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: MISSING_GUID, name: 'k' }), 400, 'BAD_REQUEST', ['workspaceId']);
  });

  it('an unknown groupId or ownerId is 400 naming the field (create and PATCH)', async () => {
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', groupId: 'grp_missing' }), 400, 'BAD_REQUEST', ['groupId']);
    await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 'k', ownerId: 'own_missing' }), 400, 'BAD_REQUEST', ['ownerId']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { groupId: 'grp_missing' }), 400, 'BAD_REQUEST', ['groupId']);
    await expectRejected(json('PATCH', `/v1/keys/${keyId}`, { ownerId: 'own_missing' }), 400, 'BAD_REQUEST', ['ownerId']);
  });

  it('a bad request reports every bad field, not only the first', async () => {
    const res = await expectRejected(json('POST', '/v1/keys', { workspaceId: ws, name: 5, ipAllowlist: ['10.1'], bogus: true }), 400, 'BAD_REQUEST');
    for (const m of ['name', 'ipAllowlist[0]', 'bogus']) expect(res.body.error.message).toContain(m);
  });

  it('a bad gracePeriodSeconds on rotate is 400 naming it, and the key is not rotated', async () => {
    await expectRejected(json('POST', `/v1/keys/${keyId}/rotate`, { gracePeriodSeconds: -1 }), 400, 'BAD_REQUEST', ['gracePeriodSeconds']);
    await expectRejected(json('POST', `/v1/keys/${keyId}/rotate`, { gracePeriodSeconds: 'soon' }), 400, 'BAD_REQUEST', ['gracePeriodSeconds']);
    await expectRejected(json('POST', `/v1/keys/${keyId}/rotate`, { gracePeriodSeconds: 1.5 }), 400, 'BAD_REQUEST', ['gracePeriodSeconds']);
  });

  it('changing locked permissions is 409 PERMISSIONS_LOCKED and writes nothing', async () => {
    await expectRejected(json('PATCH', `/v1/keys/${lockedKeyId}`, { permissions: ['events.create'] }), 409, 'PERMISSIONS_LOCKED');
    await expectRejected(json('PATCH', `/v1/keys/${lockedKeyId}`, { name: 'renamed', permissions: ['*'] }), 409, 'PERMISSIONS_LOCKED');
  });
});

describe('query parameters', () => {
  it('bad /v1/keys query parameters are 400 naming the parameter', async () => {
    const cases: Array<[string, string]> = [
      ['type=foo', 'type'], ['limit=0', 'limit'], ['limit=abc', 'limit'], ['limit=-1', 'limit'], ['limit=1.5', 'limit'],
      ['limit=100000', 'limit'], ['status=gone', 'status'], ['environment=prod', 'environment'], ['bogus=1', 'bogus'],
      ['type=workspace&type=profile', 'type'],
    ];
    for (const [qs, field] of cases) await expectRejected(() => kg.admin('GET', `/v1/keys?${qs}`), 400, 'BAD_REQUEST', [field]);
  });

  it('bad /v1/audit query parameters are 400 naming the parameter', async () => {
    for (const [qs, field] of [['limit=0', 'limit'], ['limit=abc', 'limit'], ['bogus=1', 'bogus']] as const) {
      await expectRejected(() => kg.admin('GET', `/v1/audit?${qs}`), 400, 'BAD_REQUEST', [field]);
    }
  });
});

describe('unknown ids', () => {
  it('unknown key ids are 404 KEY_NOT_FOUND on GET, PATCH, DELETE, rotate and usage', async () => {
    await expectRejected(() => kg.admin('GET', `/v1/keys/${MISSING_KEY}`), 404, 'KEY_NOT_FOUND');
    await expectRejected(json('PATCH', `/v1/keys/${MISSING_KEY}`, { name: 'x' }), 404, 'KEY_NOT_FOUND');
    await expectRejected(() => kg.admin('DELETE', `/v1/keys/${MISSING_KEY}`), 404, 'KEY_NOT_FOUND');
    await expectRejected(json('POST', `/v1/keys/${MISSING_KEY}/rotate`, {}), 404, 'KEY_NOT_FOUND');
    await expectRejected(() => kg.admin('GET', `/v1/keys/${MISSING_KEY}/usage`), 404, 'KEY_NOT_FOUND');
    // An id in another kind's format, or one with odd characters, is just as unknown.
    await expectRejected(() => kg.admin('GET', `/v1/keys/${groupId}`), 404, 'KEY_NOT_FOUND');
    await expectRejected(() => kg.admin('GET', `/v1/keys/${encodeURIComponent('key_ü/..')}`), 404, 'KEY_NOT_FOUND');
  });

  it('unknown group ids are 404 GROUP_NOT_FOUND on PATCH and DELETE', async () => {
    await expectRejected(json('PATCH', '/v1/groups/grp_missing', { name: 'x' }), 404, 'GROUP_NOT_FOUND');
    await expectRejected(() => kg.admin('DELETE', '/v1/groups/grp_missing'), 404, 'GROUP_NOT_FOUND');
  });

  it('unknown owner ids are 404 OWNER_NOT_FOUND on PATCH', async () => {
    await expectRejected(json('PATCH', '/v1/owners/own_missing', { status: 'disabled' }), 404, 'OWNER_NOT_FOUND');
  });

  it('unknown workspace ids are 404 WORKSPACE_NOT_FOUND on GET', async () => {
    await expectRejected(() => kg.admin('GET', `/v1/workspaces/${MISSING_GUID}`), 404, 'WORKSPACE_NOT_FOUND');
    await expectRejected(() => kg.admin('GET', '/v1/workspaces/not-a-guid'), 404, 'WORKSPACE_NOT_FOUND');
  });

  it('an unknown /v1 path is 404 with the error body', async () => {
    await expectRejected(() => kg.admin('GET', '/v1/nope'), 404, 'NOT_FOUND');
    await expectRejected(() => kg.admin('GET', '/v1/keys/a/b/c'), 404, 'NOT_FOUND');
  });
});

describe('body size and content type', () => {
  /** Valid JSON for a workspace create, padded with whitespace to `size` bytes. */
  const paddedWorkspace = (size: number): Buffer => {
    const head = '{"name":"too-big"';
    return Buffer.from(head + ' '.repeat(size - head.length - 1) + '}');
  };
  const toRes = (r: Awaited<ReturnType<typeof rawRequest>>): Res => ({ status: r.status, body: r.body, headers: new Headers(r.headers as Record<string, string>) });

  it('a body over 1 MiB with a Content-Length is 413 BODY_TOO_LARGE and nothing is written', async () => {
    const body = paddedWorkspace(1024 * 1024 + 1);
    expect(() => JSON.parse(body.toString()) as unknown).not.toThrow();
    await expectRejected(() => rawRequest(kg.adminUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'content-length': String(body.length) },
      body,
    }).then(toRes), 413, 'BODY_TOO_LARGE');
    await expectRejected(() => call('POST', '/v1/keys', { body: JSON.stringify({ workspaceId: ws, name: 'k', description: 'x'.repeat(1024 * 1024) }), headers: { 'content-type': 'application/json' } }), 413, 'BODY_TOO_LARGE');
  });

  it('a body over 1 MiB sent chunked (no Content-Length) is 413 BODY_TOO_LARGE and nothing is written', async () => {
    const body = paddedWorkspace(1024 * 1024 + 64 * 1024);
    await expectRejected(() => rawRequest(kg.adminUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body,
      chunked: true,
    }).then(toRes), 413, 'BODY_TOO_LARGE');
    await expectRejected(() => rawRequest(kg.adminUrl + `/v1/keys/${keyId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ description: 'y'.repeat(1024 * 1024 + 10) })),
      chunked: true,
    }).then(toRes), 413, 'BODY_TOO_LARGE');
  });

  it('a body of exactly 1 MiB is not refused as too large', async () => {
    const body = paddedWorkspace(1024 * 1024);
    const res = await rawRequest(kg.adminUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body,
      chunked: true,
    });
    expect(res.status, res.text).toBe(201);
  });

  it('a non-JSON content type is 415 on every write endpoint', async () => {
    for (const e of writeEndpoints()) {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data; boundary=x']) {
        await expectRejected(() => call(e.method, e.path, { body: JSON.stringify(e.valid), headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      }
    }
  });

  it('a JSON body without any content type is 415', async () => {
    await expectRejected(() => rawRequest(kg.adminUrl + '/v1/workspaces', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ name: 'untyped' }),
    }).then(toRes), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('application/json with a charset, and +json types, are accepted', async () => {
    const a = await call('POST', '/v1/workspaces', { body: JSON.stringify({ name: 'charset' }), headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(a.status).toBe(201);
    const b = await call('POST', '/v1/workspaces', { body: JSON.stringify({ name: 'plus-json' }), headers: { 'content-type': 'application/merge-patch+json' } });
    expect(b.status).toBe(201);
  });
});

describe('authentication', () => {
  /** Every /v1 route, with a body where it takes one. */
  const routes = (): Array<[string, string, unknown?]> => [
    ['GET', '/v1/workspaces'], ['POST', '/v1/workspaces', { name: 'w' }], ['GET', `/v1/workspaces/${ws}`],
    ['GET', '/v1/keys'], ['POST', '/v1/keys', { workspaceId: ws, name: 'k' }], ['GET', `/v1/keys/${keyId}`],
    ['PATCH', `/v1/keys/${keyId}`, { name: 'x' }], ['POST', `/v1/keys/${keyId}/rotate`, {}], ['DELETE', `/v1/keys/${keyId}`],
    ['GET', `/v1/keys/${keyId}/usage`],
    ['GET', '/v1/groups'], ['POST', '/v1/groups', { name: 'g' }], ['PATCH', `/v1/groups/${groupId}`, { name: 'g' }], ['DELETE', `/v1/groups/${groupId}`],
    ['GET', '/v1/owners'], ['POST', '/v1/owners', { name: 'o' }], ['PATCH', `/v1/owners/${ownerId}`, { status: 'disabled' }],
    ['GET', '/v1/permissions'], ['GET', '/v1/audit'], ['GET', '/v1/nodes'],
    ['GET', '/v1/no-such-thing'], ['PUT', '/v1/keys'],
  ];

  it('a missing admin token is 401 UNAUTHENTICATED on every /v1 route, and nothing is written', async () => {
    for (const [method, path, body] of routes()) {
      await expectRejected(() => call(method, path, {
        auth: false,
        ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      }), 401, 'UNAUTHENTICATED');
    }
  });

  it('a wrong admin token is 401 UNAUTHENTICATED on every /v1 route, and nothing is written', async () => {
    const wrong = [
      'Bearer wrong-token-0123456789', `Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.slice(0, -1)}`,
      ADMIN_TOKEN, `Basic ${Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')}`, 'Bearer ', '',
    ];
    for (const [method, path, body] of routes()) {
      for (const authorization of wrong) {
        await expectRejected(() => call(method, path, {
          auth: false,
          headers: { authorization, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        }), 401, 'UNAUTHENTICATED');
      }
    }
  });

  it('the admin token is accepted whatever the case of the Bearer scheme name, as on the gateway (regression)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      const res = await call('GET', '/v1/workspaces', { auth: false, headers: { authorization: `${scheme} ${ADMIN_TOKEN}` } });
      expect(res.status, scheme).toBe(200);
      expect(Array.isArray(res.body.items)).toBe(true);
    }
  });

  it('the admin token in X-Api-Key instead of Authorization is 401', async () => {
    await expectRejected(() => call('GET', '/v1/keys', { auth: false, headers: { 'x-api-key': ADMIN_TOKEN } }), 401, 'UNAUTHENTICATED');
  });

  it('/healthz, /readyz and /metrics need no auth', async () => {
    const health = await call('GET', '/healthz', { auth: false });
    expect(health.status).toBe(200);
    const ready = await call('GET', '/readyz', { auth: false });
    expect(ready.status).toBe(200);
    const metrics = await call('GET', '/metrics', { auth: false });
    expect(metrics.status).toBe(200);
    // A wrong token does not turn them into 401s either.
    expect((await call('GET', '/healthz', { auth: false, headers: { authorization: 'Bearer nope' } })).status).toBe(200);
  });

  it('/metrics is Prometheus text with keygate_admin_requests_total and process metrics', async () => {
    const res = await fetch(`${kg.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE keygate_admin_requests_total counter$/m);
    expect(text).toMatch(/^keygate_admin_requests_total\{[^}]*\} \d+/m);
    expect(text).toMatch(/^(keygate_)?process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^(keygate_)?process_resident_memory_bytes \d/m);
    // Every sample line is `name{labels} value`; no key id ever becomes a label.
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? ([-+0-9.eE]+|nan|[+-]inf)( -?\d+)?$/i);
    }
    expect(text).not.toContain(keyId);
  });
});

describe('methods and error shape', () => {
  it('a wrong method on a known /v1 path is 405 METHOD_NOT_ALLOWED with an Allow header', async () => {
    const cases: Array<[string, string, string[]]> = [
      ['PUT', '/v1/keys', ['GET', 'POST']],
      ['DELETE', '/v1/keys', ['GET', 'POST']],
      ['PUT', `/v1/keys/${keyId}`, ['GET', 'PATCH', 'DELETE']],
      ['POST', `/v1/keys/${keyId}`, ['GET', 'PATCH', 'DELETE']],
      ['GET', `/v1/keys/${keyId}/rotate`, ['POST']],
      ['POST', `/v1/workspaces/${ws}`, ['GET', 'PATCH', 'DELETE']],
      ['PATCH', '/v1/workspaces', ['GET', 'POST']],
      ['PUT', `/v1/groups/${groupId}`, ['GET', 'PATCH', 'DELETE']],
      ['POST', `/v1/owners/${ownerId}`, ['GET', 'PATCH', 'DELETE']],
      ['PATCH', '/v1/admin-tokens', ['POST', 'GET']],
      ['POST', '/v1/permissions', ['GET']],
      ['DELETE', '/v1/audit', ['GET']],
    ];
    for (const [method, path, allowed] of cases) {
      const res = await expectRejected(() => call(method, path), 405, 'METHOD_NOT_ALLOWED');
      const allow = (res.headers.get('allow') ?? '').split(',').map((s) => s.trim());
      for (const m of allowed) expect(allow, `${method} ${path}`).toContain(m);
    }
  });

  it('a wrong method on /healthz, /readyz or /metrics is 405', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await call('POST', path, { auth: false });
      expectError(res, 405, 'METHOD_NOT_ALLOWED');
    }
  });

  it('every error carries a distinct request id that matches its X-Request-Id header', async () => {
    const a = await kg.admin('GET', `/v1/keys/${MISSING_KEY}`);
    const b = await kg.admin('GET', `/v1/keys/${MISSING_KEY}`);
    expectError(a, 404, 'KEY_NOT_FOUND');
    expectError(b, 404, 'KEY_NOT_FOUND');
    expect(a.body.error.requestId).not.toBe(b.body.error.requestId);
    // Successful responses carry an X-Request-Id too.
    const ok = await kg.admin('GET', '/v1/keys');
    expect(ok.headers.get('x-request-id')).toBeTruthy();
  });
});

describe('boundaries that are accepted', () => {
  it('name of exactly 200 and description of exactly 2000 characters are accepted', async () => {
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'n'.repeat(200), description: 'd'.repeat(2000) });
    expect(res.status).toBe(201);
    expect(res.body.key.name).toHaveLength(200);
    expect(res.body.key.description).toHaveLength(2000);
  });

  it('the valid forms of the CIDRs that were refused are accepted', async () => {
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'cidrs', ipAllowlist: ['10.0.0.1', '10.1.0.0/16', '10.0.0.0/32', '::/128', 'fe80::1', '2001:db8::/32', '0.0.0.0/0'] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });

  it('rateLimit and quota limits of 0 are accepted', async () => {
    const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: 'zero', rateLimit: { limit: 0, windowSeconds: 1 }, quota: { limit: 0, period: 'day' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  });
});

describe('the Host header', () => {
  it('an HTTP/1.1 request without Host is 400 BAD_REQUEST with the error body and X-Request-Id, as on the gateway, and nothing is written (regression)', async () => {
    const body = JSON.stringify({ name: 'no-host-workspace' });
    for (const head of [
      `POST /v1/workspaces HTTP/1.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      'GET /healthz HTTP/1.1\r\n\r\n',
    ]) {
      const res = await expectRejected(async () => {
        const r = await sendRaw(kg.adminUrl, head);
        return { status: r.status, body: r.json, headers: new Headers(r.headers) };
      }, 400, 'BAD_REQUEST', ['Host']);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });

  it('two Host headers are 400 BAD_REQUEST with the error body, as on the gateway, and nothing is written (regression: the admin port took the first)', async () => {
    const name = `two-hosts-${Date.now()}`;
    const body = JSON.stringify({ name });
    const host = new URL(kg.adminUrl).host;
    const res = await expectRejected(async () => {
      const r = await sendRaw(kg.adminUrl, `POST /v1/workspaces HTTP/1.1\r\nHost: ${host}\r\nHost: other.example\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return { status: r.status, body: r.json, headers: new Headers(r.headers) };
    }, 400, 'BAD_REQUEST', ['Host']);
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('an HTTP/1.0 request needs no Host', async () => {
    const res = await sendRaw(kg.adminUrl, 'GET /healthz HTTP/1.0\r\n\r\n');
    expect(res.status, res.text).toBe(200);
  });
});

describe('slow requests', () => {
  it('request headers trickled past the admin port\'s 10 s header timeout are answered 408 REQUEST_TIMEOUT, not 400, and the connection closed (regression)', async () => {
    const conn = await openRaw(kg.adminUrl);
    let timer: NodeJS.Timeout | undefined;
    try {
      const t0 = Date.now();
      conn.write('GET /v1/workspaces HTTP/1.1\r\n');
      const rest = `Host: ${hostOf(kg.adminUrl)}\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nX-Pad: ${'p'.repeat(200)}\r\n\r\n`;
      let sent = 0;
      timer = setInterval(() => {
        if (sent < rest.length) conn.write(rest[sent++]!);
      }, 100);
      const res = await conn.response(15_000);
      const elapsed = Date.now() - t0;
      expect(sent, 'the headers were still arriving').toBeLessThan(rest.length);
      expect(elapsed).toBeGreaterThanOrEqual(9_900);
      expect(elapsed).toBeLessThan(12_500);
      expectError({ status: res.status, body: res.json, headers: res.headers }, 408, 'REQUEST_TIMEOUT');
      expect(res.headers.connection).toBe('close');
    } finally {
      clearInterval(timer);
      conn.close();
    }
  }, 20_000);

  it('a body trickled past the admin port\'s 30 s request timeout is answered 408 REQUEST_TIMEOUT and nothing is written (regression)', async () => {
    const body = JSON.stringify({ name: 'slow-body-workspace' });
    let elapsed = 0;
    let sent = 0;
    const res = await expectRejected(async () => {
      const conn = await openRaw(kg.adminUrl);
      let timer: NodeJS.Timeout | undefined;
      try {
        const t0 = Date.now();
        conn.write(`POST /v1/workspaces HTTP/1.1\r\nHost: ${hostOf(kg.adminUrl)}\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
        timer = setInterval(() => {
          if (sent < body.length) conn.write(body[sent++]!);
        }, 2_000);
        const r = await conn.response(40_000);
        elapsed = Date.now() - t0;
        expect(r.headers.connection).toBe('close');
        return { status: r.status, body: r.json, headers: new Headers(r.headers) };
      } finally {
        clearInterval(timer);
        conn.close();
      }
    }, 408, 'REQUEST_TIMEOUT');
    expect(sent, 'the body was still arriving').toBeLessThan(body.length);
    expect(elapsed).toBeGreaterThanOrEqual(29_900);
    expect(elapsed).toBeLessThan(32_500);
    expect(res.body.error.message).toMatch(/30 s/);
  }, 60_000);
});
