import type { KeyRecord, Quota, RateLimit } from '../domain/api-key.js';
import { StoreErrorFallback, type LimitDecision, type RateLimiter } from '../data-plane/rate-limiter.js';
import type { Owner } from '../domain/entities.js';
import type { SigningKeyRecord } from '../domain/signing-key.js';
import type { KeySource } from '../data-plane/key-resolver.js';
import type { Change, UsageDelta } from '../store/types.js';

// Messages between the primary (admin port, the embedded store's single writer) and the
// gateway workers. IPC is ordered and lossless while the channel lives; a worker whose
// channel closes exits, and the primary starts a fresh one that has missed nothing.

export type ToWorker =
  | { t: 'lookup-result'; id: number; record: KeyRecord | null; owner: Owner | null; error?: string }
  | { t: 'changes'; changes: Change[] }
  /** The primary has applied `version`, and every change committed before `confirmedAt`. */
  | { t: 'sync'; version: number; confirmedAt: number }
  | { t: 'reset' }
  | { t: 'metrics-req'; id: number }
  | { t: 'signing-keys'; keys: SigningKeyRecord[] }
  | { t: 'limit-result'; id: number; decision: LimitDecision }
  | { t: 'shutdown' };

export type ToPrimary =
  | { t: 'ready'; url: string }
  | { t: 'signing-keys-req' }
  | { t: 'limit'; id: number; keyId: string; rate: RateLimit | null; quota: Quota | null; now: number }
  | { t: 'lookup'; id: number; by: 'hash' | 'id'; value: string }
  | { t: 'usage'; deltas: UsageDelta[] }
  | { t: 'report'; appliedVersion: number }
  | { t: 'metrics-res'; id: number; metrics: unknown };

export function isMessage<T extends { t: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}

/** The worker's view of the store: lookups answered by the primary over IPC. */
export class IpcKeySource implements KeySource {
  private nextId = 0;
  private readonly pending = new Map<number, {
    resolve: (v: { record: KeyRecord; owner: Owner | null } | null) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }>();

  constructor(private readonly send: (m: ToPrimary) => void, private readonly timeoutMs = 2_000) {}

  lookup(hash: string): Promise<{ record: KeyRecord; owner: Owner | null } | null> {
    return this.request('hash', hash);
  }

  lookupById(keyId: string): Promise<{ record: KeyRecord; owner: Owner | null } | null> {
    return this.request('id', keyId);
  }

  private request(by: 'hash' | 'id', value: string): Promise<{ record: KeyRecord; owner: Owner | null } | null> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('key lookup over IPC timed out'));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.send({ t: 'lookup', id, by, value });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err as Error);
      }
    });
  }

  onResult(m: Extract<ToWorker, { t: 'lookup-result' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.record ? { record: m.record, owner: m.owner } : null);
  }
}

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
    private readonly send: (m: ToPrimary) => void,
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

  onResult(m: Extract<ToWorker, { t: 'limit-result' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    p.resolve(m.decision);
  }
}
