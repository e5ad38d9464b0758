import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../src/domain/secret.js';
import { GUID, createKey, createWorkspace, expectError, sleep, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, pollUntil, type GatewayResponse } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { PRIVATE_JWK_MEMBERS, bearer, decodeJwt, fetchJwks, mintToken, postToken, simpleAuthSignature } from './support/tokens.js';
import { headerValue, headerValues, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
let ups: RecordingUpstream[];
/** The keygate every case runs against: EdDSA, tokens.ttlSeconds left at its default (3600). */
let kg: Keygate;
let ws: string;

const withKey = (secret: string): Record<string, string> => ({ 'x-api-key': secret });
const JSON_HEADERS = { 'content-type': 'application/json' };
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  ups = pair.all;
  // A rotated signing key signs after tokens.rotationDelaySeconds: 1 s here, 300 s by default.
  kg = await startKeygate({ config: (dir) => ({ ...gatewayConfig({ events, eventsTest })(dir), tokens: { rotationDelaySeconds: 1 } }) });
  ws = await createWorkspace(kg, 'tokens');
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('POST /auth/token: minting', () => {
  let key: { key: any; secret: string };
  beforeAll(async () => {
    key = await createKey(kg, { workspaceId: ws, name: 'mint', permissions: ['*'] });
  });

  it('answers {"apiKey"} with 200 {token, tokenType: "Bearer", expiresIn: 3600} and Cache-Control: no-store', async () => {
    const res = await postToken(kg, { apiKey: key.secret });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['expiresIn', 'token', 'tokenType']);
    expect(res.body.tokenType).toBe('Bearer');
    expect(res.body.expiresIn).toBe(3600);
    expect(res.body.token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(res.headers.get('cache-control') ?? '').toMatch(/no-store/);
    expect(res.headers.get('content-type') ?? '').toMatch(/^application\/json/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(events.started).toEqual([]);
  });

  it('mints with the key in X-Api-Key and an empty body', async () => {
    const res = await postToken(kg, undefined, withKey(key.secret));
    expect(res.status, res.text).toBe(200);
    expect(res.body.tokenType).toBe('Bearer');
    expect(decodeJwt(res.body.token).payload.sub).toBe(key.key.id);
  });

  it('mints with the key as Authorization: Bearer <secret> and an empty body', async () => {
    const res = await postToken(kg, undefined, { authorization: `Bearer ${key.secret}` });
    expect(res.status, res.text).toBe(200);
    expect(decodeJwt(res.body.token).payload.sub).toBe(key.key.id);
  });

  it('mints with Basic base64(<workspace GUID>:<secret>) for a basicAuth workspace key, and refuses another GUID with 401', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'mint-basic', permissions: ['*'], basicAuth: true });
    const basic = (user: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${k.secret}`).toString('base64')}` });
    const res = await postToken(kg, undefined, basic(ws));
    expect(res.status, res.text).toBe(200);
    expect(decodeJwt(res.body.token).payload.sub).toBe(k.key.id);
    const otherWs = await createWorkspace(kg, 'mint-basic-other');
    await expectRefused(await postToken(kg, undefined, basic(otherWs)), 401, 'UNAUTHENTICATED', ups);
  });

  it('answers 400 AMBIGUOUS_CREDENTIALS to a key in X-Api-Key and in the body, even the same key', async () => {
    await expectRefused(await postToken(kg, { apiKey: key.secret }, withKey(key.secret)), 400, 'AMBIGUOUS_CREDENTIALS', ups);
    const other = generateSecret('live').secret;
    await expectRefused(await postToken(kg, { apiKey: other }, withKey(key.secret)), 400, 'AMBIGUOUS_CREDENTIALS', ups);
  });

  it('answers 401 UNAUTHENTICATED to an unknown, well-formed key and to a request without any key', async () => {
    await expectRefused(await postToken(kg, { apiKey: generateSecret('live').secret }), 401, 'UNAUTHENTICATED', ups);
    await expectRefused(await postToken(kg, {}), 401, 'UNAUTHENTICATED', ups);
    await expectRefused(await postToken(kg), 401, 'UNAUTHENTICATED', ups);
  });

  it('answers 403 KEY_DISABLED to a disabled key', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'mint-disabled', permissions: ['*'], enabled: false });
    await expectRefused(await postToken(kg, { apiKey: k.secret }), 403, 'KEY_DISABLED', ups);
  });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE to a body that is not declared as JSON (text/plain, form)', async () => {
    const body = JSON.stringify({ apiKey: key.secret });
    await expectRefused(await postToken(kg, body, { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
    await expectRefused(await postToken(kg, `apiKey=${key.secret}`, { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
  });

  it('answers 400 INVALID_BODY to a body that is not JSON', async () => {
    await expectRefused(await postToken(kg, `{"apiKey": "${key.secret}"`), 400, 'INVALID_BODY', ups);
    await expectRefused(await postToken(kg, 'not json'), 400, 'INVALID_BODY', ups);
  });

  it('answers 400 BAD_REQUEST to an unknown field, naming it', async () => {
    const res = await postToken(kg, { apiKey: key.secret, scope: 'admin' });
    await expectRefused(res, 400, 'BAD_REQUEST', ups);
    expect(res.body.error.message).toContain('scope');
  });

  it('answers 400 BAD_REQUEST to an apiKey that is not a string', async () => {
    await expectRefused(await postToken(kg, { apiKey: 12345 }), 400, 'BAD_REQUEST', ups);
  });

  it('answers 405 to GET /auth/token (and nothing reaches an upstream)', async () => {
    const res = await gw(kg, '/auth/token', { headers: withKey(key.secret) });
    await expectRefused(res, 405, 'METHOD_NOT_ALLOWED', ups);
  });

  it('answers 405 to POST /.well-known/jwks.json', async () => {
    await expectRefused(await gw(kg, '/.well-known/jwks.json', { method: 'POST', headers: JSON_HEADERS, body: '{}' }), 405, 'METHOD_NOT_ALLOWED', ups);
  });

  it('answers 413 BODY_TOO_LARGE to a token request body over gateway.maxBodyBytes (2 MiB)', async () => {
    const body = JSON.stringify({ apiKey: key.secret, pad: 'x'.repeat(2 * 1024 * 1024) });
    await expectRefused(await postToken(kg, body), 413, 'BODY_TOO_LARGE', ups);
  });

  it('names POST in the Allow header of that 405 (RFC 9110 §15.5.6: a 405 MUST carry Allow)', async () => {
    const res = await gw(kg, '/auth/token', { headers: withKey(key.secret) });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow') ?? '', 'Allow header on 405').toMatch(/\bPOST\b/);
  });

  it('answers 403 IP_NOT_ALLOWED to a key whose ipAllowlist (10.0.0.0/8) does not cover 127.0.0.1', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'mint-ip', permissions: ['*'], ipAllowlist: ['10.0.0.0/8'] });
    await expectRefused(await postToken(kg, { apiKey: k.secret }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('does not exchange a token for another token', async () => {
    const token = await mintToken(kg, key.secret);
    const res = await postToken(kg, undefined, bearer(token));
    expect([400, 401], res.text).toContain(res.status);
    expectError(res, res.status, res.body?.error?.code);
    expect(res.text).not.toContain('"token"');
  });
});

describe('token claims and the JWKS', () => {
  let key: { key: any; secret: string };
  let token: string;
  let mintedFrom: number;
  let mintedTo: number;

  beforeAll(async () => {
    key = await createKey(kg, { workspaceId: ws, name: 'claims', permissions: ['*'] });
    mintedFrom = nowSeconds();
    token = await mintToken(kg, key.secret);
    mintedTo = nowSeconds();
  });

  it('has the header {alg: "EdDSA", typ: "JWT", kid}, and the kid is published in GET /.well-known/jwks.json', async () => {
    const { header } = decodeJwt(token);
    expect(header.alg).toBe('EdDSA');
    expect(header.typ).toBe('JWT');
    expect(typeof header.kid).toBe('string');
    const { keys } = await fetchJwks(kg);
    const jwk = keys.find((k) => k.kid === header.kid);
    expect(jwk, JSON.stringify(keys)).toBeDefined();
    expect(jwk!.kty).toBe('OKP');
    expect(jwk!.crv).toBe('Ed25519');
  });

  it('carries iss "keygate", sub = the key id, ws = the workspace GUID, typ = the key type, env and kv = the key version', () => {
    const { payload } = decodeJwt(token);
    expect(payload.iss).toBe('keygate');
    expect(payload.sub).toBe(key.key.id);
    expect(payload.ws).toBe(ws);
    expect(payload.ws).toMatch(GUID);
    expect(payload.typ).toBe('workspace');
    expect(payload.env).toBe('live');
    expect(payload.kv).toBe(key.key.version);
    expect(payload.prof).toBeUndefined();
  });

  it('sets iat to the minting time and exp = iat + 3600', () => {
    const { payload } = decodeJwt(token);
    expect(Number.isInteger(payload.iat)).toBe(true);
    expect(payload.iat).toBeGreaterThanOrEqual(mintedFrom - 1);
    expect(payload.iat).toBeLessThanOrEqual(mintedTo + 1);
    expect(payload.exp).toBe(payload.iat + 3600);
  });

  it('gives every token its own jti, even for the same key within the same second', async () => {
    const tokens = await Promise.all(Array.from({ length: 5 }, () => mintToken(kg, key.secret)));
    const jtis = [token, ...tokens].map((t) => decodeJwt(t).payload.jti as unknown);
    for (const j of jtis) expect(typeof j === 'string' && j.length >= 16, String(j)).toBe(true);
    expect(new Set(jtis).size).toBe(jtis.length);
  });

  it("follows the key: a test profile key patched once gives typ profile, env test and kv 2", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'claims-profile', type: 'profile', environment: 'test', permissions: ['*'] });
    const patch = await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { name: 'claims-profile-2' });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    expect(patch.body.version).toBe(2);
    const { payload } = decodeJwt(await mintToken(kg, k.secret));
    expect(payload).toMatchObject({ sub: k.key.id, typ: 'profile', env: 'test', kv: 2, ws });
  });

  it('serves the JWKS as JSON with Cache-Control max-age and without any private key member', async () => {
    const { res, keys } = await fetchJwks(kg);
    expect(res.headers.get('content-type') ?? '').toMatch(/json/);
    expect(res.headers.get('cache-control') ?? '').toMatch(/max-age=\d+/);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      for (const m of PRIVATE_JWK_MEMBERS) expect(k, `JWKS key has private member ${m}`).not.toHaveProperty(m);
      expect(typeof k.kid).toBe('string');
      expect(typeof k.x).toBe('string');
    }
    expect(res.text).not.toMatch(/"d"\s*:/);
  });

  it('GET /v1/signing-keys lists id, alg, createdAt, activeFrom and retiredAt only, and needs the admin token', async () => {
    const res = await kg.admin('GET', '/v1/signing-keys');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const items = res.body.items as Array<Record<string, unknown>>;
    expect(items.length).toBeGreaterThan(0);
    for (const item of items) expect(Object.keys(item).sort()).toEqual(['activeFrom', 'alg', 'createdAt', 'id', 'retiredAt']);
    const kid = decodeJwt(token).header.kid as string;
    expect(items.find((i) => i.id === kid)).toMatchObject({ id: kid, alg: 'EdDSA', retiredAt: null });
    expect(JSON.stringify(res.body)).not.toMatch(/"d"\s*:|privateJwk|publicJwk/);
    const anonymous = await fetch(`${kg.adminUrl}/v1/signing-keys`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain(kid);
  });
});

