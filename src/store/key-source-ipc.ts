import type { KeyRecord } from '../domain/api-key.js';
import type { Owner } from '../domain/entities.js';
import type { KeySource } from './key-source.js';

/** A worker's key lookup, answered by the process that holds the store. */
export interface LookupRequest { t: 'lookup'; id: number; by: 'hash' | 'id'; value: string }
/** The answer to a `LookupRequest` of the same id: the key and its owner, none, or the store's error. */
export interface LookupResult { t: 'lookup-result'; id: number; record: KeyRecord | null; owner: Owner | null; error?: string }

/** The worker's view of the store: lookups answered by the primary over IPC. */
export class IpcKeySource implements KeySource {
  private nextId = 0;
  private readonly pending = new Map<number, {
    resolve: (v: { record: KeyRecord; owner: Owner | null } | null) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }>();

  constructor(private readonly send: (m: LookupRequest) => void, private readonly timeoutMs = 2_000) {}

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

  onResult(m: LookupResult): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.record ? { record: m.record, owner: m.owner } : null);
  }
}
