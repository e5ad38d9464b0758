import type { Quota, RateLimit } from '../../domain/api-key.js';
import { StoreErrorFallback } from './local.js';
import type { LimitDecision, RateLimiter } from './types.js';

/** A worker's question to the process that holds the node's counters. */
export interface LimitRequest { t: 'limit'; id: number; keyId: string; rate: RateLimit | null; quota: Quota | null; now: number }
/** The answer to a `LimitRequest` of the same id. */
export interface LimitResult { t: 'limit-result'; id: number; decision: LimitDecision }

/**
 * Workers share one set of counters, the primary's, so a limit holds across the whole node.
 * When the primary does not answer in time, `rateLimit.onStoreError` decides: `allow`, `deny`,
 * or `local` (this worker enforces its share, limit ÷ workers).
 */
export class IpcRateLimiter implements RateLimiter {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (d: LimitDecision) => void; timer: NodeJS.Timeout }>();
  private readonly fallback: StoreErrorFallback;

  constructor(
    private readonly send: (m: LimitRequest) => void,
    onError: 'local' | 'allow' | 'deny',
    workers: number,
    fallbackUsed: () => void,
    private readonly timeoutMs = 250,
  ) {
    this.fallback = new StoreErrorFallback(onError, () => workers, fallbackUsed);
  }

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Promise<LimitDecision> {
    const id = this.nextId++;
    const fallback = (): LimitDecision => this.fallback.take(keyId, rate, quota, now);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(fallback());
      }, this.timeoutMs);
      this.pending.set(id, { resolve, timer });
      try {
        this.send({ t: 'limit', id, keyId, rate, quota, now });
      } catch {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(fallback());
      }
    });
  }

  onResult(m: LimitResult): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    p.resolve(m.decision);
  }
}
