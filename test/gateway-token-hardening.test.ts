import { createPublicKey, type KeyObject } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, pollUntil } from './support/gateway.js';
import { PEPPER, startKeygate, type Keygate } from './support/keygate.js';
import { bearer, decodeJwt, fetchJwks, mintToken, rawStoreFiles, resign, storedSigningKeys } from './support/tokens.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let ups: RecordingUpstream[];
/** tokens.rotationDelaySeconds: 2; everything else as the gateway suites run it (ttlSeconds 3600). */
let kg: Keygate;
let secret: string;
let token: string;
let kid: string;
let realKey: KeyObject;
const TTL = 3600;
const DAY = 86_400;
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  ({ events } = pair);
  ups = pair.all;
  kg = await startKeygate({ config: (dir) => ({ ...gatewayConfig({ events, eventsTest: pair.eventsTest })(dir), tokens: { rotationDelaySeconds: 2 } }) });
  const ws = await createWorkspace(kg, 'token-hardening');
  secret = (await createKey(kg, { workspaceId: ws, name: 'hardening', permissions: ['*'] })).secret;
  token = await mintToken(kg, secret);
  kid = decodeJwt(token).header.kid as string;
  const key = storedSigningKeys(kg.dataDir, { pepper: PEPPER }).get(kid);
  expect(key, `signing key ${kid} in the data dir`).toBeDefined();
  realKey = key!;
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('token lifetime', () => {
  it('accepts a token re-signed with the gateway key at the limit: exp − iat = tokens.ttlSeconds, iat 20 s ahead (within the clock skew)', async () => {
    const iat = nowSeconds() + 20;
    const res = await gw(kg, '/v1/events', { headers: bearer(resign(token, realKey, (p) => ({ ...p, iat, exp: iat + TTL, jti: 'edge' }))) });
    expect(res.status, res.text).toBe(200);
  });

  it("refuses with 401 TOKEN_INVALID a token signed with the gateway's own key that lives 10 days or 100 years (regression)", async () => {
    const iat = nowSeconds();
    for (const life of [10 * DAY, 100 * 365 * DAY, TTL + 1]) {
      const forged = resign(token, realKey, (p) => ({ ...p, iat, exp: iat + life, jti: `life-${life}` }));
      await expectRefused(await gw(kg, '/v1/events', { headers: bearer(forged) }), 401, 'TOKEN_INVALID', ups);
    }
  });

  it("refuses with 401 TOKEN_INVALID a token signed with the gateway's own key whose iat is ahead of the clock, or absent (regression)", async () => {
    const ahead = nowSeconds() + 3600;
    const future = resign(token, realKey, (p) => ({ ...p, iat: ahead, exp: ahead + TTL, jti: 'future' }));
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(future) }), 401, 'TOKEN_INVALID', ups);
    const justAhead = nowSeconds() + 90;
    const skewed = resign(token, realKey, (p) => ({ ...p, iat: justAhead, exp: justAhead + 60, jti: 'skewed' }));
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(skewed) }), 401, 'TOKEN_INVALID', ups);
    const noIat = resign(token, realKey, (p) => { const { iat: _iat, ...rest } = p; return { ...rest, exp: nowSeconds() + 60, jti: 'no-iat' }; });
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(noIat) }), 401, 'TOKEN_INVALID', ups);
  });
});

describe('token audience', () => {
  it('mints tokens with aud "keygate" (tokens.audience) that an independent library verifies with that audience', async () => {
    const { payload } = decodeJwt(token);
    expect(payload.aud).toBe('keygate');
    const { keys } = await fetchJwks(kg);
    const pem = createPublicKey({ key: keys.find((k) => k.kid === kid) as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    expect(createVerifier({ key: pem, algorithms: ['EdDSA'], allowedAud: 'keygate' })(token)).toMatchObject({ aud: 'keygate' });
  });

  it("refuses with 401 TOKEN_INVALID a token signed with the gateway's own key for another audience, or for none (regression)", async () => {
    const other = resign(token, realKey, (p) => ({ ...p, aud: 'billing-service', jti: 'aud-other' }));
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(other) }), 401, 'TOKEN_INVALID', ups);
    const none = resign(token, realKey, (p) => { const { aud: _aud, ...rest } = p; return { ...rest, jti: 'aud-none' }; });
    await expectRefused(await gw(kg, '/v1/events', { headers: bearer(none) }), 401, 'TOKEN_INVALID', ups);
  });
});

