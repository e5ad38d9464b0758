import type { Quota, RateLimit } from '../domain/api-key.js';

export interface LimitDecision {
  ok: boolean;
  code?: 'RATE_LIMITED' | 'QUOTA_EXCEEDED';
  /** Headers for a refusal: Retry-After and the RateLimit-* trio. */
  headers?: Record<string, string>;
}

export interface RateLimiter {
  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision | Promise<LimitDecision>;
}

interface Window { start: number; size: number; current: number; previous: number }
interface Period { start: number; count: number }

const OK: LimitDecision = { ok: true };

function periodStart(period: Quota['period'], now: number): number {
  const d = new Date(now);
  return period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function periodEnd(period: Quota['period'], start: number): number {
  const d = new Date(start);
  return period === 'day' ? start + 86_400_000 : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
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

function refusal(code: 'RATE_LIMITED' | 'QUOTA_EXCEEDED', limit: number, remaining: number, resetMs: number): LimitDecision {
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
export class LocalRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly periods = new Map<string, Period>();

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision {
    let window: Window | undefined;
    if (rate !== null) {
      const size = rate.windowSeconds * 1000;
      const start = Math.floor(now / size) * size;
      window = this.windows.get(keyId);
      if (!window || window.size !== size) this.windows.set(keyId, (window = { start, size, current: 0, previous: 0 }));
      else if (window.start !== start) {
        window.previous = start - window.start === size ? window.current : 0;
        window.current = 0;
        window.start = start;
      }
      const estimate = window.previous * (1 - (now - start) / size) + window.current;
      if (estimate + 1 > rate.limit) return refusal('RATE_LIMITED', rate.limit, 0, waitForRoom(window, rate.limit, now));
    }
    let period: Period | undefined;
    if (quota !== null) {
      const start = periodStart(quota.period, now);
      period = this.periods.get(keyId);
      if (!period || period.start !== start) this.periods.set(keyId, (period = { start, count: 0 }));
      if (period.count + 1 > quota.limit) return refusal('QUOTA_EXCEEDED', quota.limit, 0, periodEnd(quota.period, start) - now);
    }
    if (window) window.current++;
    if (period) period.count++;
    return OK;
  }

  /** The budgets left for a key, without consuming any: what the usage endpoint shows. */
  peek(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): {
    rateLimit: (RateLimit & { remaining: number; resetSeconds: number }) | null;
    quota: (Quota & { used: number; remaining: number; resetsAt: string }) | null;
  } {
    let rateOut = null;
    if (rate !== null) {
      const size = rate.windowSeconds * 1000;
      const start = Math.floor(now / size) * size;
      const w = this.windows.get(keyId);
      let estimate = 0;
      if (w && w.size === size) {
        const previous = w.start === start ? w.previous : start - w.start === size ? w.current : 0;
        const current = w.start === start ? w.current : 0;
        estimate = previous * (1 - (now - start) / size) + current;
      }
      rateOut = { ...rate, remaining: Math.max(0, Math.floor(rate.limit - estimate)), resetSeconds: Math.ceil((start + size - now) / 1000) };
    }
    let quotaOut = null;
    if (quota !== null) {
      const start = periodStart(quota.period, now);
      const p = this.periods.get(keyId);
      const used = p && p.start === start ? p.count : 0;
      quotaOut = { ...quota, used, remaining: Math.max(0, quota.limit - used), resetsAt: new Date(periodEnd(quota.period, start)).toISOString() };
    }
    return { rateLimit: rateOut, quota: quotaOut };
  }

  /** Drops rate windows that no longer weigh on anything, and quota counts of past periods. */
  prune(now: number): void {
    for (const [id, w] of this.windows) if (now - w.start >= 2 * w.size) this.windows.delete(id);
    for (const [id, p] of this.periods) if (now - p.start > 32 * 86_400_000) this.periods.delete(id);
  }
}
