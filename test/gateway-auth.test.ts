import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../src/domain/secret.js';
import { createKey, createWorkspace, sleep, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, metricSum, pollUntil, scrape } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, sendRaw } from './support/raw-http.js';
import { headerValue, headerValues, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let kg: Keygate;
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
const pair = useUpstreamPair();
let ws: string;
let otherWs: string;
let ups: RecordingUpstream[];

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
const withKey = (secret: string): Record<string, string> => ({ 'x-api-key': secret });

/** Replaces the character at `index` with a different base62 character. */
function mutate(secret: string, index: number): string {
  const c = secret[index]!;
  const replacement = c === 'A' ? 'B' : 'A';
  return secret.slice(0, index) + replacement + secret.slice(index + 1);
}

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  ups = pair.all;
  kg = await startKeygate({ config: gatewayConfig({ events, eventsTest }) });
  ws = await createWorkspace(kg, 'auth');
  otherWs = await createWorkspace(kg, 'other');
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('Basic authentication', () => {
  let basicKey: { key: any; secret: string };
  let plainKey: { key: any; secret: string };
  let profileKey: { key: any; secret: string };
  /** The 401 an unknown (well-formed) secret gets, to compare other refusals with. */
  let unknown401: { code: string; message: string };

  beforeAll(async () => {
    basicKey = await createKey(kg, { workspaceId: ws, name: 'basic', permissions: ['*'], basicAuth: true });
    plainKey = await createKey(kg, { workspaceId: ws, name: 'no-basic', permissions: ['*'], basicAuth: false });
    profileKey = await createKey(kg, { workspaceId: ws, name: 'profile', type: 'profile', permissions: ['*'] });
    const res = await gw(kg, '/v1/events', { headers: { authorization: basic(ws, generateSecret('live').secret) } });
    expect(res.status).toBe(401);
    unknown401 = { code: res.body.error.code, message: res.body.error.message };
  });

  it('accepts Basic base64(<workspace GUID>:<secret>) for a workspace key with basicAuth: true, and does not forward the Authorization header', async () => {
    const res = await gw(kg, '/v1/events?via=basic', { headers: { authorization: basic(ws, basicKey.secret) } });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValue(h, 'x-keygate-key-id')).toBe(basicKey.key.id);
    expect(headerValues(h, 'authorization')).toEqual([]);
    expect(events.requests[0]!.url).toBe('/v1/events?via=basic');
  });

  it('refuses Basic with 401 UNAUTHENTICATED for a key with basicAuth: false', async () => {
    const res = await gw(kg, '/v1/events', { headers: { authorization: basic(ws, plainKey.secret) } });
    await expectRefused(res, 401, 'UNAUTHENTICATED', ups);
    // The same key works with X-Api-Key: the refusal is about Basic, not the key.
    expect((await gw(kg, '/v1/events', { headers: withKey(plainKey.secret) })).status).toBe(200);
  });

  it('refuses Basic with 401 UNAUTHENTICATED for a profile key', async () => {
    const res = await gw(kg, '/v1/events', { headers: { authorization: basic(ws, profileKey.secret) } });
    await expectRefused(res, 401, 'UNAUTHENTICATED', ups);
  });

  it("refuses Basic with another workspace's GUID with a 401 identical in code and message to an unknown key's", async () => {
    const res = await gw(kg, '/v1/events', { headers: { authorization: basic(otherWs, basicKey.secret) } });
    await expectRefused(res, 401, 'UNAUTHENTICATED', ups);
    expect({ code: res.body.error.code, message: res.body.error.message }).toEqual(unknown401);
  });

  it('refuses Basic with an empty user (":<secret>") with 401', async () => {
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: basic('', basicKey.secret) } }), 401, 'UNAUTHENTICATED', ups);
  });

  it('refuses Basic with an empty password ("<GUID>:") with 401', async () => {
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: basic(ws, '') } }), 401, 'UNAUTHENTICATED', ups);
  });

  it('refuses Basic with a colon in the password ("<GUID>:<secret>:x") with 401', async () => {
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: basic(ws, `${basicKey.secret}:x`) } }), 401, 'UNAUTHENTICATED', ups);
  });

  it('refuses Basic whose base64 has invalid characters (which a lenient decoder would skip) with 401', async () => {
    const good = Buffer.from(`${ws}:${basicKey.secret}`).toString('base64');
    const bad = `${good.slice(0, 8)}****${good.slice(8)}`;
    expect(Buffer.from(bad, 'base64').toString()).toBe(`${ws}:${basicKey.secret}`);
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: `Basic ${bad}` } }), 401, 'UNAUTHENTICATED', ups);
  });

  it('refuses Basic that decodes to invalid UTF-8 with 401', async () => {
    const bytes = Buffer.concat([Buffer.from(`${ws}:`), Buffer.from([0xc3, 0x28]), Buffer.from(basicKey.secret)]);
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: `Basic ${bytes.toString('base64')}` } }), 401, 'UNAUTHENTICATED', ups);
    const userBytes = Buffer.concat([Buffer.from(ws.slice(0, -1)), Buffer.from([0xff]), Buffer.from(`:${basicKey.secret}`)]);
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: `Basic ${userBytes.toString('base64')}` } }), 401, 'UNAUTHENTICATED', ups);
  });
});

