import type { KeyRecord } from '../domain/api-key.js';
import type { LimitRequest, LimitResult } from '../store/rate-limit/ipc.js';
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
  | LimitResult
  | { t: 'shutdown' };

export type ToPrimary =
  | { t: 'ready'; url: string }
  | { t: 'signing-keys-req' }
  | LimitRequest
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
