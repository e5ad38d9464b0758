import type { ParsedIp } from '../../domain/cidr.js';
import type { ActivityRecord } from '../../store/types.js';
import type { RequestContext } from './context.js';

export type ActivitySink = (records: ActivityRecord[]) => Promise<void>;

/** A request as the hot path notes it: no string is built until the batch is written. */
interface Pending {
  keyId: string;
  at: number;
  requestId: string;
  method: string;
  route: string;
  status: number;
  outcome: string;
  clientIp: ParsedIp | string | null;
}

export interface ActivityRecorderOptions {
  /** `keys.activityPerKey`: a batch never carries more of one key than the store keeps. */
  keepPerKey: number;
  intervalMs?: number;
  /** Records held while the store does not take them (Redis down); past it the oldest go. */
  maxPending?: number;
}

/**
 * Each key's requests (method, route name, status, outcome, client IP, request id; never a
 * secret, token, query string or body) gathered in memory and handed to the store in batches,
 * like the usage counts: the hot path pushes one small object and never waits on a write. A
 * failed flush keeps its records for the next one, up to `maxPending`.
 */
export class ActivityRecorder {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private readonly keep: number;
  private readonly intervalMs: number;
  private readonly maxPending: number;
  /** Records dropped because too many were waiting (the store did not take them). */
  dropped = 0;

  constructor(private readonly sink: ActivitySink, opts: ActivityRecorderOptions) {
    this.keep = opts.keepPerKey;
    this.intervalMs = opts.intervalMs ?? 1_000;
    this.maxPending = opts.maxPending ?? 100_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  record(ctx: RequestContext, keyId: string, status: number, outcome: string, at: number): void {
    if (this.pending.length >= this.maxPending) {
      this.dropped++;
      return;
    }
    const ip = ctx.clientIp;
    this.pending.push({
      keyId, at, status, outcome,
      requestId: ctx.requestId,
      method: ctx.req.method ?? '',
      route: ctx.route.name,
      // The connection's own peer has its text already; a forwarded client's is made at flush.
      clientIp: ip === null ? null : ip === ctx.peer.ip ? ctx.peer.text : ip,
    });
  }

  /** Adds records gathered elsewhere (a worker's batch), kept and retried like this process's own. */
  merge(records: readonly ActivityRecord[]): void {
    for (const r of records) {
      if (this.pending.length >= this.maxPending) {
        this.dropped++;
        continue;
      }
      this.pending.push({ ...r, at: Date.parse(r.at) });
    }
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const records = newestPerKey(batch, this.keep).map(toRecord);
    this.flushing = this.sink(records).catch(() => {
      // Kept for the next flush, ahead of what arrived meanwhile (as many as fit).
      const room = Math.max(0, this.maxPending - this.pending.length);
      const back: Pending[] = records.slice(Math.max(0, records.length - room)).map((r) => ({ ...r, at: Date.parse(r.at) }));
      this.dropped += records.length - back.length;
      this.pending = back.concat(this.pending);
    }).finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}

/** The batch without what the store would trim at once: at most `keep` of each key, the newest. */
function newestPerKey(batch: Pending[], keep: number): Pending[] {
  if (batch.length <= keep) return batch;
  const seen = new Map<string, number>();
  const out: Pending[] = [];
  for (let i = batch.length - 1; i >= 0; i--) {
    const p = batch[i]!;
    const n = seen.get(p.keyId) ?? 0;
    if (n >= keep) continue;
    seen.set(p.keyId, n + 1);
    out.push(p);
  }
  return out.reverse();
}

function toRecord(p: Pending): ActivityRecord {
  return {
    keyId: p.keyId,
    at: new Date(p.at).toISOString(),
    requestId: p.requestId,
    method: p.method,
    route: p.route,
    status: p.status,
    outcome: p.outcome,
    clientIp: p.clientIp === null ? null : typeof p.clientIp === 'string' ? p.clientIp : p.clientIp.toString(),
  };
}