describe('credentials', () => {
  let key: { key: any; secret: string };
  beforeAll(async () => {
    key = await createKey(kg, { workspaceId: ws, name: 'cred', permissions: ['*'], basicAuth: true });
  });

  it('answers 401 UNAUTHENTICATED without any credential', async () => {
    await expectRefused(await gw(kg, '/v1/events'), 401, 'UNAUTHENTICATED', ups);
  });

  it('answers 401 UNAUTHENTICATED for an empty X-Api-Key', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', '']]));
    await expectRefused({ ...res, body: res.json }, 401, 'UNAUTHENTICATED', ups);
  });

  it('accepts the Bearer scheme in any case (RFC 9110: auth schemes are case-insensitive)', async () => {
    expect((await gw(kg, '/v1/events', { headers: { authorization: `bearer ${key.secret}` } })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: { authorization: `BEARER ${key.secret}` } })).status).toBe(200);
  });

  it('answers 401 UNAUTHENTICATED for an empty Bearer token and an unknown Authorization scheme', async () => {
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: 'Bearer ' } }), 401, 'UNAUTHENTICATED', ups);
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: `Token ${key.secret}` } }), 401, 'UNAUTHENTICATED', ups);
  });

  it('answers 400 AMBIGUOUS_CREDENTIALS for two X-Api-Key headers, even carrying the same valid secret', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', key.secret], ['x-api-key', key.secret],
    ]));
    await expectRefused({ ...res, body: res.json }, 400, 'AMBIGUOUS_CREDENTIALS', ups);
  });

  it('answers 400 AMBIGUOUS_CREDENTIALS for X-Api-Key together with Basic', async () => {
    const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': key.secret, authorization: basic(ws, key.secret) } });
    await expectRefused(res, 400, 'AMBIGUOUS_CREDENTIALS', ups);
  });

  it('answers 400 AMBIGUOUS_CREDENTIALS for X-Api-Key together with Bearer, and for two Authorization headers', async () => {
    await expectRefused(await gw(kg, '/v1/events', { headers: { 'x-api-key': key.secret, authorization: `Bearer ${key.secret}` } }), 400, 'AMBIGUOUS_CREDENTIALS', ups);
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)], ['Authorization', `Bearer ${key.secret}`], ['Authorization', basic(ws, key.secret)],
    ]));
    await expectRefused({ ...res, body: res.json }, 400, 'AMBIGUOUS_CREDENTIALS', ups);
  });

  it('answers 401 for a valid secret with one character changed in the random part, without a store lookup', async () => {
    expect((await gw(kg, '/v1/events', { headers: withKey(key.secret) })).status).toBe(200);
    events.reset();
    const before = await scrape(kg);
    const changed = mutate(key.secret, 'kg_live_'.length + 5);
    expect(changed).not.toBe(key.secret);
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(changed) }), 401, 'UNAUTHENTICATED', ups);
    const after = await scrape(kg);
    expect(metricSum(after, 'keygate_key_cache_misses_total')).toBe(metricSum(before, 'keygate_key_cache_misses_total'));
  });

  it('answers 401 for a valid secret with one character changed in the checksum, without a store lookup', async () => {
    const before = await scrape(kg);
    const changed = mutate(key.secret, key.secret.length - 1);
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(changed) }), 401, 'UNAUTHENTICATED', ups);
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: `Bearer ${changed}` } }), 401, 'UNAUTHENTICATED', ups);
    const after = await scrape(kg);
    expect(metricSum(after, 'keygate_key_cache_misses_total')).toBe(metricSum(before, 'keygate_key_cache_misses_total'));
  });

  it('answers 401 for an unknown, well-formed secret (valid checksum), via X-Api-Key and Bearer', async () => {
    const { secret } = generateSecret('live');
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(secret) }), 401, 'UNAUTHENTICATED', ups);
    await expectRefused(await gw(kg, '/v1/events', { headers: { authorization: `Bearer ${secret}` } }), 401, 'UNAUTHENTICATED', ups);
  });

  it('answers 401 for a secret of the wrong shape (truncated, with a space, the prefix only)', async () => {
    for (const s of [key.secret.slice(0, -1), `${key.secret.slice(0, 10)} ${key.secret.slice(11)}`, key.key.prefix]) {
      await expectRefused(await gw(kg, '/v1/events', { headers: withKey(s) }), 401, 'UNAUTHENTICATED', ups);
    }
  });
});

