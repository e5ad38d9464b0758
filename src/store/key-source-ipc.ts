import type { KeyRecord } from '../domain/api-key.js';
import type { Owner } from '../domain/entities.js';
import { IpcRequests } from './ipc-requests.js';
import type { KeySource } from './key-source.js';

/** A worker's key lookup, answered by the process that holds the store. */
export interface LookupRequest { t: 'lookup'; id: number; by: 'hash' | 'id'; value: string }
/** The answer to a `LookupRequest` of the same id: the key and its owner, none, or the store's error. */
export interface LookupResult { t: 'lookup-result'; id: number; record: KeyRecord | null; owner: Owner | null; error?: string }

type Found = { record: KeyRecord; owner: Owner | null } | null;

/** The worker's view of the store: lookups answered by the primary over IPC. */
export class IpcKeySource implements KeySource {
  private readonly requests: IpcRequests<LookupRequest, LookupResult, Found>;

  constructor(send: (m: LookupRequest) => void, timeoutMs = 2_000) {
    this.requests = new IpcRequests(send, timeoutMs, 'key lookup over IPC timed out', {
      answer: (m) => {
        if (m.error !== undefined) throw new Error(m.error);
        return m.record ? { record: m.record, owner: m.owner } : null;
      },
      failed: (_request, err) => { throw err; },
    });
  }

  lookup(hash: string): Promise<Found> {
    return this.requests.request({ t: 'lookup', id: this.requests.id(), by: 'hash', value: hash });
  }

  lookupById(keyId: string): Promise<Found> {
    return this.requests.request({ t: 'lookup', id: this.requests.id(), by: 'id', value: keyId });
  }

  onResult(m: LookupResult): void {
    this.requests.reply(m);
  }
}
