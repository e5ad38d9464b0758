// Opens the stores of one contract suite and closes them, their subscriptions and the
// backend's data after each test.
import { afterEach } from 'vitest';
import type { Change, KeyStore } from '../../../src/store/types.js';

export interface StoreFactory {
  /** A fresh, empty store (at version 0, with no records, audit, usage or node reports), opened. */
  create(): Promise<KeyStore>;
  /** A second store instance over the same data as `store` (after `store` was closed), opened. */
  reopen(store: KeyStore): Promise<KeyStore>;
  /** Frees everything made by create and reopen (temp dirs, server-side data); runs after each test. */
  cleanup?(): Promise<void>;
}

/** What every part of the contract uses to open, reopen and watch stores. */
export interface ContractContext {
  openStore: () => Promise<KeyStore>;
  closeStore: (store: KeyStore) => Promise<void>;
  /** Closes `store` and opens a second instance over the same data. */
  reopen: (store: KeyStore) => Promise<KeyStore>;
  /** Subscribes for the length of the test. */
  listen: (store: KeyStore, listener: (changes: readonly Change[]) => void) => () => void;
}

/** Call inside the suite's describe: registers the cleanup after each test. */
export function contractContext(factory: StoreFactory): ContractContext {
  const live = new Set<KeyStore>();
  const subscriptions: Array<() => void> = [];

  async function openStore(): Promise<KeyStore> {
    const store = await factory.create();
    live.add(store);
    return store;
  }

  async function closeStore(store: KeyStore): Promise<void> {
    live.delete(store);
    await store.close();
  }

  async function reopen(store: KeyStore): Promise<KeyStore> {
    await closeStore(store);
    const again = await factory.reopen(store);
    live.add(again);
    return again;
  }

  /** Subscribes for the length of the test. */
  function listen(store: KeyStore, listener: (changes: readonly Change[]) => void): () => void {
    const unsubscribe = store.subscribe(listener);
    subscriptions.push(unsubscribe);
    return unsubscribe;
  }

  afterEach(async () => {
    for (const unsubscribe of subscriptions.splice(0)) unsubscribe();
    for (const store of [...live]) {
      live.delete(store);
      await store.close().catch(() => undefined);
    }
    await factory.cleanup?.();
  });

  return { openStore, closeStore, reopen, listen };
}
