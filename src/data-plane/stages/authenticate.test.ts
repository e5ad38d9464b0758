import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../domain/api-key.js';
import { BASE62 } from '../../domain/ids.js';
import { generateSecret, hashSecret } from '../../domain/secret.js';
import type { RequestContext } from '../pipeline/context.js';
import { scanHeaders } from '../request/credentials.js';
import { KeyResolver } from '../key-resolver.js';
import type { KeySource } from '../../store/key-source.js';
import type { TokenVerifier } from '../tokens/token-verifier.js';
import { authenticateStage } from './authenticate.js';
import { keyRecord } from '../../../test/support/fixtures.js';

const PEPPER = 'unit-test-pepper';
const WS = '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
const OTHER_WS = '9e8d7c6b-5a49-4382-a716-a5f4e3d2c1b0';
const NOW = Date.parse('2030-01-01T00:00:00.000Z');


function setup(recOver: Partial<KeyRecord> = {}, opts: { fail?: boolean; tokens?: TokenVerifier | null } = {}) {
  const { secret } = generateSecret('live');
  const rec = keyRecord({ secretHash: hashSecret(PEPPER, secret), ...recOver });
  const calls = { lookup: 0 };
  const source: KeySource = {
    lookup: async (hash) => {
      calls.lookup++;
      if (opts.fail) throw new Error('store down');
      return hash === rec.secretHash ? { record: rec, owner: null } : null;
    },
    lookupById: async () => null,
  };
  const resolver = new KeyResolver({ source, pepper: PEPPER, fresh: () => true, stats: { hit() {}, miss() {}, storeError() {} }, now: () => NOW });
  const stage = authenticateStage(resolver, opts.tokens === undefined ? null : opts.tokens);
  return { secret, rec, calls, stage };
}

function ctxWith(headers: string[]): RequestContext {
  return { scan: scanHeaders(headers), now: NOW, policy: null, profile: null } as unknown as RequestContext;
}

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`, 'utf8').toString('base64')}`;

/** The same secret with its last checksum character changed. */
function badChecksum(secret: string): string {
  const last = secret.at(-1)!;
  return secret.slice(0, -1) + BASE62[(BASE62.indexOf(last) + 1) % BASE62.length];
}

const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrZXlfMSJ9.c2lnbmF0dXJl';

