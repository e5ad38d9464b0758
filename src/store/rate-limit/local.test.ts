import { describe, expect, it } from 'vitest';
import { LocalRateLimiter, StoreErrorFallback } from './local.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0); // aligned to every window size used below

describe('LocalRateLimiter', () => {
  it('admits up to the limit within a window and refuses the next request with RATE_LIMITED', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 3, windowSeconds: 10 };
    for (let i = 0; i < 3; i++) expect(l.take('k', rate, null, T0 + i).ok).toBe(true);
    const refused = l.take('k', rate, null, T0 + 5);
    expect(refused).toMatchObject({ ok: false, code: 'RATE_LIMITED' });
    expect(refused.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '0' });
  });

  it('does not let refused requests consume the budget', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 2, windowSeconds: 10 };
    l.take('k', rate, null, T0);
    l.take('k', rate, null, T0);
    for (let i = 0; i < 50; i++) expect(l.take('k', rate, null, T0 + 100).ok).toBe(false);
    // Two full windows later nothing weighs any more: exactly the limit is admitted again.
    expect(l.take('k', rate, null, T0 + 20_000).ok).toBe(true);
    expect(l.take('k', rate, null, T0 + 20_001).ok).toBe(true);
    expect(l.take('k', rate, null, T0 + 20_002).ok).toBe(false);
  });

  it('weighs the previous window by how much of it still overlaps the sliding window', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 10, windowSeconds: 10 };
    for (let i = 0; i < 10; i++) l.take('k', rate, null, T0 + i);
    // A quarter into the next window, 75% of the previous 10 still count: 2 more fit, not 3.
    const at = T0 + 12_500;
    expect(l.take('k', rate, null, at).ok).toBe(true);
    expect(l.take('k', rate, null, at).ok).toBe(true);
    expect(l.take('k', rate, null, at).ok).toBe(false);
  });

  it('says in Retry-After when a request will fit again', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 2, windowSeconds: 10 };
    l.take('k', rate, null, T0);
    l.take('k', rate, null, T0);
    const refused = l.take('k', rate, null, T0 + 1_000);
    // The window ends in 9 s; then the previous 2 must fade to 1: half of the next window.
    expect(refused.headers?.['retry-after']).toBe('14');
    expect(l.take('k', rate, null, T0 + 14_999).ok).toBe(false);
    expect(l.take('k', rate, null, T0 + 15_001).ok).toBe(true);
  });

  it('refuses every request of a key whose limit is 0', () => {
    const l = new LocalRateLimiter();
    expect(l.take('k', { limit: 0, windowSeconds: 1 }, null, T0)).toMatchObject({ ok: false, code: 'RATE_LIMITED' });
  });

  it('counts a quota per UTC day and refuses past it with QUOTA_EXCEEDED until the next day', () => {
    const l = new LocalRateLimiter();
    const quota = { limit: 2, period: 'day' as const };
    expect(l.take('k', null, quota, T0).ok).toBe(true);
    expect(l.take('k', null, quota, T0 + 1).ok).toBe(true);
    const refused = l.take('k', null, quota, T0 + 2);
    expect(refused).toMatchObject({ ok: false, code: 'QUOTA_EXCEEDED' });
    expect(refused.headers?.['retry-after']).toBe(String(12 * 3600)); // T0 is noon UTC
    expect(l.take('k', null, quota, Date.UTC(2026, 10, 24)).ok).toBe(true);
  });

  it('counts a monthly quota until the first of the next month', () => {
    const l = new LocalRateLimiter();
    const quota = { limit: 1, period: 'month' as const };
    expect(l.take('k', null, quota, T0).ok).toBe(true);
    expect(l.take('k', null, quota, Date.UTC(2026, 10, 30, 23)).ok).toBe(false);
    expect(l.take('k', null, quota, Date.UTC(2026, 11, 1)).ok).toBe(true);
  });

  it('consumes neither budget when one of them refuses', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 1, windowSeconds: 10 };
    const quota = { limit: 5, period: 'day' as const };
    expect(l.take('k', rate, quota, T0).ok).toBe(true);
    expect(l.take('k', rate, quota, T0 + 1).code).toBe('RATE_LIMITED');
    // Only the admitted request counted against the quota: four more fit over the next windows.
    for (let i = 1; i <= 4; i++) expect(l.take('k', rate, quota, T0 + i * 20_000).ok).toBe(true);
    expect(l.take('k', rate, quota, T0 + 5 * 20_000).code).toBe('QUOTA_EXCEEDED');
  });

  it('keeps separate counters per key', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 1, windowSeconds: 10 };
    expect(l.take('a', rate, null, T0).ok).toBe(true);
    expect(l.take('b', rate, null, T0).ok).toBe(true);
    expect(l.take('a', rate, null, T0).ok).toBe(false);
  });
});

