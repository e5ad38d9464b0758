import type { Quota, RateLimit } from '../../domain/api-key.js';
import {
  StoreErrorFallback, budgets, periodEnd, periodStart, quotaRefusal, rateRefusal,
  type Budgets, type CounterStore, type LimitDecision, type Window,
} from '../../data-plane/rate-limiter.js';
import type { RedisConnection } from './connection.js';
import { RATE_LIMIT } from './scripts.js';

const OK: LimitDecision = { ok: true };
/** Keeps one script call (and the time Redis spends in it) short. */
const MAX_DECISIONS_PER_CALL = 64;

const sameLimits = (b: Batch, rate: RateLimit | null, quota: Quota | null): boolean =>
  b.rate?.limit === rate?.limit && b.rate?.windowSeconds === rate?.windowSeconds && b.quota?.limit === quota?.limit && b.quota?.period === quota?.period;

/** Requests of one key (with one set of limits) waiting for the next round trip. */
interface Batch {
  keyId: string;
  rate: RateLimit | null;
  quota: Quota | null;
  now: number;
  waiters: Array<(d: LimitDecision) => void>;
}

/**
 * Rate limits and quotas shared by every node, decided by a Lua script, auto-pipelined with
 * whatever else is in flight. Requests that arrive together (in one turn of the event loop)
 * share one script call: those of one key make one decision that admits as many as fit,
 * exactly as if each had been decided alone, and the decisions of different keys ride in
 * the same call (up to 64) — a busy gateway makes one Redis call per turn, not one per
 * request. The counters of one key share a hash tag, so Redis Cluster spreads keys over its
 * masters while each decision stays atomic; there, each key gets its own call. When Redis
 * cannot answer (a fault, a timeout, or the circuit breaker open), the fallback decides.
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
    // Batched by key id; a key whose limits changed within the turn (a policy reloaded
    // between its requests) gets a batch of its own under a longer name.
    let id = keyId;
    let batch = this.pending.get(id);
    if (batch && !sameLimits(batch, rate, quota)) {
      id = `${keyId}|${rate?.limit}|${rate?.windowSeconds}|${quota?.limit}|${quota?.period}`;
      batch = this.pending.get(id);
    }
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
    const batches = [...this.pending.values()];
    this.pending = new Map();
    // On a Cluster the keys of different key ids live in different hash slots: one call each.
    const per = this.conn.clustered ? 1 : MAX_DECISIONS_PER_CALL;
    for (let i = 0; i < batches.length; i += per) this.decide(batches.slice(i, i + per));
  };

  /** One script call for the batches of several keys (one round trip, one reply to parse). */
  private decide(batches: Batch[]): void {
    const names: string[] = [];
    const args: number[] = [];
    const windows = batches.map(({ keyId, rate, quota, now, waiters }) => {
      const w = this.keys(keyId, rate, quota, now);
      names.push(...w.names);
      args.push(
        rate ? rate.limit : -1, w.size, now - w.start,
        quota ? quota.limit : -1, quota ? periodEnd(quota.period, w.qStart) + 86_400_000 : 0,
        waiters.length,
      );
      return w;
    });
    this.conn.fastCall((c) => RATE_LIMIT.run(c, names, args)).then((reply) => {
      const r = reply as number[];
      for (let b = 0; b < batches.length; b++) {
        const { rate, quota, now, waiters } = batches[b]!;
        const { start, size, qStart } = windows[b]!;
        const admitted = r[b * 5]!;
        const why = r[b * 5 + 1]!;
        let refused: LimitDecision | null = null;
        for (let i = 0; i < waiters.length; i++) {
          if (i < admitted) {
            waiters[i]!(OK);
            continue;
          }
          refused ??= why === 2 ? quotaRefusal(quota!, qStart, now) : rateRefusal({ start, size, current: r[b * 5 + 2]!, previous: r[b * 5 + 3]! }, rate!.limit, now);
          waiters[i]!(refused);
        }
      }
    }, () => {
      for (const { keyId, rate, quota, now, waiters } of batches) {
        for (const resolve of waiters) resolve(this.fallback.take(keyId, rate, quota, now));
      }
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
