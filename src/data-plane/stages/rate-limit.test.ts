import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../domain/compiled-policy.js';
import { keyRecord } from '../../../test/support/fixtures.js';
import type { Refusal } from '../../errors/http.js';
import type { AdmittedContext } from '../pipeline/context.js';
import type { LimitDecision, RateLimiter } from '../../store/rate-limit/types.js';
import { LocalRateLimiter } from '../../store/rate-limit/local.js';
import { rateLimitStage } from './rate-limit.js';

const NOW = Date.UTC(2026, 10, 23, 12);

function ctxFor(over: Parameters<typeof keyRecord>[0]): AdmittedContext {
  return { policy: compilePolicy(keyRecord(over), null), now: NOW, responseHeaders: null } as unknown as AdmittedContext;
}

function counter() {
  const c = { n: 0, inc: () => { c.n++; } };
  return c;
}

describe('rate-limit stage', () => {
  it('passes a key with neither a rate limit nor a quota without asking the limiter', () => {
    let asked = 0;
    const limiter: RateLimiter = { take: () => { asked++; return { ok: true }; } };
    expect(rateLimitStage(limiter, counter())(ctxFor({}))).toBeNull();
    expect(asked).toBe(0);
  });

  it('refuses past the limit with RATE_LIMITED, the 429 headers on the refusal, and counts the refusal', () => {
    const rateLimited = counter();
    const stage = rateLimitStage(new LocalRateLimiter(), rateLimited);
    const ctx = () => ctxFor({ rateLimit: { limit: 1, windowSeconds: 60 } });
    expect(stage(ctx())).toBeNull();
    const refusal = stage(ctx()) as Refusal;
    expect(refusal.code).toBe('RATE_LIMITED');
    expect(refusal.headers).toMatchObject({ 'ratelimit-limit': '1', 'ratelimit-remaining': '0' });
    expect(rateLimited.n).toBe(1);
  });

  it('sets the RateLimit-* headers on the context for an admitted request too, and leaves them null for a key without limits (regression)', () => {
    const stage = rateLimitStage(new LocalRateLimiter(), counter());
    const admitted = ctxFor({ rateLimit: { limit: 5, windowSeconds: 60 } });
    expect(stage(admitted)).toBeNull();
    expect(admitted.responseHeaders).toEqual({ 'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': '60' });
    const unlimited = ctxFor({});
    expect(stage(unlimited)).toBeNull();
    expect(unlimited.responseHeaders).toBeNull();
  });

  it('answers QUOTA_EXCEEDED when the quota is what ran out', () => {
    const stage = rateLimitStage(new LocalRateLimiter(), counter());
    expect(stage(ctxFor({ quota: { limit: 1, period: 'day' } }))).toBeNull();
    expect((stage(ctxFor({ quota: { limit: 1, period: 'day' } })) as Refusal).code).toBe('QUOTA_EXCEEDED');
  });

  it('waits for a limiter that answers asynchronously (the cluster primary)', async () => {
    const decision: LimitDecision = { ok: false, code: 'RATE_LIMITED', headers: { 'retry-after': '3' } };
    const limiter: RateLimiter = { take: async () => decision };
    const ctx = ctxFor({ rateLimit: { limit: 5, windowSeconds: 1 } });
    const refusal = (await rateLimitStage(limiter, counter())(ctx)) as Refusal;
    expect(refusal.code).toBe('RATE_LIMITED');
    expect(refusal.headers).toEqual({ 'retry-after': '3' });
  });
});