describe('RateLimit-* headers on admissions', () => {
  it('gives every admitted request of a rate-limited key the RateLimit-* trio, remaining counting down (regression)', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 3, windowSeconds: 10 };
    const remaining = [0, 1, 2].map((i) => l.take('k', rate, null, T0 + 2_500 + i));
    expect(remaining.map((d) => d.headers)).toEqual([
      { 'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-reset': '8' },
      { 'ratelimit-limit': '3', 'ratelimit-remaining': '1', 'ratelimit-reset': '8' },
      { 'ratelimit-limit': '3', 'ratelimit-remaining': '0', 'ratelimit-reset': '8' },
    ]);
    expect(remaining.every((d) => d.ok && !('retry-after' in d.headers!))).toBe(true);
  });

  it('gives the quota\'s trio when the quota has fewer requests left than the rate window, reset at the period\'s end', () => {
    const l = new LocalRateLimiter();
    const d = l.take('k', { limit: 100, windowSeconds: 60 }, { limit: 5, period: 'day' }, T0);
    // T0 is 12:00 UTC: 12 hours to the end of the day.
    expect(d).toEqual({ ok: true, headers: { 'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': String(12 * 3600) } });
    const r = l.take('q', { limit: 2, windowSeconds: 60 }, { limit: 1_000, period: 'month' }, T0);
    expect(r.headers).toEqual({ 'ratelimit-limit': '2', 'ratelimit-remaining': '1', 'ratelimit-reset': '60' });
  });

  it('gives the headers under the local fallback too, for this process\'s share', () => {
    const f = new StoreErrorFallback('local', () => 2, () => {});
    expect(f.take('k', { limit: 10, windowSeconds: 10 }, null, T0).headers).toEqual({ 'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': '10' });
  });
});

describe('LocalRateLimiter.peek', () => {
  it('reports what is left of each budget without consuming any', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 5, windowSeconds: 10 };
    const quota = { limit: 100, period: 'day' as const };
    l.take('k', rate, quota, T0);
    l.take('k', rate, quota, T0 + 1);
    const seen = l.peek('k', rate, quota, T0 + 2);
    expect(seen.rateLimit).toEqual({ limit: 5, windowSeconds: 10, remaining: 3, resetSeconds: 10 });
    expect(seen.quota).toEqual({ limit: 100, period: 'day', used: 2, remaining: 98, resetsAt: '2026-11-24T00:00:00.000Z' });
    expect(l.peek('k', rate, quota, T0 + 2)).toEqual(seen);
  });

  it('reports full budgets for a key it has never seen, and null for a budget the key does not have', () => {
    const l = new LocalRateLimiter();
    expect(l.peek('new', { limit: 7, windowSeconds: 60 }, null, T0)).toEqual({
      rateLimit: { limit: 7, windowSeconds: 60, remaining: 7, resetSeconds: 60 },
      quota: null,
    });
  });
});

describe('counting requests admitted elsewhere', () => {
  it('LocalRateLimiter.count adds to the window and the period without deciding', () => {
    const l = new LocalRateLimiter();
    const rate = { limit: 10, windowSeconds: 60 };
    const quota = { limit: 20, period: 'day' as const };
    const now = Date.UTC(2030, 0, 1, 0, 0, 30);
    l.count('k', rate, quota, now, 8);
    const b = l.peek('k', rate, quota, now);
    expect(b.rateLimit!.remaining).toBe(2);
    expect(b.quota!.used).toBe(8);
    expect([1, 2, 3].map(() => l.take('k', rate, quota, now).ok)).toEqual([true, true, false]);
  });

  it('StoreErrorFallback.count weighs on the local share of the budget', () => {
    const f = new StoreErrorFallback('local', () => 2, () => undefined);
    const rate = { limit: 10, windowSeconds: 60 };
    const now = Date.UTC(2030, 0, 1, 0, 0, 30);
    f.count('k', rate, null, now, 4);
    // This process's share is 5; 4 are already counted.
    expect([1, 2].map(() => f.take('k', rate, null, now).ok)).toEqual([true, false]);
  });
});
