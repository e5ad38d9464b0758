import type { Logger } from 'pino';
import type { SigningKeyService } from '../control-plane/signing-key-service.js';
import { signsNowOrLater, type SigningKeyRecord } from '../domain/signing-key.js';
import type { KeyStore } from '../store/types.js';
import { HEARTBEAT_MS } from './heartbeat.js';

export interface SigningKeySync {
  /** The store's signing keys changed: load them. */
  changed(): void;
  /** The store may have lost writes (its change feed went backwards): check the keys are still there. */
  reset(): void;
  /** The keys this process holds: the last set loaded that had a signer. */
  held(): SigningKeyRecord[];
  stop(): void;
}

/**
 * Keeps a process's token signing keys in step with the store. When the store has lost them
 * (a Redis flushed, or restarted without persistence) while this process still signs with
 * the keys it holds, it writes those back (same `kid`s: tokens they signed keep verifying
 * everywhere) and says so in the log; a key set without a signer is never loaded. Checked
 * whenever the change feed resets, and on every heartbeat period besides.
 */
export function startSigningKeySync(opts: {
  store: KeyStore;
  signingKeys: SigningKeyService;
  logger: Logger;
  /** The keys loaded at start. */
  initial: SigningKeyRecord[];
  apply: (keys: SigningKeyRecord[]) => Promise<void> | void;
}): SigningKeySync {
  let held = opts.initial;
  let queue: Promise<void> = Promise.resolve();
  const serially = (what: string, task: () => Promise<void>, quiet = false): void => {
    queue = queue.then(task).catch((err: unknown) => {
      // The periodic check meets every store outage; the heartbeat already reports those.
      if (quiet) opts.logger.debug({ err }, `could not ${what} the token signing keys`);
      else opts.logger.error({ err }, `could not ${what} the token signing keys`);
    });
  };
  const reconcile = async (): Promise<void> => {
    const restored = await opts.signingKeys.reconcile(held);
    if (restored === null) return;
    if (restored.length > 0) {
      opts.logger.warn({ kids: restored }, 'the store had lost the token signing keys; wrote back the keys this node signs and verifies with');
    } else {
      opts.logger.warn('the store had lost the token signing keys and this node held none to write back; made a new one');
    }
  };
  const reload = async (): Promise<void> => {
    const keys = await opts.store.listSigningKeys();
    if (!keys.some((k) => signsNowOrLater(k, Date.now()))) return reconcile();
    held = keys;
    await opts.apply(keys);
  };
  const timer = setInterval(() => serially('check', reconcile, true), HEARTBEAT_MS);
  timer.unref();
  return {
    changed: () => serially('load', reload),
    reset: () => serially('check', reconcile),
    held: () => held,
    stop: () => clearInterval(timer),
  };
}
