import type { CounterChild } from '../../observability/hot-metrics.js';
import type { Stage } from '../context.js';
import type { RateLimiter } from '../rate-limiter.js';

/** Per-key rate limit and quota; keys with neither pass untouched. */
export function rateLimitStage(limiter: RateLimiter, rateLimited: CounterChild): Stage {
  return (ctx) => {
    const policy = ctx.policy!;
    if (policy.rateLimit === null && policy.quota === null) return null;
    const decision = limiter.take(policy.keyId, policy.rateLimit, policy.quota, ctx.now);
    const apply = (d: Awaited<typeof decision>) => {
      if (d.ok) return null;
      rateLimited.inc();
      ctx.responseHeaders = d.headers ?? null;
      return d.code ?? 'RATE_LIMITED';
    };
    return decision instanceof Promise ? decision.then(apply) : apply(decision);
  };
}
