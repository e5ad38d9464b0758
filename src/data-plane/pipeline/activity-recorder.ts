import type { ParsedIp } from '../../domain/cidr.js';
import { isoCache } from '../../domain/iso-time.js';
import type { ActivityRecord } from '../../store/types.js';
import { BatchRecorder } from './batch-recorder.js';
import type { RequestContext } from './context.js';

export type ActivitySink = (records: ActivityRecord[]) => Promise<void>;

/** A request as the hot path notes it: no string is built until the batch is written. */
interface Slot {
  at: number;
  requestId: string;
  method: string;
  route: string;
  status: number;
  outcome: string;
  clientIp: ParsedIp | string | null;
}

/**
 * One key's newest requests since the last flush: at most `keep` slots, reused round after
 * round, so a busy key costs no allocation per request once its ring is full.
 */
class Ring {
  readonly slots: Slot[] = [];
  /** Where the next request goes, and how many of the slots hold this round's requests. */
  next = 0;
  count = 0;
  /** Flushes in a row that found nothing: an idle key's ring is let go. */
  idle = 0;
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
 * like the usage counts: the hot path writes one slot of its key's ring (no allocation once
 * the ring is full, and never more than the store keeps) and never waits on a write. A failed
 * flush keeps its records for the next one, up to `maxPending`.
 */
export class ActivityRecorder extends BatchRecorder<ActivityRecord[]> {
  private rings = new Map<string, Ring>();
  /** Records of a failed flush (and a worker's, merged), written ahead of the rings' next time. */
  private carried: ActivityRecord[] = [];
  private readonly keep: number;
  private readonly maxPending: number;
  /** Records dropped because too many were waiting (the store did not take them). */
  dropped = 0;

  constructor(private readonly sink: ActivitySink, opts: ActivityRecorderOptions) {
    super(opts.intervalMs ?? 1_000);
    this.keep = Math.max(1, opts.keepPerKey);
    this.maxPending = opts.maxPending ?? 100_000;
  }

  /** One request of `keyId`; `at` is when it arrived (ms). */
  record(ctx: RequestContext, keyId: string, status: number, outcome: string, at: number): void {
    let ring = this.rings.get(keyId);
    if (ring === undefined) this.rings.set(keyId, (ring = new Ring()));
    const ip = ctx.clientIp;
    // The connection's own peer has its text already; a forwarded client's is made at flush.
    const clientIp = ip === null ? null : ip === ctx.peer.ip ? ctx.peer.text : ip;
    const method = ctx.req.method ?? '';
    let slot = ring.slots[ring.next];
    if (slot === undefined) {
      slot = { at, requestId: ctx.requestId, method, route: ctx.route.name, status, outcome, clientIp };
      ring.slots.push(slot);
    } else {
      slot.at = at;
      slot.requestId = ctx.requestId;
      slot.method = method;
      slot.route = ctx.route.name;
      slot.status = status;
      slot.outcome = outcome;
      slot.clientIp = clientIp;
    }
    ring.next = ring.next + 1 === this.keep ? 0 : ring.next + 1;
    if (ring.count < this.keep) ring.count++;
  }

  /** Adds records gathered elsewhere (a worker's batch), kept and retried like this process's own. */
  merge(records: readonly ActivityRecord[]): void {
    const room = Math.max(0, this.maxPending - this.carried.length);
    // Past the bound the oldest of the batch go.
    const from = Math.max(0, records.length - room);
    this.dropped += from;
    for (let i = from; i < records.length; i++) this.carried.push(records[i]!);
  }

  /** This round's records: what was carried, then each ring's requests oldest first, each key at most `keep`; null when there are none. */
  protected takeBatch(): ActivityRecord[] | null {
    const out = newestPerKey(this.carried, this.keep);
    this.carried = [];
    const iso = isoCache();
    for (const [keyId, ring] of this.rings) {
      if (ring.count === 0) {
        if (++ring.idle > 1) this.rings.delete(keyId);
        continue;
      }
      ring.idle = 0;
      const first = ring.count < this.keep ? ring.next - ring.count : ring.next;
      for (let i = 0; i < ring.count; i++) {
        const slot = ring.slots[(first + i + this.keep) % this.keep]!;
        const ip = slot.clientIp;
        out.push({
          keyId, at: iso(slot.at), requestId: slot.requestId, method: slot.method, route: slot.route, status: slot.status, outcome: slot.outcome,
          clientIp: ip === null || typeof ip === 'string' ? ip : ip.toString(),
        });
        // The slot lets go of what it held until it is reused.
        slot.clientIp = null;
      }
      ring.count = 0;
    }
    return out.length === 0 ? null : out;
  }

  protected send(records: ActivityRecord[]): Promise<void> {
    return this.sink(records);
  }

  /** A batch the store did not take: kept for the next flush (as many as fit). */
  protected putBack(records: ActivityRecord[]): void {
    this.merge(records);
  }
}

/** At most `keep` records of each key, the newest (the list is in arrival order). */
function newestPerKey(batch: ActivityRecord[], keep: number): ActivityRecord[] {
  if (batch.length <= keep) return batch;
  const seen = new Map<string, number>();
  const out: ActivityRecord[] = [];
  for (let i = batch.length - 1; i >= 0; i--) {
    const r = batch[i]!;
    const n = seen.get(r.keyId) ?? 0;
    if (n >= keep) continue;
    seen.set(r.keyId, n + 1);
    out.push(r);
  }
  return out.reverse();
}
