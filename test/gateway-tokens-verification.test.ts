// Tokens: forged and altered tokens, verification by an independent JWT library, and tokens
// across gateway workers (the rest of the token cases are in gateway-tokens.test.ts).
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, type GatewayResponse } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import {
  PRIVATE_JWK_MEMBERS, bearer, decodeJwt, editHeader, editPayload, fetchJwks, mintToken, postToken, segment,
  signEd25519, signHs256,
} from './support/tokens.js';
import { headerValue, startUpstream, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
let ups: RecordingUpstream[];
/** The keygate most cases run against: EdDSA, tokens.ttlSeconds left at its default (3600). */
let kg: Keygate;
/** tokens: { algorithm: ES256, ttlSeconds: 600 }. */
let es: Keygate;
/** gateway.workers: 2; also "another keygate" with its own data dir and signing keys. */
let wk: Keygate;
let ws: string;

const withKey = (secret: string): Record<string, string> => ({ 'x-api-key': secret });
const JSON_HEADERS = { 'content-type': 'application/json' };
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  ups = pair.all;
  const started = await Promise.allSettled([
    // A rotated signing key signs after tokens.rotationDelaySeconds: 1 s here, 300 s by default.
    startKeygate({ config: (dir) => ({ ...gatewayConfig({ events, eventsTest })(dir), tokens: { rotationDelaySeconds: 1 } }) }),
    startKeygate({ config: (dir) => ({ ...gatewayConfig({ events, eventsTest })(dir), tokens: { algorithm: 'ES256', ttlSeconds: 600 } }) }),
    startKeygate({ config: (dir) => ({ ...gatewayConfig({ events, eventsTest, gateway: { workers: 2 } })(dir), tokens: { rotationDelaySeconds: 1 } }) }),
  ]);
  const [a, b, c] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
  kg = a!;
  es = b!;
  wk = c!;
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  ws = await createWorkspace(kg, 'tokens');
});

afterAll(async () => {
  await Promise.all([stopAndClean(kg), stopAndClean(es), stopAndClean(wk)]);
});

