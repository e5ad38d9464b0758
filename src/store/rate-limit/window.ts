import type { Quota, RateLimit } from '../../domain/api-key.js';
import type { Budgets, LimitDecision, Period, Window } from './types.js';

// The maths of a sliding-window rate limit and a calendar quota, shared by every limiter:
// windows and periods as they stand at a time, refusals and admissions with their headers.

export const OK: LimitDecision = { ok: true };

export function periodStart(period: Quota['period'], now: number): number {
  const d = new Date(now);
  return period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function periodEnd(period: Quota['period'], start: number): number {
  const d = new Date(start);
  return period === 'day' ? start + 86_400_000 : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** A key's window as it stands at `now`: the same object while its fixed window lasts. */
export function windowAt(w: Window | undefined, size: number, now: number): Window {
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

export function periodAt(p: Period | undefined, period: Quota['period'], now: number): Period {
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
