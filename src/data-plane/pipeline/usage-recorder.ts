import type { UsageDelta } from '../../store/types.js';

export type UsageSink = (deltas: UsageDelta[]) => Promise<void>;

/**
 * Per-key request counts gathered in memory and handed to the store in batches, so the
 * hot path never waits on a store write. A failed flush keeps its counts for the next one.
 */
export class UsageRecorder {
  private pending = new Map<string, { byOutcome: Record<string, number>; lastUsedAt: number }>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(private readonly sink: UsageSink, private readonly intervalMs = 1_000) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
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

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const deltas: UsageDelta[] = [];
    for (const [keyId, e] of batch) deltas.push({ keyId, byOutcome: e.byOutcome, lastUsedAt: new Date(e.lastUsedAt).toISOString() });
    this.flushing = this.sink(deltas).catch(() => {
      for (const [keyId, e] of batch) this.add(keyId, e.byOutcome, e.lastUsedAt);
    }).finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
