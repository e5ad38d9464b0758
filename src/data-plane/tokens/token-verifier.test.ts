import { describe, expect, it, vi } from 'vitest';
import { exportJWK, generateKeyPair } from 'jose';
import type { KeyRecord } from '../../domain/api-key.js';
import { generateSecret, hashSecret } from '../../domain/secret.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import type { RequestContext } from '../pipeline/context.js';
import { CredentialMemo, KeyResolver } from '../key-resolver.js';
import type { KeySource } from '../../store/key-source.js';
import { CLOCK_SKEW_SECONDS, TokenService } from './token-service.js';
import { TokenVerifier } from './token-verifier.js';
import { secretFingerprint } from '../../domain/secret.js';
import { keyRecord } from '../../../test/support/fixtures.js';

const PEPPER = 'unit-test-pepper';
const WS = '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
const TTL = 300;


async function signingKey(): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' });
  return { id: 'sk_1', alg: 'EdDSA', publicJwk: { ...(await exportJWK(publicKey)) }, privateJwk: { ...(await exportJWK(privateKey)) }, createdAt: new Date().toISOString(), retiredAt: null, version: 1 };
}

async function setup() {
  const { secret } = generateSecret('live');
  const hash = hashSecret(PEPPER, secret);
  const state: { record: KeyRecord | null; fail: boolean } = { record: keyRecord({ secretHash: hash }), fail: false };
  const source: KeySource = {
    lookup: async () => null,
    lookupById: async (id) => {
      if (state.fail) throw new Error('store down');
      return state.record && state.record.id === id ? { record: state.record, owner: null } : null;
    },
  };
  const resolver = new KeyResolver({ source, pepper: PEPPER, fresh: () => true, stats: { hit() {}, miss() {}, storeError() {} } });
  const service = new TokenService('https://keygate.test', TTL);
  await service.setKeys([await signingKey()]);
  const verify = vi.spyOn(service, 'verify');
  const verifier = new TokenVerifier(service, resolver);
  const mint = async (profile: string | null = null, fingerprintOf = hash) => (await service.mint({
    key: 'key_1', profile, ws: WS, typ: 'workspace', env: 'live', kv: 1, sfp: secretFingerprint(fingerprintOf),
  })).token;
  /** Simulates a key change arriving on the change feed. */
  const changed = () => resolver.apply([{ version: 2, kind: 'key', id: 'key_1', op: 'put', at: Date.now() }]);
  return { secret, hash, state, service, verify, verifier, mint, changed };
}

/** A request's context; `credential` is its connection's memo (a new connection by default). */
function ctxAt(now = Date.now(), credential = new CredentialMemo()): RequestContext {
  return { now, policy: null, profile: null, credential } as unknown as RequestContext;
}