describe('key status', () => {
  it('answers 403 KEY_DISABLED once a key is disabled, and 200 again once re-enabled', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'to-disable', permissions: ['*'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    const patch = await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 403, 'KEY_DISABLED', ups);
    expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: true })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
  });

  it('refuses a key on the very keep-alive connection that has been using it, once it is disabled or deleted', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'one-connection', permissions: ['*'] });
    const other = await createKey(kg, { workspaceId: ws, name: 'one-connection-other', permissions: ['*'] });
    // One connection for every request: the gateway remembers the secret it repeats.
    const client = new Client(kg.gatewayUrl!, { pipelining: 1 });
    let sockets = 0;
    client.on('connect', () => { sockets++; });
    const get = async (secret: string) => {
      const res = await client.request({ path: '/v1/events', method: 'GET', headers: withKey(secret) });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers as Record<string, string>, body: text === '' ? null : JSON.parse(text) };
    };
    try {
      for (let i = 0; i < 3; i++) expect((await get(k.secret)).status).toBe(200);
      // Another secret on the same connection is its own key, and the first is still known after it.
      expect((await get(other.secret)).status).toBe(200);
      expect((await get(k.secret)).status).toBe(200);
      expect((await get(k.secret)).status).toBe(200);
      expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false })).status).toBe(200);
      const disabled = await pollUntil(() => get(k.secret), (r) => r.status !== 200, 1000);
      events.reset();
      await expectRefused(disabled.value, 403, 'KEY_DISABLED', ups);
      expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: true })).status).toBe(200);
      await pollUntil(() => get(k.secret), (r) => r.status === 200, 1000);
      expect((await get(k.secret)).status).toBe(200);
      expect((await kg.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
      const deleted = await pollUntil(() => get(k.secret), (r) => r.status !== 200, 1000);
      events.reset();
      await expectRefused(deleted.value, 401, 'UNAUTHENTICATED', ups);
      expect(sockets).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('answers 401 KEY_EXPIRED once expiresAt has passed (the key worked before)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'short-lived', permissions: ['*'], expiresAt: new Date(Date.now() + 2000).toISOString() });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    await sleep(Date.parse(k.key.expiresAt) - Date.now() + 200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 401, 'KEY_EXPIRED', ups);
  });

  it("answers 403 KEY_SUSPENDED once the key's owner is disabled", async () => {
    const owner = await kg.admin('POST', '/v1/owners', { name: 'owner-to-disable', permissions: ['*'] });
    expect(owner.status, JSON.stringify(owner.body)).toBe(201);
    const k = await createKey(kg, { workspaceId: ws, name: 'owned', permissions: ['*'], ownerId: owner.body.id });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    const patch = await kg.admin('PATCH', `/v1/owners/${owner.body.id}`, { status: 'disabled' });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    const polled = await pollUntil(() => gw(kg, '/v1/events', { headers: withKey(k.secret) }), (r) => r.status !== 200, 1000);
    events.reset();
    await expectRefused(polled.value, 403, 'KEY_SUSPENDED', ups);
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 403, 'KEY_SUSPENDED', ups);
  });

  it('answers 401 UNAUTHENTICATED within 1 s of the key being deleted', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'to-delete', permissions: ['*'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    expect((await kg.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const polled = await pollUntil(() => gw(kg, '/v1/events', { headers: withKey(k.secret) }), (r) => r.status === 401, 1000);
    expect(polled.ok, `still ${polled.value.status} after ${polled.ms} ms`).toBe(true);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 401, 'UNAUTHENTICATED', ups);
  });

  it('keeps the old secret working after a rotation with gracePeriodSeconds 60, and the new secret works', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'rotate-grace', permissions: ['*'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 60 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    const fresh = rot.body.secret as string;
    expect(fresh).not.toBe(k.secret);
    events.reset();
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: withKey(fresh) })).status).toBe(200);
    expect(events.requests.map((r) => headerValue(r.rawHeaders, 'x-keygate-key-id'))).toEqual([k.key.id, k.key.id]);
  });

  it('keeps the old secret working after a rotation without gracePeriodSeconds (the configured default grace)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'rotate-default', permissions: ['*'] });
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, {});
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: withKey(rot.body.secret) })).status).toBe(200);
  });

  it('stops the old secret when its grace period ends (gracePeriodSeconds 1), the new one keeps working', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'rotate-short', permissions: ['*'] });
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 1 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    const rotatedAt = Date.now();
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    await sleep(Math.max(0, rotatedAt + 1300 - Date.now()));
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 401, 'UNAUTHENTICATED', ups);
    expect((await gw(kg, '/v1/events', { headers: withKey(rot.body.secret) })).status).toBe(200);
  });

  it('stops the old secret at once after a rotation with gracePeriodSeconds 0, and the new secret works', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'rotate-now', permissions: ['*'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 401, 'UNAUTHENTICATED', ups);
    expect((await gw(kg, '/v1/events', { headers: withKey(rot.body.secret) })).status).toBe(200);
  });
});