describe('authenticateStage', () => {
  it('refuses a request without a credential with UNAUTHENTICATED', async () => {
    const { stage } = setup();
    expect(await stage(ctxWith([]))).toBe('UNAUTHENTICATED');
  });

  it('refuses two credentials with AMBIGUOUS_CREDENTIALS', async () => {
    const { stage, secret, calls } = setup();
    expect(await stage(ctxWith(['X-Api-Key', secret, 'Authorization', `Bearer ${secret}`]))).toBe('AMBIGUOUS_CREDENTIALS');
    expect(calls.lookup).toBe(0);
  });

  it('refuses an unusable credential header with UNAUTHENTICATED', async () => {
    const { stage } = setup();
    expect(await stage(ctxWith(['X-Api-Key', '']))).toBe('UNAUTHENTICATED');
  });

  it('refuses a secret with a bad checksum without calling the source', async () => {
    const { stage, secret, calls } = setup();
    expect(await stage(ctxWith(['X-Api-Key', badChecksum(secret)]))).toBe('UNAUTHENTICATED');
    expect(calls.lookup).toBe(0);
  });

  it('refuses a Basic secret with a bad checksum without calling the source', async () => {
    const { stage, secret, calls } = setup({ basicAuth: true });
    expect(await stage(ctxWith(['Authorization', basic(WS, badChecksum(secret))]))).toBe('UNAUTHENTICATED');
    expect(calls.lookup).toBe(0);
  });

  it('refuses an unknown well-formed secret with UNAUTHENTICATED', async () => {
    const { stage, calls } = setup();
    expect(await stage(ctxWith(['X-Api-Key', generateSecret('live').secret]))).toBe('UNAUTHENTICATED');
    expect(calls.lookup).toBe(1);
  });

  it('answers STORE_UNAVAILABLE when the key cannot be looked up', async () => {
    const { stage, secret } = setup({}, { fail: true });
    const ctx = ctxWith(['X-Api-Key', secret]);
    expect(await stage(ctx)).toBe('STORE_UNAVAILABLE');
    expect(ctx.policy).toBeNull();
  });

  it('admits a valid X-Api-Key secret and sets the policy', async () => {
    const { stage, secret, rec } = setup();
    const ctx = ctxWith(['X-Api-Key', secret]);
    expect(await stage(ctx)).toBeNull();
    expect(ctx.policy?.keyId).toBe(rec.id);
  });

  it('admits a valid secret again from the cache', async () => {
    const { stage, secret, rec, calls } = setup();
    await stage(ctxWith(['X-Api-Key', secret]));
    const ctx = ctxWith(['X-Api-Key', secret]);
    expect(await stage(ctx)).toBeNull();
    expect(ctx.policy?.keyId).toBe(rec.id);
    expect(calls.lookup).toBe(1);
  });

  it('admits a valid Bearer secret and sets the policy', async () => {
    const { stage, secret, rec } = setup();
    const ctx = ctxWith(['Authorization', `Bearer ${secret}`]);
    expect(await stage(ctx)).toBeNull();
    expect(ctx.policy?.keyId).toBe(rec.id);
  });

  it('admits Basic on a workspace key with basicAuth in its own workspace', async () => {
    const { stage, secret, rec } = setup({ basicAuth: true });
    const ctx = ctxWith(['Authorization', basic(WS, secret)]);
    expect(await stage(ctx)).toBeNull();
    expect(ctx.policy?.keyId).toBe(rec.id);
  });

  it('admits Basic whose workspace GUID is written in upper case', async () => {
    const { stage, secret } = setup({ basicAuth: true });
    expect(await stage(ctxWith(['Authorization', basic(WS.toUpperCase(), secret)]))).toBeNull();
  });

  it('refuses Basic naming another workspace with UNAUTHENTICATED', async () => {
    const { stage, secret } = setup({ basicAuth: true });
    const ctx = ctxWith(['Authorization', basic(OTHER_WS, secret)]);
    expect(await stage(ctx)).toBe('UNAUTHENTICATED');
    expect(ctx.policy).toBeNull();
  });

  it('refuses Basic on a key without basicAuth with UNAUTHENTICATED', async () => {
    const { stage, secret } = setup({ basicAuth: false });
    const ctx = ctxWith(['Authorization', basic(WS, secret)]);
    expect(await stage(ctx)).toBe('UNAUTHENTICATED');
    expect(ctx.policy).toBeNull();
  });

  it('refuses Basic on a profile key with UNAUTHENTICATED', async () => {
    const { stage, secret } = setup({ type: 'profile', basicAuth: true });
    const ctx = ctxWith(['Authorization', basic(WS, secret)]);
    expect(await stage(ctx)).toBe('UNAUTHENTICATED');
    expect(ctx.policy).toBeNull();
  });

  it('refuses Basic on a cached key that may not use it', async () => {
    const { stage, secret } = setup({ basicAuth: false });
    expect(await stage(ctxWith(['X-Api-Key', secret]))).toBeNull();
    expect(await stage(ctxWith(['Authorization', basic(WS, secret)]))).toBe('UNAUTHENTICATED');
  });

  it('refuses a token credential with TOKEN_INVALID when tokens are not enabled', async () => {
    const { stage } = setup({}, { tokens: null });
    expect(await stage(ctxWith(['Authorization', `Bearer ${JWT}`]))).toBe('TOKEN_INVALID');
  });

  it('hands a token credential to the token verifier', async () => {
    const seen: string[] = [];
    const tokens = { verify: (_ctx: RequestContext, token: string) => { seen.push(token); return null; } } as unknown as TokenVerifier;
    const { stage } = setup({}, { tokens });
    expect(await stage(ctxWith(['Authorization', `Bearer ${JWT}`]))).toBeNull();
    expect(seen).toEqual([JWT]);
  });

  it('passes on the token verifier refusal', async () => {
    const tokens = { verify: () => 'TOKEN_INVALID' } as unknown as TokenVerifier;
    const { stage } = setup({}, { tokens });
    expect(await stage(ctxWith(['Authorization', `Bearer ${JWT}`]))).toBe('TOKEN_INVALID');
  });
});
