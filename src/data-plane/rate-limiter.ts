import type { Quota, RateLimit } from '../domain/api-key.js';

export interface LimitDecision {
  ok: boolean;
  code?: 'RATE_LIMITED' | 'QUOTA_EXCEEDED';
  /**
   * Headers for the answer: on a refusal Retry-After and the RateLimit-* trio; on an admission
   * the trio for the budget nearer exhaustion, so clients can pace themselves. Absent when the
   * budgets are not known (the `allow` fallback).
   */
  headers?: Record<string, string>;
}

/** The budgets left for a key, as the usage endpoint shows them. */
export interface Budgets {
  rateLimit: (RateLimit & { remaining: number; resetSeconds: number }) | null;
  quota: (Quota & { used: number; remaining: number; resetsAt: string }) | null;
}

/** What the data plane asks: may this request pass? */
export interface RateLimiter {
  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision | Promise<LimitDecision>;
}

/** The process that holds a set of counters (or reaches the shared ones) can also show and prune them. */
export interface CounterStore extends RateLimiter {
  /** The budgets left, without consuming any. */
  peek(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Budgets | Promise<Budgets>;
  prune(now: number): void;
}

export interface Window { start: number; size: number; current: number; previous: number }
export interface Period { start: number; count: number }

const OK: LimitDecision = { ok: true };

export function periodStart(period: Quota['period'], now: number): number {
  const d = new Date(now);
  return period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function periodEnd(period: Quota['period'], start: number): number {
  const d = new Date(start);
  return period === 'day' ? start + 86_400_000 : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** A key's window as it stands at `now`: the same object while its fixed window lasts. */
function windowAt(w: Window | undefined, size: number, now: number): Window {
  const start = Math.floor(now / size) * size;
  if (w && w.size === size && w.start === start) return w;
  // One window later, the old current becomes the weighted previous; any later, nothing remains.
  const previous = w && w.size === size && start - w.start === size ? w.current : 0;
  return { start, size, current: 0, previous };
}

/** Requests counted in the sliding window ending at `now`. */
export function estimateAt(w: Window, now: number): number {
  return w.previous * (1 - (now - w.start) / w.size) + w.current;
}

function periodAt(p: Period | undefined, period: Quota['period'], now: number): Period {
  const start = periodStart(period, now);
  return p && p.start === start ? p : { start, count: 0 };
}

/** When the sliding estimate next leaves room for one request, in ms from `now`. */
function waitForRoom(w: Window, limit: number, now: number): number {
  if (limit === 0) return w.size;
  if (w.current + 1 > limit) {
    // This window alone is full: it becomes the weighted previous one, which must fade enough.
    return w.start + w.size - now + Math.max(0, 1 - (limit - 1) / w.current) * w.size;
  }
  const fraction = 1 - (limit - 1 - w.current) / w.previous;
  return w.start + fraction * w.size - now;
}

/** A rate refusal: the window is full until the sliding estimate leaves room for one. */
export function rateRefusal(w: Window, limit: number, now: number): LimitDecision {
  return refusal('RATE_LIMITED', limit, 0, waitForRoom(w, limit, now));
}

/** A quota refusal: the period is used up until it ends. */
export function quotaRefusal(quota: Quota, periodStartMs: number, now: number): LimitDecision {
  return refusal('QUOTA_EXCEEDED', quota.limit, 0, periodEnd(quota.period, periodStartMs) - now);
}

/** What is left of a window and a period, as the usage endpoint shows it. */
export function budgets(w: Window | null, p: Period | null, rate: RateLimit | null, quota: Quota | null, now: number): Budgets {
  return {
    rateLimit: rate && w && {
      ...rate, remaining: Math.max(0, Math.floor(rate.limit - estimateAt(w, now))), resetSeconds: Math.ceil((w.start + w.size - now) / 1000),
    },
    quota: quota && p && {
      ...quota, used: p.count, remaining: Math.max(0, quota.limit - p.count), resetsAt: new Date(periodEnd(quota.period, p.start)).toISOString(),
    },
  };
}

/**
 * An admission, with the RateLimit-* trio of whichever budget has fewer requests left (the rate
 * window's reset is the end of its current fixed window, as the usage endpoint shows it). The
 * counts are those after this request.
 */
export function admission(rate: RateLimit | null, w: Window | null, quota: Quota | null, p: Period | null, now: number): LimitDecision {
  let limit = 0;
  let remaining = Infinity;
  let resetMs = 0;
  if (rate !== null && w !== null) {
    limit = rate.limit;
    remaining = Math.max(0, Math.floor(rate.limit - estimateAt(w, now)));
    resetMs = w.start + w.size - now;
  }
  if (quota !== null && p !== null && quota.limit - p.count < remaining) {
    limit = quota.limit;
    remaining = Math.max(0, quota.limit - p.count);
    resetMs = periodEnd(quota.period, p.start) - now;
  }
  if (remaining === Infinity) return OK;
  return {
    ok: true,
    headers: { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(remaining), 'ratelimit-reset': String(Math.max(1, Math.ceil(resetMs / 1000))) },
  };
}

export function refusal(code: 'RATE_LIMITED' | 'QUOTA_EXCEEDED', limit: number, remaining: number, resetMs: number): LimitDecision {
  const reset = String(Math.max(1, Math.ceil(resetMs / 1000)));
  return {
    ok: false,
    code,
    headers: { 'retry-after': reset, 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(remaining), 'ratelimit-reset': reset },
  };
}

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