describe('TokenVerifier', () => {
  it('admits a valid token and binds the key policy', async () => {
    const { verifier, mint } = await setup();
    const ctx = ctxAt();
    expect(await verifier.verify(ctx, await mint())).toBeNull();
    expect(ctx.policy?.keyId).toBe('key_1');
    expect(ctx.profile).toBeNull();
  });

  it('sets the profile from a profile token', async () => {
    const { verifier, mint } = await setup();
    const ctx = ctxAt();
    expect(await verifier.verify(ctx, await mint('user-42'))).toBeNull();
    expect(ctx.profile).toBe('user-42');
  });

  it('does not check the signature again for a token it has already verified', async () => {
    const { verifier, mint, verify } = await setup();
    const token = await mint();
    await verifier.verify(ctxAt(), token);
    const ctx = ctxAt();
    expect(await verifier.verify(ctx, token)).toBeNull();
    expect(ctx.policy?.keyId).toBe('key_1');
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('remembers a token that failed verification', async () => {
    const { verifier, verify } = await setup();
    const bogus = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrZXlfMSJ9.c2lnbmF0dXJl';
    expect(await verifier.verify(ctxAt(), bogus)).toBe('TOKEN_INVALID');
    expect(await verifier.verify(ctxAt(), bogus)).toBe('TOKEN_INVALID');
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('refuses a cached token once it has expired', async () => {
    const { verifier, mint, verify } = await setup();
    const token = await mint();
    expect(await verifier.verify(ctxAt(), token)).toBeNull();
    const later = Date.now() + (TTL + CLOCK_SKEW_SECONDS + 1) * 1000;
    const ctx = ctxAt(later);
    expect(await verifier.verify(ctx, token)).toBe('TOKEN_INVALID');
    expect(ctx.policy).toBeNull();
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('refuses a token whose key was deleted', async () => {
    const { verifier, mint, state } = await setup();
    const token = await mint();
    state.record = null;
    expect(await verifier.verify(ctxAt(), token)).toBe('TOKEN_INVALID');
  });

  it('refuses a cached token once its key is deleted', async () => {
    const { verifier, mint, state, changed } = await setup();
    const token = await mint();
    expect(await verifier.verify(ctxAt(), token)).toBeNull();
    state.record = null;
    changed();
    expect(await verifier.verify(ctxAt(), token)).toBe('TOKEN_INVALID');
  });

  it('refuses a token whose secret was rotated with no grace', async () => {
    const { verifier, mint, state, changed } = await setup();
    const token = await mint();
    expect(await verifier.verify(ctxAt(), token)).toBeNull();
    state.record = keyRecord({ secretHash: hashSecret(PEPPER, generateSecret('live').secret), version: 2 });
    changed();
    const ctx = ctxAt();
    expect(await verifier.verify(ctx, token)).toBe('TOKEN_INVALID');
    expect(ctx.policy).toBeNull();
  });

  it('admits a token whose secret was rotated but is still in its grace period', async () => {
    const { verifier, mint, state, hash } = await setup();
    state.record = keyRecord({
      secretHash: hashSecret(PEPPER, generateSecret('live').secret),
      retiredSecrets: [{ hash, expiresAt: new Date(Date.now() + 60_000).toISOString() }],
    });
    expect(await verifier.verify(ctxAt(), await mint())).toBeNull();
  });

  it('refuses a token whose retired secret is past its grace period', async () => {
    const { verifier, mint, state, hash } = await setup();
    state.record = keyRecord({
      secretHash: hashSecret(PEPPER, generateSecret('live').secret),
      retiredSecrets: [{ hash, expiresAt: new Date(Date.now() - 1).toISOString() }],
    });
    expect(await verifier.verify(ctxAt(), await mint())).toBe('TOKEN_INVALID');
  });

  it('answers STORE_UNAVAILABLE when the key cannot be read', async () => {
    const { verifier, mint, state } = await setup();
    state.fail = true;
    expect(await verifier.verify(ctxAt(), await mint())).toBe('STORE_UNAVAILABLE');
  });

  it('binds the key current state, leaving its status to later stages', async () => {
    const { verifier, mint, state, hash } = await setup();
    state.record = keyRecord({ secretHash: hash, enabled: false });
    const ctx = ctxAt();
    expect(await verifier.verify(ctx, await mint())).toBeNull();
    expect(ctx.policy?.status(ctx.now)).toBe('disabled');
  });
});

describe('TokenVerifier and signing key changes', () => {
  it('admits a token signed by a key that arrived after the token was first refused', async () => {
    // Another process can rotate the signing key and mint with the new one before this
    // process has loaded it; once the key arrives, the token is valid here too.
    const { verifier, service, state, hash } = await setup();
    const newKey = { ...(await signingKey()), id: 'sk_2' };
    const minter = new TokenService('https://keygate.test', TTL);
    await minter.setKeys([newKey]);
    const { token } = await minter.mint({ key: 'key_1', profile: null, ws: WS, typ: 'workspace', env: 'live', kv: 1, sfp: secretFingerprint(hash) });
    expect(state.record).not.toBeNull();
    expect(await verifier.verify(ctxAt(), token)).toBe('TOKEN_INVALID');
    await service.setKeys([newKey]);
    expect(await service.verify(token)).not.toBeNull();
    expect(await verifier.verify(ctxAt(), token)).toBeNull();
  });

  describe('on a keep-alive connection (the connection remembers its last token)', () => {
    it('answers a repeated token from the connection, still checking its expiry and key every time', async () => {
      const { verifier, mint, verify, state, changed } = await setup();
      const token = await mint();
      const conn = new CredentialMemo();
      expect(await verifier.verify(ctxAt(Date.now(), conn), token)).toBeNull();
      expect(await verifier.verify(ctxAt(Date.now(), conn), token)).toBeNull();
      expect(conn.verified?.keyId).toBe('key_1');
      const ctx = ctxAt(Date.now(), conn);
      expect(verifier.verify(ctx, token)).toBeNull(); // synchronous
      expect(ctx.policy?.keyId).toBe('key_1');
      expect(verify).toHaveBeenCalledTimes(1);
      expect(await verifier.verify(ctxAt(Date.now() + (TTL + CLOCK_SKEW_SECONDS + 1) * 1000, conn), token)).toBe('TOKEN_INVALID');
      state.record = null;
      changed();
      expect(await verifier.verify(ctxAt(Date.now(), conn), token)).toBe('TOKEN_INVALID');
    });

    it('does not answer another token from the connection, nor remember a refused one', async () => {
      const { verifier, mint } = await setup();
      const a = await mint();
      const b = await mint('prof_1');
      const conn = new CredentialMemo();
      await verifier.verify(ctxAt(Date.now(), conn), a);
      await verifier.verify(ctxAt(Date.now(), conn), a);
      const ctx = ctxAt(Date.now(), conn);
      expect(await verifier.verify(ctx, b)).toBeNull();
      expect(ctx.profile).toBe('prof_1');
      // A forged token (a's signature on other claims) is refused, on the same connection too.
      const forged = `${b.split('.')[0]}.${b.split('.')[1]}.${a.split('.')[2]}`;
      expect(await verifier.verify(ctxAt(Date.now(), conn), forged)).toBe('TOKEN_INVALID');
      expect(await verifier.verify(ctxAt(Date.now(), conn), forged)).toBe('TOKEN_INVALID');
      expect(conn.token).not.toBe(forged);
    });
  });
});
