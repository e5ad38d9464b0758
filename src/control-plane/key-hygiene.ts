import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { DAY_MS, lastActivity, rotationDue } from '../domain/api-key.js';
import type { Actor } from '../domain/entities.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeyStore } from '../store/types.js';
import type { KeyService } from './key-service.js';

export interface KeyHygieneDeps {
  store: KeyStore;
  keys: KeyService;
  config: Config;
  metrics: Metrics;
  logger: Logger;
  /** The clock (a test's fake one: nobody waits days). */
  now?: () => number;
  /** Between sweeps (default 60 s). */
  intervalMs?: number;
}

const SWEEPER: Actor = { type: 'system', name: 'keygate:inactivity' };
const SCAN_BATCH = 500;

/**
 * The periodic look over every key: counts those due for rotation (the
 * `keygate_keys_rotation_due` gauge) and, with `keys.inactivityDays` set, expires those not
 * used for that long. "Used" is `lastUsedAt` as the store holds it, which every node's usage
 * batches reach within a second or so; the expiry is a store write, so it reaches every node
 * like any change. Every node's admin role sweeps; a key two nodes expire at once is written
 * by one (the other's write is refused as a conflict and finds nothing left to do).
 */
export class KeyHygiene {
  private readonly now: () => number;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SweepResult> | null = null;

  constructor(private readonly deps: KeyHygieneDeps) {
    this.now = deps.now ?? Date.now;
    this.intervalMs = deps.intervalMs ?? 60_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep().catch((err: unknown) => {
      this.deps.logger.warn({ err: { message: (err as Error).message } }, 'key hygiene sweep failed; will retry');
    }), this.intervalMs);
    this.timer.unref();
    void this.sweep().catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass over every key; one at a time. */
  sweep(): Promise<SweepResult> {
    if (this.running) return this.running;
    this.running = this.sweepNow().finally(() => { this.running = null; });
    return this.running;
  }

  private async sweepNow(): Promise<SweepResult> {
    const { store, keys, config, metrics, logger } = this.deps;
    const now = this.now();
    const days = config.keys.inactivityDays;
    const cutoff = days === null ? null : now - days * DAY_MS;
    let due = 0;
    const expired: string[] = [];
    for (let after = 0; ;) {
      const page = await store.scanKeys(after, SCAN_BATCH);
      for (const rec of page) {
        after = rec.seq;
        if (rotationDue(rec, config.keys.rotationReminderDays, now)) due++;
        // Only keys idle since before the cutoff by their own record need their usage read.
        if (cutoff === null || rec.inactiveSince != null || lastActivity(rec, null) > cutoff) continue;
        const idleSince = lastActivity(rec, (await store.getUsage(rec.id)).lastUsedAt);
        if (idleSince > cutoff) continue;
        if (await keys.expireInactive(rec.id, idleSince, cutoff, SWEEPER)) {
          expired.push(rec.id);
          logger.info({ keyId: rec.id, lastActivity: new Date(idleSince).toISOString(), inactivityDays: days }, 'key expired for inactivity');
        }
      }
      if (page.length < SCAN_BATCH) break;
    }
    metrics.keysRotationDue.set(due);
    return { rotationDue: due, expired };
  }
}

export interface SweepResult { rotationDue: number; expired: string[] }