describe('using a token', () => {
  it('forwards Authorization: Bearer <token> with X-Keygate-Key-Id and the key identity, without the token itself', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    const res = await gw(kg, '/v1/events?via=token', { headers: bearer(token) });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
    const r = events.requests[0]!;
    expect(r.url).toBe('/v1/events?via=token');
    expect(headerValue(r.rawHeaders, 'x-keygate-key-id')).toBe(k.key.id);
    expect(headerValue(r.rawHeaders, 'x-keygate-workspace-id')).toBe(ws);
    expect(headerValue(r.rawHeaders, 'x-keygate-key-type')).toBe('workspace');
    expect(headerValue(r.rawHeaders, 'x-keygate-environment')).toBe('live');
    expect(headerValues(r.rawHeaders, 'x-keygate-profile')).toEqual([]);
    expect(headerValues(r.rawHeaders, 'authorization')).toEqual([]);
    expect(r.rawHeaders.join('\n')).not.toContain(token.split('.')[2]!);
  });

  it('accepts the token with the bearer scheme in lower case', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-lower', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: { authorization: `bearer ${token}` } })).status).toBe(200);
  });

  it("sends a test key's token to the route's upstreamTest with X-Keygate-Environment: test", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-test', environment: 'test', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { ...bearer(token), ...JSON_HEADERS }, body: '{"action":"a"}' });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(0);
    expect(eventsTest.requests).toHaveLength(1);
    expect(headerValue(eventsTest.requests[0]!.rawHeaders, 'x-keygate-environment')).toBe('test');
    expect(headerValue(eventsTest.requests[0]!.rawHeaders, 'x-keygate-key-id')).toBe(k.key.id);
  });

  it("answers 403 PERMISSION_DENIED to a token whose key lacks the route's permission, and 200 where it has it", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-read-only', permissions: ['events.read'] });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    events.reset();
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { ...bearer(token), ...JSON_HEADERS }, body: '{"action":"a"}' });
    await expectRefused(res, 403, 'PERMISSION_DENIED', ups);
  });

  it("applies a PATCH of the key's permissions to a token minted before it (the token has no permissions of its own)", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-repermission', permissions: ['events.read'] });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/files/x', { headers: bearer(token) })).status).toBe(403);
    expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { permissions: ['files.read'] })).status).toBe(200);
    const polled = await pollUntil(() => gw(kg, '/v1/files/x', { headers: bearer(token) }), (r) => r.status === 200, 1000);
    expect(polled.ok, `still ${polled.value.status} ${polled.value.text}`).toBe(true);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(token) }), 403, 'PERMISSION_DENIED', ups);
  });

  it("answers 403 KEY_TYPE_NOT_ALLOWED to a profile key's token on a workspace-only route", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-profile', type: 'profile', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    await expectRefused(await gw(kg, '/v1/stats', { headers: bearer(token) }), 403, 'KEY_TYPE_NOT_ALLOWED', ups);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
  });

  it("answers 403 IP_NOT_ALLOWED to a token once its key's ipAllowlist no longer covers the client (a token replayed from a forbidden IP)", async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-ip', permissions: ['*'], ipAllowlist: ['127.0.0.1'] });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    const patch = await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { ipAllowlist: ['10.0.0.0/8'] });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    const polled = await pollUntil(() => gw(kg, '/v1/events', { headers: bearer(token) }), (r) => r.status !== 200, 1000);
    events.reset();
    await expectRefused(polled.value, 403, 'IP_NOT_ALLOWED', ups);
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(token) }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('answers 400 AMBIGUOUS_CREDENTIALS to a token together with X-Api-Key', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-ambiguous', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    await expectRefused(await gw(kg, '/v1/events', { headers: { ...bearer(token), ...withKey(k.secret) } }), 400, 'AMBIGUOUS_CREDENTIALS', ups);
  });

  it('does not take a token in X-Api-Key (401 UNAUTHENTICATED)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-x-api-key', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    await expectRefused(await gw(kg, '/v1/events', { headers: withKey(token) }), 401, 'UNAUTHENTICATED', ups);
  });

  it('drops an X-Keygate-Profile header sent by the client with a workspace token', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'use-spoof', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    const res = await gw(kg, '/v1/profiles/user-42', { method: 'PATCH', headers: { ...bearer(token), ...JSON_HEADERS, 'x-keygate-profile': 'user-42' }, body: '{}' });
    expect(res.status, res.text).toBe(200);
    expect(headerValues(events.requests[0]!.rawHeaders, 'x-keygate-profile')).toEqual([]);
  });
});

