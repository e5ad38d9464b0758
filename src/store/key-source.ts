import type { KeyRecord } from '../domain/api-key.js';
import type { Owner } from '../domain/entities.js';
import type { KeyStore } from './types.js';

/** The one read the data plane makes of the store: a key by secret hash, with its owner. */
export interface KeySource {
  lookup(hash: string): Promise<{ record: KeyRecord; owner: Owner | null } | null>;
  /** By key id: how a token finds the current state of the key it was minted from. */
  lookupById(keyId: string): Promise<{ record: KeyRecord; owner: Owner | null } | null>;
}

/** A KeySource over a store in this process. */
export function storeKeySource(store: Pick<KeyStore, 'lookupKey'>): KeySource {
  return {
    lookup: (hash) => store.lookupKey('hash', hash),
    lookupById: (keyId) => store.lookupKey('id', keyId),
  };
}
