import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CompiledPolicy } from '../../domain/compiled-policy.js';
import type { RequestContext, StageResult } from '../pipeline/context.js';
import { sameSecret, type KeyResolver } from '../key-resolver.js';
import { CLOCK_SKEW_SECONDS, type TokenService, type VerifiedToken } from './token-service.js';

/**
 * Bearer JWTs on the hot path. A verified token is cached by a digest of its text (so a repeated
 * token costs a map lookup, not a signature check), its `exp` is honoured on every hit, and
 * the key it was minted from is re-read on every request: a token answers with its key's
 * current state, and stops working once that key is deleted or its secret rotated past grace.
 */
export class TokenVerifier {
  /** A verified token, or — for a refused one — the signing-key generation it was refused under. */
  private readonly cache: LRUCache<string, VerifiedToken | number>;

  constructor(private readonly tokens: TokenService, private readonly resolver: KeyResolver, maxEntries = 100_000) {
    this.cache = new LRUCache({ max: maxEntries });
  }

  verify(ctx: RequestContext, token: string): StageResult | Promise<StageResult> {
    // The token this connection sent last time, verified then: no digest, no cache lookup.
    const memo = ctx.credential;
    if (memo.verified !== null && sameSecret(memo.token, token)) return this.admit(ctx, memo.verified);
    // Keyed by a digest: every entry costs the same few bytes, whatever a client sends.
    const id = hash('sha256', token, 'base64url');
    const cached = this.cache.get(id);
    // A refusal stands only while the key set is the one it was refused under: a token signed
    // by a key this process had not loaded yet verifies once the key arrives.
    if (cached !== undefined && (typeof cached !== 'number' || cached === this.tokens.generation)) {
      if (typeof cached === 'number') return this.admit(ctx, false);
      memo.token = token;
      memo.verified = cached;
      return this.admit(ctx, cached);
    }
    const generation = this.tokens.generation;
    return this.tokens.verify(token, ctx.now).then((verified) => {
      this.cache.set(id, verified ?? generation);
      return this.admit(ctx, verified ?? false);
    });
  }

  private admit(ctx: RequestContext, token: VerifiedToken | false): StageResult | Promise<StageResult> {
    if (token === false || token.expiresAt + CLOCK_SKEW_SECONDS * 1000 <= ctx.now) return 'TOKEN_INVALID';
    const found = this.resolver.resolveById(token.keyId);
    return found instanceof Promise ? found.then((p) => this.bind(ctx, token, p)) : this.bind(ctx, token, found);
  }

  private bind(ctx: RequestContext, token: VerifiedToken, policy: CompiledPolicy | null | 'STORE_UNAVAILABLE'): StageResult {
    if (policy === 'STORE_UNAVAILABLE') return policy;
    if (policy === null || !secretStillWorks(policy, token.secretFingerprint, ctx.now)) return 'TOKEN_INVALID';
    ctx.policy = policy;
    ctx.profile = token.profile;
    return null;
  }
}

function secretStillWorks(policy: CompiledPolicy, fingerprint: string, now: number): boolean {
  if (policy.fingerprint === fingerprint) return true;
  const until = policy.retiredFingerprints.get(fingerprint);
  return until !== undefined && until > now;
}
