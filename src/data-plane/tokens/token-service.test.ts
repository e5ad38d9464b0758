import { describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import { SigningKeyCipher } from '../../domain/signing-key-cipher.js';
import type { SigningAlgorithm, SigningKeyRecord } from '../../domain/signing-key.js';
import { CLOCK_SKEW_SECONDS, TokenService, type TokenClaims } from './token-service.js';

const ISSUER = 'https://keygate.test';
const TTL = 300;

async function signingKey(id: string, alg: SigningAlgorithm = 'EdDSA', retiredAt: string | null = null): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = alg === 'EdDSA'
    ? await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' })
    : await generateKeyPair('ES256', { extractable: true });
  return {
    id, alg,
    publicJwk: { ...(await exportJWK(publicKey)) },
    privateJwk: { ...(await exportJWK(privateKey)) },
    createdAt: new Date().toISOString(),
    retiredAt,
    version: 1,
  };
}

const CLAIMS: TokenClaims = {
  key: 'key_abc', profile: null, ws: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', typ: 'workspace', env: 'live', kv: 3, sfp: 'fingerprint1',
};

async function serviceWith(...records: SigningKeyRecord[]): Promise<TokenService> {
  const svc = new TokenService(ISSUER, TTL);
  await svc.setKeys(records);
  return svc;
}

