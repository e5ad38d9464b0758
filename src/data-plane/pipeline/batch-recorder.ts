/**
 * What the hot path gathers in memory (usage counts, activity records) handed to the store in
 * batches, so no request waits on a store write: every `intervalMs`, on `flush()`, and a last
 * time on `stop()`. One hand-off at a time; one that fails is put back for the next.
 */
export abstract class BatchRecorder<B> {
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(private readonly intervalMs: number) {}

  /** The batch gathered since the last one, taken out of memory; null when there is none. */
  protected abstract takeBatch(): B | null;
  /** Hands a batch to the store. */
  protected abstract send(batch: B): Promise<void>;
  /** Keeps a batch the store did not take, for the next flush. */
  protected abstract putBack(batch: B): void;

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const batch = this.takeBatch();
    if (batch === null) return;
    this.flushing = this.send(batch).catch(() => this.putBack(batch)).finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