describe('forged and altered tokens (each 401 TOKEN_INVALID, nothing forwarded)', () => {
  let key: { key: any; secret: string };
  let otherKey: { key: any; secret: string };
  let token: string;
  let kid: string;
  let publicX: string;
  let publicJwk: Record<string, any>;
  let attackerPrivate: KeyObject;
  let attackerJwk: Record<string, any>;
  /** Serves nothing useful; records whether the gateway ever fetches a `jku` / `x5u` URL. */
  let attackerServer: RecordingUpstream;

  const refused = async (forged: string, gateway: Keygate = kg): Promise<void> => {
    const res = await gw(gateway, '/v1/events', { headers: bearer(forged) });
    await expectRefused(res, 401, 'TOKEN_INVALID', [...ups, attackerServer]);
  };

  beforeAll(async () => {
    attackerServer = await startUpstream('attacker');
    key = await createKey(kg, { workspaceId: ws, name: 'forge-victim', permissions: ['*'] });
    otherKey = await createKey(kg, { workspaceId: ws, name: 'forge-other', permissions: ['*'] });
    token = await mintToken(kg, key.secret);
    kid = decodeJwt(token).header.kid as string;
    const { keys } = await fetchJwks(kg);
    publicJwk = keys.find((k) => k.kid === kid)!;
    publicX = publicJwk.x as string;
    const pairOfKeys = generateKeyPairSync('ed25519');
    attackerPrivate = pairOfKeys.privateKey;
    attackerJwk = { ...pairOfKeys.publicKey.export({ format: 'jwk' }), kid: 'attacker-1', alg: 'EdDSA', use: 'sig' };
  });

  afterAll(async () => {
    await attackerServer?.close();
  });

  it('accepts the genuine token (the baseline the forgeries below start from)', async () => {
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
    expect(publicX).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses alg "none" with the real payload and an empty signature', async () => {
    const { parts } = decodeJwt(token);
    for (const header of [{ alg: 'none' }, { alg: 'none', typ: 'JWT', kid }, { alg: 'None', kid }, { alg: 'NONE', kid }]) {
      await refused(`${segment(header)}.${parts[1]}.`);
    }
  });

  it("refuses HS256 signed with the public key's bytes (and its text, JWK and PEM forms) as the HMAC secret", async () => {
    const { payload } = decodeJwt(token);
    const header = { alg: 'HS256', typ: 'JWT', kid };
    const pem = createPublicKey({ key: publicJwk as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    for (const secret of [Buffer.from(publicX, 'base64url'), publicX, JSON.stringify(publicJwk), pem]) {
      await refused(signHs256(header, payload, secret));
    }
  });

  it('refuses a kid that does not exist', async () => {
    const { payload } = decodeJwt(token);
    await refused(signEd25519({ alg: 'EdDSA', typ: 'JWT', kid: 'sk_doesNotExist00000' }, payload, attackerPrivate));
    await refused(signEd25519({ alg: 'EdDSA', typ: 'JWT' }, payload, attackerPrivate));
  });

  it('refuses a kid like "../../etc/passwd", signed by an attacker or with the genuine signature', async () => {
    const { payload } = decodeJwt(token);
    await refused(signEd25519({ alg: 'EdDSA', typ: 'JWT', kid: '../../etc/passwd' }, payload, attackerPrivate));
    await refused(editHeader(token, (h) => ({ ...h, kid: '../../etc/passwd' })));
    await refused(editHeader(token, (h) => ({ ...h, kid: `${kid}/../${kid}` })));
  });

  it("refuses headers naming an attacker's key by jku, x5u or an embedded jwk, and never fetches those URLs", async () => {
    const { payload } = decodeJwt(token);
    const base = { alg: 'EdDSA', typ: 'JWT' };
    const headers = [
      { ...base, kid: attackerJwk.kid, jku: `${attackerServer.url}/jwks.json` },
      { ...base, kid: attackerJwk.kid, x5u: `${attackerServer.url}/cert.pem` },
      { ...base, kid: attackerJwk.kid, jwk: attackerJwk },
      // The genuine kid, with the attacker's key embedded next to it.
      { ...base, kid, jwk: { ...attackerJwk, kid } },
      { ...base, kid, jku: `${attackerServer.url}/jwks.json` },
    ];
    for (const h of headers) await refused(signEd25519(h, payload, attackerPrivate));
    expect(attackerServer.started).toEqual([]);
  });

  it("refuses a genuine token whose header was altered (jku added, typ changed, alg switched to ES256): the signature covers the header", async () => {
    await refused(editHeader(token, (h) => ({ ...h, jku: `${attackerServer.url}/jwks.json` })));
    await refused(editHeader(token, (h) => ({ ...h, typ: 'at+jwt' })));
    await refused(editHeader(token, (h) => ({ ...h, alg: 'ES256' })));
  });

  it('refuses a token without exp: self-signed, and the genuine token with exp removed', async () => {
    const { payload } = decodeJwt(token);
    const { exp: _exp, ...noExp } = payload;
    await refused(signEd25519({ alg: 'EdDSA', typ: 'JWT', kid }, noExp, attackerPrivate));
    await refused(editPayload(token, ({ exp: _e, ...rest }) => rest));
  });

  it('refuses the genuine token with exp moved more than 60 s into the past', async () => {
    await refused(editPayload(token, (p) => ({ ...p, exp: nowSeconds() - 120, iat: nowSeconds() - 3720 })));
  });

  it('refuses the genuine token with nbf set in the future', async () => {
    await refused(editPayload(token, (p) => ({ ...p, nbf: nowSeconds() + 3600 })));
  });

  it('refuses the genuine signature over an edited payload: another key (sub and key), another key version, an added profile, another workspace', async () => {
    expect((await gw(kg, '/v1/events', { headers: withKey(otherKey.secret) })).status).toBe(200);
    events.reset();
    await refused(editPayload(token, (p) => ({ ...p, sub: otherKey.key.id, key: otherKey.key.id })));
    await refused(editPayload(token, (p) => ({ ...p, sub: otherKey.key.id })));
    await refused(editPayload(token, (p) => ({ ...p, kv: (p.kv as number) + 1 })));
    await refused(editPayload(token, (p) => ({ ...p, prof: 'user-42' })));
    await refused(editPayload(token, (p) => ({ ...p, ws: '00000000-0000-4000-8000-000000000000' })));
  });

  it('refuses a fourth segment appended (".abc"), a trailing dot, a changed signature character and a missing signature', async () => {
    const [h, p, s] = decodeJwt(token).parts;
    const i = Math.floor(s.length / 2);
    const flipped = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    for (const forged of [`${token}.abc`, `${token}.`, `${h}.${p}.${flipped}`, `${h}.${p}.`]) await refused(forged);
    // The genuine token still works: nothing above poisoned it.
    expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
  });

  it('refuses a token minted by another keygate instance (own data dir and signing keys), either way round', async () => {
    const otherWs = await createWorkspace(wk, 'elsewhere');
    const elsewhere = await createKey(wk, { workspaceId: otherWs, name: 'elsewhere', permissions: ['*'] });
    const foreign = await mintToken(wk, elsewhere.secret);
    expect((await gw(wk, '/v1/events', { headers: bearer(foreign) })).status).toBe(200);
    events.reset();
    await refused(foreign, kg);
    await refused(token, wk);
  });

  it('refuses a token from the ES256 instance', async () => {
    const esWs = await createWorkspace(es, 'es-foreign');
    const esKey = await createKey(es, { workspaceId: esWs, name: 'es-foreign', permissions: ['*'] });
    await refused(await mintToken(es, esKey.secret), kg);
  });
});

describe('interoperability with an independent JWT library (fast-jwt)', () => {
  it('verifies an EdDSA token against the JWKS key turned into a PEM, with iss, sub and exp as minted', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'interop-eddsa', permissions: ['*'] });
    const token = await mintToken(kg, k.secret);
    const { kid } = decodeJwt(token).header;
    const { keys } = await fetchJwks(kg);
    const jwk = keys.find((j) => j.kid === kid);
    expect(jwk).toBeDefined();
    const pem = createPublicKey({ key: jwk as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    const verify = createVerifier({ key: pem, algorithms: ['EdDSA'], allowedIss: 'keygate', complete: true });
    const out = verify(token) as unknown as { header: Record<string, unknown>; payload: Record<string, any> };
    expect(out.header.kid).toBe(kid);
    expect(out.payload.iss).toBe('keygate');
    expect(out.payload.sub).toBe(k.key.id);
    expect(out.payload.exp).toBe(out.payload.iat + 3600);
    // The same verifier rejects an altered payload: it really checked the signature.
    expect(() => verify(editPayload(token, (p) => ({ ...p, sub: 'someone-else' })))).toThrow();
  });

  it('publishes a P-256 key (kty EC, crv P-256, alg ES256, x and y, no d) when tokens.algorithm is ES256', async () => {
    const { keys, res } = await fetchJwks(es);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
      expect(typeof k.x).toBe('string');
      expect(typeof k.y).toBe('string');
      for (const m of PRIVATE_JWK_MEMBERS) expect(k).not.toHaveProperty(m);
    }
    expect(res.text).not.toMatch(/"d"\s*:/);
  });

  it('mints ES256 tokens (64-byte raw signature, expiresIn and exp following tokens.ttlSeconds 600) that fast-jwt verifies with algorithms [ES256]', async () => {
    const esWs = await createWorkspace(es, 'es');
    const k = await createKey(es, { workspaceId: esWs, name: 'interop-es256', permissions: ['*'] });
    const res = await postToken(es, { apiKey: k.secret });
    expect(res.status, res.text).toBe(200);
    expect(res.body.expiresIn).toBe(600);
    const token = res.body.token as string;
    const { header, payload, parts } = decodeJwt(token);
    expect(header.alg).toBe('ES256');
    expect(Buffer.from(parts[2], 'base64url')).toHaveLength(64);
    expect(payload.exp).toBe(payload.iat + 600);
    const { keys } = await fetchJwks(es);
    const jwk = keys.find((j) => j.kid === header.kid);
    expect(jwk).toBeDefined();
    const pem = createPublicKey({ key: jwk as any, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    const verified = createVerifier({ key: pem, algorithms: ['ES256'] })(token) as unknown as Record<string, any>;
    expect(verified).toMatchObject({ iss: 'keygate', sub: k.key.id, ws: esWs, exp: payload.exp });
    const used = await gw(es, '/v1/events', { headers: bearer(token) });
    expect(used.status, used.text).toBe(200);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-key-id')).toBe(k.key.id);
  });
});

describe('gateway.workers: 2', () => {
  let wkWs: string;
  /** Which worker answered: request ids carry a per-process prefix (as in gateway-workers.test.ts; not a contract). */
  const workerOf = (res: GatewayResponse): string => (res.headers.get('x-request-id') ?? '').slice(0, 8);
  const batch = async (token: string, n = 20): Promise<GatewayResponse[]> => {
    const out: GatewayResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await gw(wk, '/v1/events', { headers: { ...bearer(token), connection: 'close' } }));
    return out;
  };

  beforeAll(async () => {
    wkWs = await createWorkspace(wk, 'workers-tokens');
  });

  it('mints on either worker, and each token works on both across 20 Connection: close requests', async () => {
    const k = await createKey(wk, { workspaceId: wkWs, name: 'workers-mint', permissions: ['*'] });
    const mints: GatewayResponse[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await gw(wk, '/auth/token', { method: 'POST', headers: { ...JSON_HEADERS, connection: 'close' }, body: JSON.stringify({ apiKey: k.secret }) });
      expect(res.status, res.text).toBe(200);
      mints.push(res);
    }
    const byWorker = new Map(mints.map((m) => [workerOf(m), m.body.token as string]));
    expect(byWorker.size, 'mints answered by both workers').toBe(2);
    for (const token of byWorker.values()) {
      const res = await batch(token);
      expect(res.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(new Set(res.map(workerOf)).size, 'both workers answered').toBe(2);
    }
  });

  it('after a signing-key rotation, every worker signs with the new kid and accepts tokens of both the old and the new kid', async () => {
    const k = await createKey(wk, { workspaceId: wkWs, name: 'workers-rotation', permissions: ['*'] });
    const old = await mintToken(wk, k.secret);
    const rot = await wk.admin('POST', '/v1/signing-keys/rotate');
    expect(rot.status, JSON.stringify(rot.body)).toBe(201);
    const newKid = rot.body.id as string;
    const byWorker = new Map<string, string>();
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      const res = await gw(wk, '/auth/token', { method: 'POST', headers: { ...JSON_HEADERS, connection: 'close' }, body: JSON.stringify({ apiKey: k.secret }) });
      expect(res.status, res.text).toBe(200);
      if (decodeJwt(res.body.token).header.kid === newKid) byWorker.set(workerOf(res), res.body.token as string);
      if (byWorker.size === 2) break;
    }
    expect(byWorker.size, 'both workers minted with the new kid').toBe(2);
    for (const token of [old, ...byWorker.values()]) {
      const res = await batch(token);
      expect(res.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(new Set(res.map(workerOf)).size, 'both workers answered').toBe(2);
    }
  });

  it("answers 401 TOKEN_INVALID on every worker within 1 s of the token's key being deleted", async () => {
    const k = await createKey(wk, { workspaceId: wkWs, name: 'workers-delete', permissions: ['*'] });
    const token = await mintToken(wk, k.secret);
    const warm = await batch(token);
    expect(warm.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect((await wk.admin('DELETE', `/v1/keys/${k.key.id}`)).status).toBe(204);
    const since = Date.now();
    let last: GatewayResponse[] = [];
    let ms = 0;
    for (;;) {
      const batchStart = Date.now();
      last = await batch(token);
      ms = batchStart - since;
      if (last.every((r) => r.status === 401) || Date.now() - since > 5000) break;
    }
    expect(last.map((r) => r.body?.error?.code)).toEqual(Array(20).fill('TOKEN_INVALID'));
    expect(ms, `all workers refused after ${ms} ms`).toBeLessThan(1000);
    const again = await batch(token);
    expect(again.map((r) => r.body?.error?.code)).toEqual(Array(20).fill('TOKEN_INVALID'));
    expect(new Set([...last, ...again].map(workerOf)).size, 'both workers answered').toBe(2);
    events.reset();
    await expectRefused(await gw(wk, '/v1/events', { headers: bearer(token) }), 401, 'TOKEN_INVALID', ups);
  });
});
