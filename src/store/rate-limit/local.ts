import type { Quota, RateLimit } from '../../domain/api-key.js';
import type { Budgets, CounterStore, LimitDecision, Period, Window } from './types.js';
import { OK, admission, budgets, estimateAt, periodAt, quotaRefusal, rateRefusal, refusal, windowAt } from './window.js';

/**
 * Per-key limits in this process. Rate limits use a sliding-window counter (the previous
 * fixed window weighted by how much of it still overlaps, plus the current one); quotas count
 * per UTC day or month. A refused request consumes neither budget.
 */
export class LocalRateLimiter implements CounterStore {
  private readonly windows = new Map<string, Window>();
  private readonly periods = new Map<string, Period>();

  /** The key's window as of `now`, kept (a new one when the old has passed). */
  private window(keyId: string, rate: RateLimit, now: number): Window {
    const window = windowAt(this.windows.get(keyId), rate.windowSeconds * 1000, now);
    this.windows.set(keyId, window);
    return window;
  }

  /** The key's quota period as of `now`, kept (a new one when the old has passed). */
  private period(keyId: string, quota: Quota, now: number): Period {
    const period = periodAt(this.periods.get(keyId), quota.period, now);
    this.periods.set(keyId, period);
    return period;
  }

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision {
    let window: Window | undefined;
    if (rate !== null) {
      window = this.window(keyId, rate, now);
      if (estimateAt(window, now) + 1 > rate.limit) return rateRefusal(window, rate.limit, now);
    }
    let period: Period | undefined;
    if (quota !== null) {
      period = this.period(keyId, quota, now);
      if (period.count + 1 > quota.limit) return quotaRefusal(quota, period.start, now);
    }
    if (window) window.current++;
    if (period) period.count++;
    return admission(rate, window ?? null, quota, period ?? null, now);
  }

  /** Counts `n` requests admitted elsewhere (no decision: they have passed). */
  count(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number, n: number): void {
    if (rate !== null) this.window(keyId, rate, now).current += n;
    if (quota !== null) this.period(keyId, quota, now).count += n;
  }

  peek(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Budgets {
    return budgets(
      rate && windowAt(this.windows.get(keyId), rate.windowSeconds * 1000, now),
      quota && periodAt(this.periods.get(keyId), quota.period, now),
      rate, quota, now,
    );
  }

  /** Drops rate windows that no longer weigh on anything, and quota counts of past periods. */
  prune(now: number): void {
    for (const [id, w] of this.windows) if (now - w.start >= 2 * w.size) this.windows.delete(id);
    for (const [id, p] of this.periods) if (now - p.start > 32 * 86_400_000) this.periods.delete(id);
  }
}

/**
 * What a limiter does when its shared counters cannot be reached, as `rateLimit.onStoreError`
 * says: `allow`, `deny`, or `local` — enforce this process's share of each budget (the limit
 * divided by `shares()`, the number of processes sharing it) on counters of its own.
 */
export class StoreErrorFallback {
  private readonly local = new LocalRateLimiter();

  constructor(
    private readonly mode: 'local' | 'allow' | 'deny',
    private readonly shares: () => number,
    private readonly used: () => void,
  ) {}

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision {
    this.used();
    if (this.mode === 'allow') return OK;
    if (this.mode === 'deny') return refusal('RATE_LIMITED', rate?.limit ?? quota?.limit ?? 0, 0, 1_000);
    const n = Math.max(1, this.shares());
    // A share never rounds a real budget down to nothing, nor a zero budget up to one.
    const share = (limit: number): number => (limit === 0 ? 0 : Math.max(1, Math.ceil(limit / n)));
    return this.local.take(keyId, rate && { ...rate, limit: share(rate.limit) }, quota && { ...quota, limit: share(quota.limit) }, now);
  }

  /** Counts requests admitted without a decision of the shared counters, for the `local` fallback's budgets. */
  count(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number, n: number): void {
    this.local.count(keyId, rate, quota, now, n);
  }

  prune(now: number): void {
    this.local.prune(now);
  }
}
