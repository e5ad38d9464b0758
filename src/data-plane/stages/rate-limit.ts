import type { CompiledPolicy } from '../../domain/compiled-policy.js';
import type { CounterChild } from '../../observability/hot-metrics.js';
import type { AdmittedContext, KeyStage, StageResult } from '../pipeline/context.js';
import { refusal } from '../../errors/http.js';
import type { LimitDecision, RateLimiter } from '../../store/rate-limit/types.js';

/**
 * One request of a key against its rate limit and quota: null for a key with neither (nothing
 * counted, no headers), else the limiter's decision; each refusal is counted in `rateLimited`.
 * The routes' stage and `POST /auth/token` both take this check.
 */
export type LimitCheck = (policy: CompiledPolicy, now: number) => LimitDecision | Promise<LimitDecision> | null;

export function limitCheck(limiter: RateLimiter, rateLimited: CounterChild): LimitCheck {
  const counted = (d: LimitDecision): LimitDecision => {
    if (!d.ok) rateLimited.inc();
    return d;
  };
  return (policy, now) => {
    if (policy.rateLimit === null && policy.quota === null) return null;
    const decision = limiter.take(policy.keyId, policy.rateLimit, policy.quota, now);
    return decision instanceof Promise ? decision.then(counted) : counted(decision);
  };
}

/** The decision's headers go on the answer, admitted (forwarded, or a minted token) or refused. */
function apply(ctx: AdmittedContext, d: LimitDecision): StageResult {
  if (!d.ok) return refusal(d.code ?? 'RATE_LIMITED', null, d.headers ?? null);
  ctx.responseHeaders = d.headers ?? null;
  return null;
}

/** Per-key rate limit and quota; keys with neither pass untouched. */
export function rateLimitStage(limiter: RateLimiter, rateLimited: CounterChild): KeyStage {
  const check = limitCheck(limiter, rateLimited);
  return (ctx) => {
    const decision = check(ctx.policy, ctx.now);
    if (decision === null) return null;
    return decision instanceof Promise ? decision.then((d) => apply(ctx, d)) : apply(ctx, decision);
  };
}