function decodePart(token: string, i: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[i]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('TokenService', () => {
  it('is not ready and refuses to mint before it has a signing key', async () => {
    const svc = new TokenService(ISSUER, TTL);
    expect(svc.ready).toBe(false);
    await expect(svc.mint(CLAIMS)).rejects.toThrow();
  });

  it('is ready once it has an active signing key', async () => {
    expect((await serviceWith(await signingKey('sk_1'))).ready).toBe(true);
  });

  it('verifies a token it minted and returns its key, profile, fingerprint and expiry', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const now = Date.now();
    const { token, expiresIn } = await svc.mint(CLAIMS, now);
    expect(expiresIn).toBe(TTL);
    expect(await svc.verify(token)).toEqual({
      keyId: 'key_abc', profile: null, secretFingerprint: 'fingerprint1', expiresAt: (Math.floor(now / 1000) + TTL) * 1000,
    });
  });

  it('round-trips the profile of a profile token and makes it the subject', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint({ ...CLAIMS, profile: 'user-42' });
    expect((await svc.verify(token))?.profile).toBe('user-42');
    expect(decodePart(token, 1).sub).toBe('user-42');
  });

  it('writes the contract claims and a kid naming the signing key', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint(CLAIMS);
    const header = decodePart(token, 0);
    const payload = decodePart(token, 1);
    expect(header).toMatchObject({ alg: 'EdDSA', kid: 'sk_1' });
    expect(payload).toMatchObject({ iss: ISSUER, sub: 'key_abc', ws: CLAIMS.ws, typ: 'workspace', env: 'live', kv: 3 });
    expect(typeof payload.jti).toBe('string');
    expect((payload.exp as number) - (payload.iat as number)).toBe(TTL);
  });

  it('gives every token its own jti', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const a = await svc.mint(CLAIMS);
    const b = await svc.mint(CLAIMS);
    expect(decodePart(a.token, 1).jti).not.toBe(decodePart(b.token, 1).jti);
  });

  it('publishes the public key in the JWKS without its private part', async () => {
    const rec = await signingKey('sk_1');
    const svc = await serviceWith(rec);
    const jwks = JSON.parse(svc.jwksJson()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: 'sk_1', alg: 'EdDSA', use: 'sig', x: rec.publicJwk.x });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(svc.jwksJson()).not.toContain(rec.privateJwk!.d as string);
  });

  it('publishes an empty JWKS before any key is set', () => {
    expect(JSON.parse(new TokenService(ISSUER, TTL).jwksJson())).toEqual({ keys: [] });
  });

  it('refuses a token signed by another key set', async () => {
    const other = await serviceWith(await signingKey('sk_1'));
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await other.mint(CLAIMS);
    expect(await svc.verify(token)).toBeNull();
  });

  it('refuses a token from another issuer signed with the right key', async () => {
    const rec = await signingKey('sk_1');
    const other = new TokenService('https://elsewhere.test', TTL);
    await other.setKeys([rec]);
    const svc = await serviceWith(rec);
    expect(await svc.verify((await other.mint(CLAIMS)).token)).toBeNull();
  });

  it('still verifies a token from a key retired just now', async () => {
    const a = await signingKey('sk_a');
    const svc = await serviceWith(a);
    const { token } = await svc.mint(CLAIMS);
    const b = await signingKey('sk_b');
    await svc.setKeys([{ ...a, retiredAt: new Date().toISOString() }, b]);
    expect((await svc.verify(token))?.keyId).toBe('key_abc');
    expect((JSON.parse(svc.jwksJson()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort()).toEqual(['sk_a', 'sk_b']);
  });

  it('signs new tokens with the active key once the old one is retired', async () => {
    const a = await signingKey('sk_a');
    const b = await signingKey('sk_b');
    const svc = await serviceWith({ ...a, retiredAt: new Date().toISOString() }, b);
    expect(decodePart((await svc.mint(CLAIMS)).token, 0).kid).toBe('sk_b');
  });

  it('drops a key retired longer ago than the token lifetime plus skew from the JWKS and verification', async () => {
    const a = await signingKey('sk_a');
    const svc = await serviceWith(a);
    const { token } = await svc.mint(CLAIMS);
    const longAgo = new Date(Date.now() - (TTL + CLOCK_SKEW_SECONDS + 5) * 1000).toISOString();
    await svc.setKeys([{ ...a, retiredAt: longAgo }, await signingKey('sk_b')]);
    expect((JSON.parse(svc.jwksJson()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)).toEqual(['sk_b']);
    expect(await svc.verify(token)).toBeNull();
  });

  it('is not ready when its only key is retired', async () => {
    const svc = await serviceWith(await signingKey('sk_a', 'EdDSA', new Date().toISOString()));
    expect(svc.ready).toBe(false);
  });

  it('refuses an unsigned alg:none token', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const now = Math.floor(Date.now() / 1000);
    const token = new UnsecuredJWT({ key: 'key_abc', sfp: 'fingerprint1', jti: 'j' })
      .setIssuer(ISSUER).setSubject('key_abc').setIssuedAt(now).setExpirationTime(now + 60).encode();
    expect(await svc.verify(token)).toBeNull();
  });

  it('refuses an alg:none token that names a known kid', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint(CLAIMS);
    const header = Buffer.from(JSON.stringify({ alg: 'none', kid: 'sk_1', typ: 'JWT' })).toString('base64url');
    const [, payload] = token.split('.');
    expect(await svc.verify(`${header}.${payload}.`)).toBeNull();
  });

  it('refuses an HS256 token keyed with the published public key', async () => {
    const rec = await signingKey('sk_1');
    const svc = await serviceWith(rec);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ key: 'key_abc', sfp: 'fingerprint1' })
      .setProtectedHeader({ alg: 'HS256', kid: 'sk_1' })
      .setIssuer(ISSUER).setSubject('key_abc').setIssuedAt(now).setExpirationTime(now + 60).setJti('j')
      .sign(new TextEncoder().encode(JSON.stringify(rec.publicJwk)));
    expect(await svc.verify(token)).toBeNull();
  });

  it('refuses a token whose payload was tampered with', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint(CLAIMS);
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = decodePart(token, 1);
    const forged = Buffer.from(JSON.stringify({ ...payload, key: 'key_other' })).toString('base64url');
    expect(forged).not.toBe(p);
    expect(await svc.verify(`${h}.${forged}.${s}`)).toBeNull();
  });

  it('refuses a token whose signature was tampered with', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint(CLAIMS);
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[0] = sig[0]! ^ 0xff;
    expect(await svc.verify(`${h}.${p}.${sig.toString('base64url')}`)).toBeNull();
  });

  it('refuses a token signed by a foreign key under a known kid', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const forger = await serviceWith(await signingKey('sk_1'));
    expect(await svc.verify((await forger.mint(CLAIMS)).token)).toBeNull();
  });

  it('refuses a token past its expiry plus the clock skew', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint(CLAIMS, Date.now() - (TTL + CLOCK_SKEW_SECONDS + 5) * 1000);
    expect(await svc.verify(token)).toBeNull();
  });

  it('accepts a token just past its expiry but within the clock skew', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    const { token } = await svc.mint(CLAIMS, Date.now() - (TTL + CLOCK_SKEW_SECONDS - 10) * 1000);
    expect(await svc.verify(token)).not.toBeNull();
  });

  it('refuses text that is not a JWT', async () => {
    const svc = await serviceWith(await signingKey('sk_1'));
    expect(await svc.verify('not.a.jwt')).toBeNull();
  });

  it('mints and verifies with an ES256 key', async () => {
    const svc = await serviceWith(await signingKey('sk_es', 'ES256'));
    const { token } = await svc.mint(CLAIMS);
    expect(decodePart(token, 0)).toMatchObject({ alg: 'ES256', kid: 'sk_es' });
    expect(await svc.verify(token)).toMatchObject({ keyId: 'key_abc', secretFingerprint: 'fingerprint1' });
    const jwks = JSON.parse(svc.jwksJson()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys[0]).toMatchObject({ kid: 'sk_es', alg: 'ES256', kty: 'EC', crv: 'P-256' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('verifies tokens of both algorithms when holding an EdDSA and an ES256 key', async () => {
    const ed = await signingKey('sk_ed');
    const svc = await serviceWith(ed);
    const edToken = (await svc.mint(CLAIMS)).token;
    await svc.setKeys([{ ...ed, retiredAt: new Date().toISOString() }, await signingKey('sk_es', 'ES256')]);
    const esToken = (await svc.mint(CLAIMS)).token;
    expect(await svc.verify(edToken)).not.toBeNull();
    expect(await svc.verify(esToken)).not.toBeNull();
  });
});

/** A token signed with `rec`'s own private key, claims as given (iss and aud this service's unless overridden). */
async function forge(rec: SigningKeyRecord, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: 'keygate', sub: 'key_abc', key: 'key_abc', sfp: 'fingerprint1', jti: 'j', ...claims })
    .setProtectedHeader({ alg: rec.alg, kid: rec.id })
    .sign(await importJWK(rec.privateJwk!, rec.alg));
}

