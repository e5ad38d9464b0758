import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { storeContract } from '../../../test/support/store-contract/index.js';
import type { KeyStore } from '../types.js';
import { EmbeddedStore } from './embedded-store.js';

const logger = pino({ level: 'silent' });
/** The directory each store was opened on, so that reopen finds the same data. */
const dirs = new WeakMap<KeyStore, string>();
const roots: string[] = [];

async function openOn(dir: string): Promise<KeyStore> {
  const store = new EmbeddedStore({ path: dir, logger });
  await store.open();
  dirs.set(store, dir);
  return store;
}

storeContract('embedded', {
  create() {
    const root = mkdtempSync(join(tmpdir(), 'keygate-contract-'));
    roots.push(root);
    return openOn(join(root, 'data'));
  },
  reopen(store) {
    const dir = dirs.get(store);
    if (dir === undefined) throw new Error('reopen: not a store this factory made');
    return openOn(dir);
  },
  async cleanup() {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  },
});