describe('signing keys at rest', () => {
  it("keeps no private key material in the embedded journal or snapshot: the signing key's private half is sealed (regression)", async () => {
    const raw = rawStoreFiles(kg.dataDir);
    expect(raw).toContain(kid);
    expect(raw).toContain('"sealedPrivateJwk":"v1.');
    expect(raw).not.toMatch(/"d"\s*:/);
    expect(raw).not.toMatch(/privateJwk"\s*:\s*\{/);
    expect(raw).not.toMatch(/PRIVATE KEY/);
    // Sealed with the pepper-derived key, it opens with nothing else.
    expect(() => storedSigningKeys(kg.dataDir, { pepper: 'another-pepper-0123456789abcdef' })).toThrow(/cannot decrypt/);
  });

  it("refuses to start, naming the setting, when the store's signing keys were sealed with another key, and makes no new key (regression)", async () => {
    const config = (encryptionKey: string) => (dir: string) => ({
      ...gatewayConfig({ events, eventsTest: pair.eventsTest })(dir), secrets: { pepper: PEPPER, signingKeyEncryptionKey: encryptionKey },
    });
    const first = await startKeygate({ config: config('operator-key-one-0123456789abcdefghij') });
    const firstKid = decodeJwt(await mintToken(first, (await createKey(first, { workspaceId: await createWorkspace(first, 'sealed'), name: 'k', permissions: ['*'] })).secret)).header.kid as string;
    // Each deployment's first key has a kid of its own.
    expect(firstKid).not.toBe(kid);
    expect(firstKid).not.toMatch(/first/);
    await stopAndClean(first, { keepData: true });
    const before = rawStoreFiles(first.dataDir);
    let failure = '';
    try {
      const second = await startKeygate({ dataDir: first.dataDir, config: config('operator-key-two-0123456789abcdefghij') });
      await stopAndClean(second);
    } catch (err) {
      failure = (err as Error).message;
    }
    expect(failure).toMatch(/exited with 1 before ready/);
    expect(failure).toMatch(/secrets\.signingKeyEncryptionKey: cannot decrypt token signing key/);
    expect(failure).toContain(firstKid);
    expect(rawStoreFiles(first.dataDir)).toBe(before);
    // The right key opens them again.
    const third = await startKeygate({ dataDir: first.dataDir, config: config('operator-key-one-0123456789abcdefghij') });
    expect((await fetchJwks(third)).keys.map((k) => k.kid)).toEqual([firstKid]);
    await stopAndClean(third);
  });
});

describe('signing key rotation with tokens.rotationDelaySeconds: 2', () => {
  it('publishes a rotated key in the JWKS at once, keeps signing with the current key, and signs with the new one only after the delay (regression)', async () => {
    const res = await kg.admin('POST', '/v1/signing-keys/rotate');
    const rotatedAt = Date.now();
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const newKid = res.body.id as string;
    expect(Date.parse(res.body.activeFrom) - Date.parse(res.body.createdAt)).toBe(2000);
    const jwks = await fetchJwks(kg);
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([kid, newKid]));
    expect(jwks.res.headers.get('cache-control')).toBe('public, max-age=2');
    const early = await mintToken(kg, secret);
    if (Date.now() - rotatedAt < 1500) expect(decodeJwt(early).header.kid).toBe(kid);
    const polled = await pollUntil(() => mintToken(kg, secret), (t) => decodeJwt(t).header.kid === newKid, 5000);
    expect(polled.ok).toBe(true);
    expect(Date.now() - rotatedAt).toBeGreaterThanOrEqual(1900);
    for (const t of [early, polled.value]) expect((await gw(kg, '/v1/events', { headers: bearer(t) })).status).toBe(200);
    const listed = await kg.admin('GET', '/v1/signing-keys');
    expect(listed.body.items.find((i: any) => i.id === kid).retiredAt).toBe(res.body.activeFrom);
  });
});
