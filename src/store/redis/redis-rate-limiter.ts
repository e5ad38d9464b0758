import type { Quota, RateLimit } from '../../domain/api-key.js';
import {
  StoreErrorFallback, budgets, periodEnd, periodStart, quotaRefusal, rateRefusal,
  type Budgets, type CounterStore, type LimitDecision, type Window,
} from '../../data-plane/rate-limiter.js';
import type { RedisConnection } from './connection.js';
import { RATE_LIMIT } from './scripts.js';

const OK: LimitDecision = { ok: true };

/** Requests of one key (with one set of limits) waiting for the next round trip. */
interface Batch {
  keyId: string;
  rate: RateLimit | null;
  quota: Quota | null;
  now: number;
  waiters: Array<(d: LimitDecision) => void>;
}

/**
 * Rate limits and quotas shared by every node: one Lua script per round trip, auto-pipelined
 * with whatever else is in flight. Requests of the same key that arrive together (in one turn
 * of the event loop) share one script call that admits as many as fit, exactly as if each had
 * been decided alone: a hot key costs one Redis call per turn, not one per request. The
 * counters of one key share a hash tag, so Redis Cluster spreads keys over its masters while
 * each decision stays atomic. When Redis cannot answer (a fault, a timeout, or the circuit
 * breaker open), the fallback decides.
 */
export class RedisRateLimiter implements CounterStore {
  private readonly fallback: StoreErrorFallback;
  private pending = new Map<string, Batch>();
  private scheduled = false;

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

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Promise<LimitDecision> {
    const id = `${keyId}|${rate?.limit}|${rate?.windowSeconds}|${quota?.limit}|${quota?.period}`;
    let batch = this.pending.get(id);
    if (!batch) {
      batch = { keyId, rate, quota, now, waiters: [] };
      this.pending.set(id, batch);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    }
    const waiters = batch.waiters;
    return new Promise((resolve) => waiters.push(resolve));
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    for (const batch of batches.values()) this.decide(batch);
  };

  private decide({ keyId, rate, quota, now, waiters }: Batch): void {
    const { size, start, qStart, names } = this.keys(keyId, rate, quota, now);
    const args = [
      rate ? rate.limit : -1, size, now - start,
      quota ? quota.limit : -1, quota ? periodEnd(quota.period, qStart) + 86_400_000 : 0,
      waiters.length,
    ];
    this.conn.fastCall((c) => RATE_LIMIT.run(c, names, args)).then((reply) => {
      const [admitted, why, current, previous] = reply as [number, number, number, number, number];
      let refused: LimitDecision | null = null;
      for (let i = 0; i < waiters.length; i++) {
        if (i < admitted) {
          waiters[i]!(OK);
          continue;
        }
        refused ??= why === 2 ? quotaRefusal(quota!, qStart, now) : rateRefusal({ start, size, current, previous }, rate!.limit, now);
        waiters[i]!(refused);
      }
    }, () => {
      for (const resolve of waiters) resolve(this.fallback.take(keyId, rate, quota, now));
    });
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