describe('permissions, key types and routes', () => {
  it('answers 403 PERMISSION_DENIED when the route permission is not granted', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'read-only', permissions: ['events.read'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    events.reset();
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { ...withKey(k.secret), 'content-type': 'application/json' }, body: '{"action":"a"}' });
    await expectRefused(res, 403, 'PERMISSION_DENIED', ups);
  });

  it("applies a PATCH of the key's permissions to its next request", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'repermission', permissions: ['events.read'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    expect((await gw(kg, '/v1/files/x', { headers: withKey(k.secret) })).status).toBe(403);
    expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { permissions: ['files.read'] })).status).toBe(200);
    expect((await gw(kg, '/v1/files/x', { headers: withKey(k.secret) })).status).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(k.secret) }), 403, 'PERMISSION_DENIED', ups);
  });

  it('lets an events.* pattern grant events.create (and events.read) but not files.read', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'events-module', permissions: ['events.*'] });
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { ...withKey(k.secret), 'content-type': 'application/json' }, body: '{"action":"a"}' });
    expect(res.status, res.text).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/files/x', { headers: withKey(k.secret) }), 403, 'PERMISSION_DENIED', ups);
  });

  it('lets a *.read pattern grant files.read but not blobs.write', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'reader', permissions: ['*.read'] });
    expect((await gw(kg, '/v1/files/x', { headers: withKey(k.secret) })).status).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/blobs/x', { method: 'PUT', headers: withKey(k.secret), body: 'x' }), 403, 'PERMISSION_DENIED', ups);
  });

  it("bounds a key by its owner's permissions: key *, owner events.read → events.create denied, events.read allowed", async () => {
    const owner = await kg.admin('POST', '/v1/owners', { name: 'reader-owner', permissions: ['events.read'] });
    expect(owner.status, JSON.stringify(owner.body)).toBe(201);
    const k = await createKey(kg, { workspaceId: ws, name: 'owner-bound', permissions: ['*'], ownerId: owner.body.id });
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { ...withKey(k.secret), 'content-type': 'application/json' }, body: '{"action":"a"}' });
    await expectRefused(res, 403, 'PERMISSION_DENIED', ups);
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
  });

  it("applies an owner's permission change to its keys' next requests", async () => {
    const owner = await kg.admin('POST', '/v1/owners', { name: 'widening-owner', permissions: ['events.read'] });
    const k = await createKey(kg, { workspaceId: ws, name: 'owner-bound-2', permissions: ['*'], ownerId: owner.body.id });
    expect((await gw(kg, '/v1/files/x', { headers: withKey(k.secret) })).status).toBe(403);
    expect((await kg.admin('PATCH', `/v1/owners/${owner.body.id}`, { permissions: ['events.read', 'files.read'] })).status).toBe(200);
    const polled = await pollUntil(() => gw(kg, '/v1/files/x', { headers: withKey(k.secret) }), (r) => r.status === 200, 1000);
    expect(polled.ok, `still ${polled.value.status} after ${polled.ms} ms`).toBe(true);
  });

  it('refuses a profile key on a route with keyTypes [workspace] with 403 KEY_TYPE_NOT_ALLOWED; a workspace key passes', async () => {
    const profile = await createKey(kg, { workspaceId: ws, name: 'profile-stats', type: 'profile', permissions: ['stats.read'] });
    const workspace = await createKey(kg, { workspaceId: ws, name: 'ws-stats', permissions: ['stats.read'] });
    await expectRefused(await gw(kg, '/v1/stats', { headers: withKey(profile.secret) }), 403, 'KEY_TYPE_NOT_ALLOWED', ups);
    expect((await gw(kg, '/v1/stats', { headers: withKey(workspace.secret) })).status).toBe(200);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-key-type')).toBe('workspace');
  });

  it('forwards a profile key on a route open to every type, with X-Keygate-Key-Type: profile', async () => {
    const profile = await createKey(kg, { workspaceId: ws, name: 'profile-events', type: 'profile', permissions: ['events.read'] });
    expect((await gw(kg, '/v1/events', { headers: withKey(profile.secret) })).status).toBe(200);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-key-type')).toBe('profile');
  });

  it('checks in the contract order: status before permission, permission before key type, key type before IP', async () => {
    const disabledNoPerm = await createKey(kg, { workspaceId: ws, name: 'order-1', permissions: ['files.read'], enabled: false });
    await expectRefused(await gw(kg, '/v1/stats', { headers: withKey(disabledNoPerm.secret) }), 403, 'KEY_DISABLED', ups);
    const profileNoPerm = await createKey(kg, { workspaceId: ws, name: 'order-2', type: 'profile', permissions: ['files.read'] });
    await expectRefused(await gw(kg, '/v1/stats', { headers: withKey(profileNoPerm.secret) }), 403, 'PERMISSION_DENIED', ups);
    const profileWrongIp = await createKey(kg, { workspaceId: ws, name: 'order-3', type: 'profile', permissions: ['stats.read'], ipAllowlist: ['10.0.0.0/8'] });
    await expectRefused(await gw(kg, '/v1/stats', { headers: withKey(profileWrongIp.secret) }), 403, 'KEY_TYPE_NOT_ALLOWED', ups);
  });

  it('answers 404 ROUTE_NOT_FOUND for an unknown path and for a known path with another method, with or without a key', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'router', permissions: ['*'] });
    await expectRefused(await gw(kg, '/v1/nothing-here', { headers: withKey(k.secret) }), 404, 'ROUTE_NOT_FOUND', ups);
    await expectRefused(await gw(kg, '/v1/events', { method: 'DELETE', headers: withKey(k.secret) }), 404, 'ROUTE_NOT_FOUND', ups);
    await expectRefused(await gw(kg, '/v1/events/extra', { headers: withKey(k.secret) }), 404, 'ROUTE_NOT_FOUND', ups);
    await expectRefused(await gw(kg, '/V1/EVENTS', { headers: withKey(k.secret) }), 404, 'ROUTE_NOT_FOUND', ups);
    await expectRefused(await gw(kg, '/v1/nothing-here'), 404, 'ROUTE_NOT_FOUND', ups);
  });
});

