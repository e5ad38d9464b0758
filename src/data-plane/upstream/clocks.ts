/** An exchange on the upstream clocks. */
export interface Clocked {
  /** performance.now() at the exchange's last progress. */
  progressAt: number;
  readonly timeoutMs: number;
  prev: Clocked | null;
  next: Clocked | null;
  timedOut(): void;
}

/**
 * The upstreams' clocks, with no native timer per request: every exchange in flight sits on
 * one intrusive list, stamped with when it last made progress, and one sweep, every `period`
 * ms while anything is in flight (it stops at the first sweep that finds nothing), times out
 * those idle for their upstream's timeoutMs. A timeout so fires between timeoutMs and
 * timeoutMs + period (plus any event-loop delay) after the last progress. The period is
 * shared by the process: one short timeout makes every sweep more frequent. (A
 * timer per request costs an insert into the timer lists, a refresh per chunk and a
 * removal: about half a microsecond a request in CPU profiles of the key path.)
 */
export class UpstreamClocks {
  private head: Clocked | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** A tenth of the shortest timeoutMs, within 5–250 ms. */
  private period = 250;

  /** Called once per upstream, so the sweep is fine enough for the shortest timeout. */
  register(timeoutMs: number): void {
    const period = Math.max(5, Math.min(250, Math.floor(timeoutMs / 10)));
    if (period >= this.period) return;
    this.period = period;
    if (this.timer) {
      clearInterval(this.timer);
      this.start();
    }
  }

  /** Whether `h` is on the list. */
  private has(h: Clocked): boolean {
    return h.prev !== null || this.head === h;
  }

  /** Puts `h` on the list; one already on it stays as it is. */
  add(h: Clocked): void {
    if (this.has(h)) return;
    h.next = this.head;
    if (this.head) this.head.prev = h;
    this.head = h;
    if (!this.timer) this.start();
  }

  /** Takes `h` off the list, if it is on it. */
  remove(h: Clocked): void {
    if (!this.has(h)) return;
    if (h.prev) h.prev.next = h.next;
    else this.head = h.next;
    if (h.next) h.next.prev = h.prev;
    h.prev = h.next = null;
  }

  private start(): void {
    this.timer = setInterval(() => this.sweep(), this.period);
    this.timer.unref();
  }

  /** Whether a sweep is scheduled (only while an exchange is on the list, or until the sweep after it leaves). */
  get running(): boolean {
    return this.timer !== null;
  }

  private sweep(): void {
    if (this.head === null) {
      // Nothing in flight: no wake-ups until the next exchange.
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    const now = performance.now();
    for (let h: Clocked | null = this.head; h !== null;) {
      const next: Clocked | null = h.next;
      if (now - h.progressAt >= h.timeoutMs) h.timedOut();
      h = next;
    }
  }
}
/** The process's one set of upstream clocks: every upstream registers its timeout, every exchange runs on it. */
export const clocks = new UpstreamClocks();
