import type { Logger } from 'pino';
import type { SigningKeyService } from '../control-plane/signing-key-service.js';
import type { SigningKeyRecord } from '../domain/signing-key.js';
import type { ChangeListener, KeyStore } from '../store/types.js';
import { startSigningKeySync, type SigningKeySync } from './signing-key-sync.js';

/**
 * The feed → apply role of a process that holds the store: every committed change goes to
 * `applyChanges`, and a change of the signing keys reloads them; a reset of the feed resets
 * both. Stop with `signingKeys.stop()` (no more reloads) and `unsubscribe()`.
 */
export function followStore(opts: {
  store: KeyStore;
  signingKeyService: SigningKeyService;
  logger: Logger;
  /** The signing keys loaded at start. */
  initial: SigningKeyRecord[];
  applySigningKeys: (keys: SigningKeyRecord[]) => Promise<void> | void;
  applyChanges: ChangeListener;
  reset: () => void;
}): { signingKeys: SigningKeySync; unsubscribe: () => void } {
  const { store, applyChanges, reset } = opts;
  const signingKeys = startSigningKeySync({
    store, signingKeys: opts.signingKeyService, logger: opts.logger, initial: opts.initial, apply: opts.applySigningKeys,
  });
  const unsubscribe = store.subscribe((changes) => {
    applyChanges(changes);
    if (changes.some((c) => c.kind === 'signing-key')) signingKeys.changed();
  }, () => {
    reset();
    signingKeys.reset();
  });
  return { signingKeys, unsubscribe };
}