describe('usage', () => {
  it('records usage by outcome (OK, PERMISSION_DENIED) and lastUsedAt, visible on GET /v1/keys/{id}/usage', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'usage', permissions: ['events.read'] });
    const started = Date.now();
    for (let i = 0; i < 3; i++) expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const res = await gw(kg, '/v1/events', { method: 'POST', headers: { ...withKey(k.secret), 'content-type': 'application/json' }, body: '{"action":"a"}' });
      expect(res.status).toBe(403);
    }
    const ended = Date.now();
    const polled = await pollUntil(() => kg.admin('GET', `/v1/keys/${k.key.id}/usage`), (r) => r.body?.requests?.total >= 5, 3000, 100);
    expect(polled.value.status).toBe(200);
    const usage = polled.value.body;
    expect(usage.requests.total).toBe(5);
    expect(usage.requests.byOutcome).toEqual({ OK: 3, PERMISSION_DENIED: 2 });
    expect(typeof usage.lastUsedAt).toBe('string');
    const last = Date.parse(usage.lastUsedAt);
    expect(last).toBeGreaterThanOrEqual(started - 1000);
    expect(last).toBeLessThanOrEqual(ended + 1000);
    const key = await kg.admin('GET', `/v1/keys/${k.key.id}`);
    expect(key.body.lastUsedAt).toBe(usage.lastUsedAt);
  });

  it('counts nothing against a key for an unknown secret or an unmatched route', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'usage-quiet', permissions: ['*'] });
    await gw(kg, '/v1/nowhere', { headers: withKey(k.secret) });
    expect((await gw(kg, '/v1/events', { headers: withKey(k.secret) })).status).toBe(200);
    const polled = await pollUntil(() => kg.admin('GET', `/v1/keys/${k.key.id}/usage`), (r) => r.body?.requests?.total >= 1, 3000, 100);
    await sleep(1200);
    const usage = await kg.admin('GET', `/v1/keys/${k.key.id}/usage`);
    expect(polled.ok).toBe(true);
    expect(usage.body.requests).toEqual({ total: 1, byOutcome: { OK: 1 } });
  });
});
