import type { Quota, RateLimit } from '../../domain/api-key.js';
import { IpcRequests } from '../ipc-requests.js';
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
  private readonly requests: IpcRequests<LimitRequest, LimitResult, LimitDecision>;

  constructor(
    send: (m: LimitRequest) => void,
    onError: 'local' | 'allow' | 'deny',
    workers: number,
    fallbackUsed: () => void,
    timeoutMs = 250,
  ) {
    const fallback = new StoreErrorFallback(onError, () => workers, fallbackUsed);
    this.requests = new IpcRequests(send, timeoutMs, 'rate limit over IPC timed out', {
      answer: (m) => m.decision,
      failed: (m) => fallback.take(m.keyId, m.rate, m.quota, m.now),
    });
  }

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Promise<LimitDecision> {
    return this.requests.request({ t: 'limit', id: this.requests.id(), keyId, rate, quota, now });
  }

  onResult(m: LimitResult): void {
    this.requests.reply(m);
  }
}