describe('TokenService: lifetime, audience and activation', () => {
  const nowS = Math.floor(Date.now() / 1000);

  it('refuses a token signed with its own key that lives longer than ttlSeconds: 10 days, 100 years, ttl + 1 s (regression)', async () => {
    const rec = await signingKey('sk_1');
    const svc = await serviceWith(rec);
    expect(await svc.verify(await forge(rec, { iat: nowS, exp: nowS + TTL }))).not.toBeNull();
    for (const life of [10 * 86_400, 100 * 365 * 86_400, TTL + 1]) {
      expect(await svc.verify(await forge(rec, { iat: nowS, exp: nowS + life }))).toBeNull();
    }
  });

  it('refuses a token signed with its own key whose iat is more than the clock skew ahead, or absent (regression)', async () => {
    const rec = await signingKey('sk_1');
    const svc = await serviceWith(rec);
    const now = nowS * 1000;
    expect(await svc.verify(await forge(rec, { iat: nowS + CLOCK_SKEW_SECONDS, exp: nowS + CLOCK_SKEW_SECONDS + 60 }), now)).not.toBeNull();
    expect(await svc.verify(await forge(rec, { iat: nowS + CLOCK_SKEW_SECONDS + 1, exp: nowS + CLOCK_SKEW_SECONDS + 61 }), now)).toBeNull();
    expect(await svc.verify(await forge(rec, { iat: nowS + 86_400, exp: nowS + 86_400 + TTL }), now)).toBeNull();
    expect(await svc.verify(await forge(rec, { exp: nowS + 60 }), now)).toBeNull();
  });

  it('mints aud = the configured audience and refuses a token of its own key for another audience or none (regression)', async () => {
    const rec = await signingKey('sk_1');
    const svc = new TokenService(ISSUER, TTL, { audience: 'https://api.example.com' });
    await svc.setKeys([rec]);
    const { token } = await svc.mint(CLAIMS);
    expect(decodePart(token, 1).aud).toBe('https://api.example.com');
    expect(await svc.verify(token)).not.toBeNull();
    expect(await svc.verify(await forge(rec, { iat: nowS, exp: nowS + 60, aud: 'keygate' }))).toBeNull();
    expect(await svc.verify(await forge(rec, { iat: nowS, exp: nowS + 60, aud: undefined }))).toBeNull();
    expect(decodePart((await (await serviceWith(rec)).mint(CLAIMS)).token, 1).aud).toBe('keygate');
  });

  it('publishes a key that becomes active later at once, and signs with it only from its activeFrom (regression)', async () => {
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const old = { ...(await signingKey('sk_old')), createdAt: new Date(t0 - 86_400_000).toISOString() };
    const at = new Date(t0 + 300_000).toISOString();
    const next = { ...(await signingKey('sk_new')), createdAt: new Date(t0).toISOString(), activeFrom: at };
    const svc = new TokenService(ISSUER, TTL, { rotationDelaySeconds: 300 });
    await svc.setKeys([{ ...old, retiredAt: at }, next], t0);
    expect((JSON.parse(svc.jwksJson()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort()).toEqual(['sk_new', 'sk_old']);
    expect(svc.jwksCacheControl).toBe('public, max-age=300');
    expect(decodePart((await svc.mint(CLAIMS, t0)).token, 0).kid).toBe('sk_old');
    expect(decodePart((await svc.mint(CLAIMS, t0 + 299_999)).token, 0).kid).toBe('sk_old');
    expect(decodePart((await svc.mint(CLAIMS, t0 + 300_000)).token, 0).kid).toBe('sk_new');
    expect(new TokenService(ISSUER, TTL, { rotationDelaySeconds: 5 }).jwksCacheControl).toBe('public, max-age=5');
  });

  it('opens a sealed private half with its cipher, and signs nothing without the right one', async () => {
    const rec = await signingKey('sk_1');
    const cipher = SigningKeyCipher.fromSecrets({ pepper: 'test-pepper-0123456789abcdef' });
    const { privateJwk, ...rest } = rec;
    const sealed: SigningKeyRecord = { ...rest, sealedPrivateJwk: cipher.seal(rec, privateJwk!) };
    const svc = new TokenService(ISSUER, TTL, { cipher });
    await svc.setKeys([sealed]);
    expect(await svc.verify((await svc.mint(CLAIMS)).token)).not.toBeNull();
    const wrong = new TokenService(ISSUER, TTL, { cipher: SigningKeyCipher.fromSecrets({ pepper: 'another-pepper-0123456789abcdef' }) });
    await expect(wrong.setKeys([sealed])).rejects.toThrow(/cannot decrypt token signing key sk_1/);
  });
});