describe("a token answers with its key's current state", () => {
  it('answers 403 KEY_DISABLED once the key is disabled, and 200 again once re-enabled', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'state-disable', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: false })).status).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(token) }), 403, 'KEY_DISABLED', ups);
    expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { enabled: true })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
  });

  it("answers 403 KEY_SUSPENDED once the key's owner is disabled; minting is refused the same way", async () => {
    const owner = await kg.admin('POST', '/v1/owners', { name: 'token-owner', permissions: ['*'] });
    expect(owner.status, JSON.stringify(owner.body)).toBe(201);
    const k = await createKey(kg, { workspaceId: ws, name: 'state-owned', permissions: ['*'], ownerId: owner.body.id });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    expect((await kg.admin('PATCH', `/v1/owners/${owner.body.id}`, { status: 'disabled' })).status).toBe(200);
    const polled = await pollUntil(() => gw(kg, '/v1/events', { headers: bearer(token) }), (r) => r.status !== 200, 1000);
    events.reset();
    await expectRefused(polled.value, 403, 'KEY_SUSPENDED', ups);
    await expectRefused(await postToken(kg, { apiKey: k.secret }), 403, 'KEY_SUSPENDED', ups);
  });

  it('answers 401 KEY_EXPIRED once the key expires, though the token has not; minting is refused the same way', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'state-expiring', permissions: ['*'], expiresAt: new Date(Date.now() + 2000).toISOString() });
    const token = await mintToken(kg, k.secret);
    expect(decodeJwt(token).payload.exp * 1000).toBeGreaterThan(Date.parse(k.key.expiresAt) + 60_000);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    await sleep(Math.max(0, Date.parse(k.key.expiresAt) - Date.now() + 200));
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(token) }), 401, 'KEY_EXPIRED', ups);
    await expectRefused(await postToken(kg, { apiKey: k.secret }), 401, 'KEY_EXPIRED', ups);
  });

  it('answers 401 TOKEN_INVALID within 1 s of the key being deleted', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'state-delete', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    expect((await kg.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const polled = await pollUntil(() => gw(kg, '/v1/events', { headers: bearer(token) }), (r) => r.status === 401, 1000);
    expect(polled.ok, `still ${polled.value.status} after ${polled.ms} ms`).toBe(true);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(token) }), 401, 'TOKEN_INVALID', ups);
  });

  it('keeps a token minted from the old secret working after a rotation with gracePeriodSeconds 60 (the old secret still mints too)', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'state-rotate-grace', permissions: ['*'] });
    const before = await mintToken(kg, k.secret);
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 60 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    const duringGrace = await mintToken(kg, k.secret);
    const fresh = await mintToken(kg, rot.body.secret);
    events.reset();
    for (const t of [before, duringGrace, fresh]) expect((await gw(kg, '/v1/events', { headers: bearer(t) })).status).toBe(200);
    expect(events.requests.map((r) => headerValue(r.rawHeaders, 'x-keygate-key-id'))).toEqual([k.key.id, k.key.id, k.key.id]);
  });

  it('answers 401 TOKEN_INVALID to a token minted from the old secret once the grace period (1 s) has passed', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'state-rotate-short', permissions: ['*'] });
    const old = await mintToken(kg, k.secret);
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 1 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    const rotatedAt = Date.now();
    expect((await gw(kg, '/v1/events', { headers: bearer(old) })).status).toBe(200);
    await sleep(Math.max(0, rotatedAt + 1300 - Date.now()));
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(old) }), 401, 'TOKEN_INVALID', ups);
    expect((await gw(kg, '/v1/events', { headers: bearer(await mintToken(kg, rot.body.secret)) })).status).toBe(200);
  });

  it('answers 401 TOKEN_INVALID to a token minted from the old secret after a rotation with gracePeriodSeconds 0; a token from the new secret works', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'state-rotate-now', permissions: ['*'] });
    const old = await mintToken(kg, k.secret);
    expect((await gw(kg, '/v1/events', { headers: bearer(old) })).status).toBe(200);
    const rot = await kg.admin('POST', `/v1/keys/${k.key.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(rot.status, JSON.stringify(rot.body)).toBe(200);
    events.reset();
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(old) }), 401, 'TOKEN_INVALID', ups);
    await expectRefused(await postToken(kg, { apiKey: k.secret }), 401, 'UNAUTHENTICATED', ups);
    const fresh = await mintToken(kg, rot.body.secret);
    expect(decodeJwt(fresh).payload.sub).toBe(k.key.id);
    expect((await gw(kg, '/v1/events', { headers: bearer(fresh) })).status).toBe(200);
  });
});

describe('simple authentication (profile tokens)', () => {
  let sa: { key: any; secret: string };
  let salt: string;
  let userToken: string;
  let emailToken: string;
  let unknown401: { code: string; message: string };
  const identity = { customId: 'user-42' };

  beforeAll(async () => {
    sa = await createKey(kg, { workspaceId: ws, name: 'simple-auth', type: 'profile', permissions: ['*'], simpleAuth: { enabled: true } });
    salt = sa.key.simpleAuth?.salt as string;
    const res = await postToken(kg, { apiKey: generateSecret('live').secret });
    expect(res.status).toBe(401);
    unknown401 = { code: res.body.error.code, message: res.body.error.message };
  });

  it('returns simpleAuth.salt in the create response, and not on GET /v1/keys/{id}', async () => {
    expect(typeof salt).toBe('string');
    expect(salt.length).toBeGreaterThanOrEqual(16);
    expect(sa.key.simpleAuth.enabled).toBe(true);
    const got = await kg.admin('GET', `/v1/keys/${sa.key.id}`);
    expect(got.status).toBe(200);
    expect(got.body.simpleAuth.enabled).toBe(true);
    expect(JSON.stringify(got.body)).not.toContain(salt);
  });

  it('mints for {identity: {customId: "user-42"}, signature} a token whose sub and prof are "user-42"', async () => {
    userToken = await mintToken(kg, sa.secret, { identity, signature: simpleAuthSignature(salt, 'user-42') });
    const { payload } = decodeJwt(userToken);
    expect(payload.sub).toBe('user-42');
    expect(payload.prof).toBe('user-42');
    expect(payload).toMatchObject({ iss: 'keygate', ws, typ: 'profile', env: 'live' });
  });

  it('forwards requests with that token with X-Keygate-Profile: user-42 and the key id', async () => {
    const res = await gw(kg, '/v1/events', { headers: bearer(userToken) });
    expect(res.status, res.text).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValue(h, 'x-keygate-profile')).toBe('user-42');
    expect(headerValue(h, 'x-keygate-key-id')).toBe(sa.key.id);
    expect(headerValue(h, 'x-keygate-key-type')).toBe('profile');
  });

  it('mints for {identity: {email: "a@b.c"}} likewise', async () => {
    emailToken = await mintToken(kg, sa.secret, { identity: { email: 'a@b.c' }, signature: simpleAuthSignature(salt, 'a@b.c') });
    const { payload } = decodeJwt(emailToken);
    expect(payload.sub).toBe('a@b.c');
    expect(payload.prof).toBe('a@b.c');
    expect((await gw(kg, '/v1/events', { headers: bearer(emailToken) })).status).toBe(200);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-profile')).toBe('a@b.c');
  });

  it('answers a wrong signature with 401 UNAUTHENTICATED, identical in code and message to an unknown key', async () => {
    const wrong = [
      simpleAuthSignature(salt, 'user-43'),
      simpleAuthSignature(`${salt}x`, 'user-42'),
      '0'.repeat(64),
    ];
    for (const signature of wrong) {
      const res = await postToken(kg, { apiKey: sa.secret, identity, signature });
      await expectRefused(res, 401, 'UNAUTHENTICATED', ups);
      expect({ code: res.body.error.code, message: res.body.error.message }).toEqual(unknown401);
    }
  });

  it('answers 400 to identity without signature, signature without identity, both customId and email, and a signature that is not 64 hex characters', async () => {
    const sig = simpleAuthSignature(salt, 'user-42');
    const bodies = [
      { apiKey: sa.secret, identity },
      { apiKey: sa.secret, signature: sig },
      { apiKey: sa.secret, identity: { customId: 'user-42', email: 'a@b.c' }, signature: sig },
      { apiKey: sa.secret, identity, signature: sig.slice(0, 40) },
      { apiKey: sa.secret, identity: { customId: '' }, signature: sig },
    ];
    for (const body of bodies) await expectRefused(await postToken(kg, body), 400, 'BAD_REQUEST', ups);
  });

  it('answers 403 KEY_TYPE_NOT_ALLOWED to a workspace key presenting an identity', async () => {
    const wsKey = await createKey(kg, { workspaceId: ws, name: 'simple-auth-workspace', permissions: ['*'] });
    const res = await postToken(kg, { apiKey: wsKey.secret, identity, signature: simpleAuthSignature(salt, 'user-42') });
    await expectRefused(res, 403, 'KEY_TYPE_NOT_ALLOWED', ups);
  });

  it('answers 401 UNAUTHENTICATED to a profile key without simple authentication presenting an identity', async () => {
    const plain = await createKey(kg, { workspaceId: ws, name: 'simple-auth-off', type: 'profile', permissions: ['*'] });
    const res = await postToken(kg, { apiKey: plain.secret, identity, signature: simpleAuthSignature('anything', 'user-42') });
    await expectRefused(res, 401, 'UNAUTHENTICATED', ups);
    expect({ code: res.body.error.code, message: res.body.error.message }).toEqual(unknown401);
  });

  describe('profile scope (PATCH /v1/profiles/{profileId}, profileScope: profileId)', () => {
    const patchProfile = (token: string, id: string): Promise<GatewayResponse> =>
      gw(kg, `/v1/profiles/${id}`, { method: 'PATCH', headers: { ...bearer(token), ...JSON_HEADERS }, body: '{}' });

    it('lets the user-42 token PATCH /v1/profiles/user-42 (forwarded, with X-Keygate-Profile)', async () => {
      const res = await patchProfile(userToken, 'user-42');
      expect(res.status, res.text).toBe(200);
      expect(events.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['PATCH /v1/profiles/user-42']);
      expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-profile')).toBe('user-42');
    });

    it('answers 403 PROFILE_SCOPE to the user-42 token on PATCH /v1/profiles/user-43', async () => {
      await expectRefused(await patchProfile(userToken, 'user-43'), 403, 'PROFILE_SCOPE', ups);
    });

    it('lets the a@b.c token PATCH /v1/profiles/a@b.c but not /v1/profiles/user-42', async () => {
      expect((await patchProfile(emailToken, 'a@b.c')).status).toBe(200);
      events.reset();
      await expectRefused(await patchProfile(emailToken, 'user-42'), 403, 'PROFILE_SCOPE', ups);
    });

    it('scopes only routes with profileScope: GET /v1/profiles/user-43 (no profileScope) is forwarded for the user-42 token', async () => {
      const res = await gw(kg, '/v1/profiles/user-43', { headers: bearer(userToken) });
      expect(res.status, res.text).toBe(200);
      expect(events.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/profiles/user-43']);
    });

    it("does not restrict a workspace key's token (it speaks for no profile)", async () => {
      const wsKey = await createKey(kg, { workspaceId: ws, name: 'scope-workspace', permissions: ['*'] });
      const token = await mintToken(kg, wsKey.secret);
      expect((await patchProfile(token, 'user-43')).status).toBe(200);
      expect((await patchProfile(token, 'anyone-else')).status).toBe(200);
      expect(events.requests).toHaveLength(2);
    });
  });
});

describe('signing key rotation', () => {
  let key: { key: any; secret: string };
  let before: string;
  let oldKid: string;
  let newKid: string;

  beforeAll(async () => {
    key = await createKey(kg, { workspaceId: ws, name: 'signing-rotation', permissions: ['*'] });
    before = await mintToken(kg, key.secret);
    oldKid = decodeJwt(before).header.kid as string;
  });

  it('answers POST /v1/signing-keys/rotate with 201 {id, alg, createdAt, activeFrom, retiredAt: null} and no key material', async () => {
    const res = await kg.admin('POST', '/v1/signing-keys/rotate');
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['activeFrom', 'alg', 'createdAt', 'id', 'retiredAt']);
    expect(res.body).toMatchObject({ alg: 'EdDSA', retiredAt: null });
    newKid = res.body.id as string;
    expect(newKid).not.toBe(oldKid);
  });

  it('publishes both the old and the new kid in the JWKS', async () => {
    const polled = await pollUntil(() => fetchJwks(kg), ({ keys }) => keys.some((k) => k.kid === newKid), 2000);
    expect(polled.ok, `JWKS after ${polled.ms} ms: ${polled.value.res.text}`).toBe(true);
    const kids = polled.value.keys.map((k) => k.kid as string);
    expect(kids).toEqual(expect.arrayContaining([oldKid, newKid]));
  });

  it('keeps accepting a token minted before the rotation', async () => {
    const res = await gw(kg, '/v1/events', { headers: bearer(before) });
    expect(res.status, res.text).toBe(200);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-key-id')).toBe(key.key.id);
  });

  it('signs new tokens with the new kid, and they work', async () => {
    const polled = await pollUntil(() => mintToken(kg, key.secret), (t) => decodeJwt(t).header.kid === newKid, 2000);
    expect(decodeJwt(polled.value).header.kid).toBe(newKid);
    expect((await gw(kg, '/v1/events', { headers: bearer(polled.value) })).status).toBe(200);
  });

  it('lists the old key as retired and the new one as active on GET /v1/signing-keys', async () => {
    const res = await kg.admin('GET', '/v1/signing-keys');
    expect(res.status).toBe(200);
    const items = res.body.items as Array<{ id: string; retiredAt: string | null }>;
    expect(items.find((i) => i.id === newKid)?.retiredAt).toBeNull();
    expect(typeof items.find((i) => i.id === oldKid)?.retiredAt).toBe('string');
    expect(items.filter((i) => i.retiredAt === null)).toHaveLength(1);
  });

  it('records the rotation in the audit log without any key material', async () => {
    const res = await kg.admin('GET', '/v1/audit?limit=500');
    expect(res.status).toBe(200);
    const entries = (res.body.items as any[]).filter((e) => e.target?.type === 'signing-key');
    expect(entries.some((e) => e.action === 'signing-key.rotate' && e.target.id === newKid)).toBe(true);
    expect(JSON.stringify(entries)).not.toMatch(/"d"\s*:|privateJwk|publicJwk/);
  });
});
