import type { UsageDelta } from '../../store/types.js';
import { BatchRecorder } from './batch-recorder.js';

export type UsageSink = (deltas: UsageDelta[]) => Promise<void>;

/**
 * Per-key request counts gathered in memory and handed to the store in batches, so the
 * hot path never waits on a store write. A failed flush keeps its counts for the next one.
 */
type Pending = Map<string, { byOutcome: Record<string, number>; lastUsedAt: number }>;

export class UsageRecorder extends BatchRecorder<Pending> {
  private pending: Pending = new Map();

  constructor(private readonly sink: UsageSink, intervalMs = 1_000) {
    super(intervalMs);
  }

  record(keyId: string, outcome: string, at: number): void {
    let entry = this.pending.get(keyId);
    if (!entry) this.pending.set(keyId, (entry = { byOutcome: {}, lastUsedAt: at }));
    entry.byOutcome[outcome] = (entry.byOutcome[outcome] ?? 0) + 1;
    if (at > entry.lastUsedAt) entry.lastUsedAt = at;
  }

  /** Adds counts gathered elsewhere (a worker's batch), kept and retried like this process's own. */
  merge(deltas: readonly UsageDelta[]): void {
    for (const d of deltas) this.add(d.keyId, d.byOutcome, Date.parse(d.lastUsedAt));
  }

  private add(keyId: string, byOutcome: Record<string, number>, lastUsedAt: number): void {
    const now = this.pending.get(keyId);
    if (!now) {
      this.pending.set(keyId, { byOutcome: { ...byOutcome }, lastUsedAt });
      return;
    }
    for (const [outcome, n] of Object.entries(byOutcome)) now.byOutcome[outcome] = (now.byOutcome[outcome] ?? 0) + n;
    now.lastUsedAt = Math.max(now.lastUsedAt, lastUsedAt);
  }

  protected takeBatch(): Pending | null {
    if (this.pending.size === 0) return null;
    const batch = this.pending;
    this.pending = new Map();
    return batch;
  }

  protected send(batch: Pending): Promise<void> {
    const deltas: UsageDelta[] = [];
    for (const [keyId, e] of batch) deltas.push({ keyId, byOutcome: e.byOutcome, lastUsedAt: new Date(e.lastUsedAt).toISOString() });
    return this.sink(deltas);
  }

  protected putBack(batch: Pending): void {
    for (const [keyId, e] of batch) this.add(keyId, e.byOutcome, e.lastUsedAt);
  }
}
