import type { Quota, RateLimit } from '../../domain/api-key.js';
import {
  StoreErrorFallback, budgets, periodEnd, periodStart, quotaRefusal, rateRefusal,
  type Budgets, type LimitDecision, type RateLimiter, type Window,
} from '../../data-plane/rate-limiter.js';
import type { RedisConnection } from './connection.js';
import { RATE_LIMIT } from './scripts.js';

const OK: LimitDecision = { ok: true };

/**
 * Rate limits and quotas shared by every node: one Lua script per request, one round trip,
 * auto-pipelined with whatever else is in flight. The counters of one key share a hash tag,
 * so Redis Cluster spreads keys over its masters while each decision stays atomic. When Redis
 * cannot answer (a fault, a timeout, or the circuit breaker open), the fallback decides.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly fallback: StoreErrorFallback;

  constructor(
    private readonly conn: RedisConnection,
    onStoreError: 'local' | 'allow' | 'deny',
    /** How many keygate processes share the limits now (for the `local` fallback's share). */
    liveInstances: () => number,
    fallbackUsed: () => void,
  ) {
    this.fallback = new StoreErrorFallback(onStoreError, liveInstances, fallbackUsed);
  }

  private keys(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number) {
    const tag = `${this.conn.prefix}rl:{${keyId}}`;
    const size = rate ? rate.windowSeconds * 1000 : 1;
    const start = Math.floor(now / size) * size;
    const qStart = quota ? periodStart(quota.period, now) : 0;
    return {
      size, start, qStart,
      names: [`${tag}:w:${size}:${start}`, `${tag}:w:${size}:${start - size}`, `${tag}:q:${quota?.period ?? 'none'}:${qStart}`],
    };
  }

  async take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Promise<LimitDecision> {
    const { size, start, qStart, names } = this.keys(keyId, rate, quota, now);
    let reply: [number, number, number, number];
    try {
      reply = (await this.conn.fastCall((c) => RATE_LIMIT.run(c, names, [
        rate ? rate.limit : -1, size, now - start,
        quota ? quota.limit : -1, quota ? periodEnd(quota.period, qStart) + 86_400_000 : 0,
      ]))) as [number, number, number, number];
    } catch {
      return this.fallback.take(keyId, rate, quota, now);
    }
    const [outcome, current, previous] = reply;
    if (outcome === 0) return OK;
    if (outcome === 1) return rateRefusal({ start, size, current, previous }, rate!.limit, now);
    return quotaRefusal(quota!, qStart, now);
  }

  async peek(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Promise<Budgets> {
    const { size, start, qStart, names } = this.keys(keyId, rate, quota, now);
    const [cur, prev, used] = await this.conn.slowCall((c) => c.mget(...names));
    const w: Window = { start, size, current: Number(cur ?? 0), previous: Number(prev ?? 0) };
    return budgets(w, { start: qStart, count: Number(used ?? 0) }, rate, quota, now);
  }

  prune(now: number): void {
    this.fallback.prune(now);
  }
}
