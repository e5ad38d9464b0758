import type { Quota, RateLimit } from '../../domain/api-key.js';

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
