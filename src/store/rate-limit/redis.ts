import type { Quota, RateLimit } from '../../domain/api-key.js';
import type { RedisConnection } from '../redis/connection.js';
import { StoreErrorFallback } from './local.js';
import { RATE_LIMIT } from './redis-script.js';
import type { Budgets, CounterStore, LimitDecision, Window } from './types.js';
import { OK, admission, budgets, estimateAt, periodEnd, periodStart, quotaRefusal, rateRefusal } from './window.js';

/** Keeps one script call (and the time Redis spends in it) short. */
const MAX_DECISIONS_PER_CALL = 64;
/** Headroom: never for a limit of this many requests or fewer, and never with fewer left. */
const HEADROOM_MIN = 1_000;
/** Headroom: a reply from Redis stands as the basis for admissions this long. */
const HEADROOM_TTL_MS = 250;
/** Headroom: requests admitted on it are counted in Redis within this long. */
const COUNT_WITHIN_MS = 10;

const sameLimits = (b: { rate: RateLimit | null; quota: Quota | null }, rate: RateLimit | null, quota: Quota | null): boolean =>
  b.rate?.limit === rate?.limit && b.rate?.windowSeconds === rate?.windowSeconds && b.quota?.limit === quota?.limit && b.quota?.period === quota?.period;

/**
 * What a node leaves to Redis's exact decision, with `nodes` keygate processes sharing the
 * limit: the limit less a (nodes + 1)th of it (one more than are counted, for a node that has
 * just started). If every node admitted what lies above this margin from the same reply, all
 * together would still stay within the limit.
 */
const marginOf = (limit: number, nodes: number): number => Math.max(limit * (1 - 1 / (Math.max(1, nodes) + 1)), HEADROOM_MIN);

/** Whether `now` lies in the window and quota period a headroom was learned in. */
const within = (h: Headroom, now: number): boolean => now >= h.windowStart && now < h.windowEnd && now >= h.quotaStart && now < h.quotaEnd;

/** An admission on headroom: the RateLimit-* trio of what the last reply left, less what this node admitted since. */
function headroomAdmission(h: Headroom, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision {
  const rateLeft = rate === null ? Infinity : Math.max(0, Math.floor(h.rateRoom - h.since));
  const quotaLeft = quota === null ? Infinity : Math.max(0, h.quotaRoom - h.since);
  const byQuota = quotaLeft < rateLeft;
  const reset = Math.max(1, Math.ceil(((byQuota ? h.quotaEnd : h.windowEnd) - now) / 1000));
  return {
    ok: true,
    headers: {
      'ratelimit-limit': String(byQuota ? quota!.limit : rate!.limit),
      'ratelimit-remaining': String(byQuota ? quotaLeft : rateLeft),
      'ratelimit-reset': String(reset),
    },
  };
}

/** Requests of one key (with one set of limits) for the next script call. */
interface Batch {
  keyId: string;
  rate: RateLimit | null;
  quota: Quota | null;
  now: number;
  /** Requests waiting for Redis's decision. */
  waiters: Array<(d: LimitDecision) => void>;
  /** Requests already admitted on headroom, to be counted. */
  counted: number;
  /** The key's headroom when the batch was sent, and its admissions up to then. */
  basis: Headroom | undefined;
  countedUpTo: number;
}

/** What Redis last said of a key's budgets, and what this node has admitted since without asking. */
interface Headroom {
  rate: RateLimit | null;
  quota: Quota | null;
  /** The decision's time (-Infinity once a call has failed), and the window and quota period it was made in. */
  at: number;
  windowStart: number;
  windowEnd: number;
  quotaStart: number;
  quotaEnd: number;
  rateRoom: number;
  quotaRoom: number;
  /** Headroom admissions ever, and those since the reply (not in its counts). */
  admitted: number;
  since: number;
}

/**
 * Rate limits and quotas shared by every node, decided by a Lua script, each call bounded by
 * store.timeoutMs from when it is made. Requests that arrive together (in one turn of the event loop)
 * share one script call: those of one key make one decision that admits as many as fit,
 * exactly as if each had been decided alone, and the decisions of different keys ride in
 * the same call (up to 64) — a busy gateway makes one Redis call per turn, not one per
 * request. The counters of one key share a hash tag, so Redis Cluster spreads keys over its
 * masters while each decision stays atomic; there, each key gets its own call. When Redis
 * cannot answer (a fault, a timeout, or the circuit breaker open), the fallback decides.
 *
 * Headroom: far from its limits a request need not wait for Redis. While the last reply for
 * a key (under 250 ms old, same window and quota period), less what this node has admitted
 * since, leaves more than the margin of each limit (`marginOf`: with N nodes, all but an
 * (N + 1)th of the limit; with one, half; never under 1 000 requests), the request is admitted
 * at once and counted in Redis within 10 ms, in the next call. Below the margin every request
 * is decided by Redis, exactly. Limits of 1 000 or less are always decided by Redis.
 */
export class RedisRateLimiter implements CounterStore {
  private readonly fallback: StoreErrorFallback;
  private pending = new Map<string, Batch>();
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly headroom = new Map<string, Headroom>();
  /** The last batch sent per key id, until its reply: only the reply to it is learned from. */
  private readonly latestSent = new Map<string, Batch>();

  constructor(
    private readonly conn: RedisConnection,
    onStoreError: 'local' | 'allow' | 'deny',
    /** How many keygate processes share the limits now (for the `local` fallback's share and the headroom). */
    private readonly liveInstances: () => number,
    fallbackUsed: () => void,
  ) {
    this.fallback = new StoreErrorFallback(onStoreError, liveInstances, fallbackUsed);
  }

  private keys(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number) {
    const tag = `${this.conn.prefix}rl:{${keyId}}`;
    const size = rate ? rate.windowSeconds * 1000 : 1;
    const start = Math.floor(now / size) * size;
    const qStart = quota ? periodStart(quota.period, now) : 0;
    return {
      size, start, qStart,
      names: [`${tag}:w:${size}:${start}`, `${tag}:w:${size}:${start - size}`, `${tag}:q:${quota?.period ?? 'none'}:${qStart}`],
    };
  }

  take(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): LimitDecision | Promise<LimitDecision> {
    const h = this.headroom.get(keyId);
    if (h !== undefined && this.roomFor(h, rate, quota, now)) {
      h.admitted++;
      h.since++;
      let batch = this.batchFor(keyId, rate, quota, now);
      if (!within(h, batch.now)) {
        // The pending batch belongs to another window or period (requests do not reach the
        // limiter in strict time order): send it, so this one is counted in its own.
        this.flush();
        batch = this.batchFor(keyId, rate, quota, now);
      }
      batch.counted++;
      if (!this.scheduled && this.timer === null) this.timer = setTimeout(this.flush, COUNT_WITHIN_MS);
      return headroomAdmission(h, rate, quota, now);
    }
    let batch = this.batchFor(keyId, rate, quota, now);
    if (batch.counted > 0 && batch.now !== now) {
      // A batch of headroom admissions waiting for its timer is older than this request: send
      // it now, so this request is decided at its own time.
      this.flush();
      batch = this.batchFor(keyId, rate, quota, now);
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    const waiters = batch.waiters;
    return new Promise((resolve) => waiters.push(resolve));
  }

  /** Whether a request of this key may pass on its headroom now. */
  private roomFor(h: Headroom, rate: RateLimit | null, quota: Quota | null, now: number): boolean {
    if (now - h.at > HEADROOM_TTL_MS || !within(h, now) || !sameLimits(h, rate, quota)) return false;
    const nodes = this.liveInstances();
    return (rate === null || h.rateRoom - h.since > marginOf(rate.limit, nodes))
      && (quota === null || h.quotaRoom - h.since > marginOf(quota.limit, nodes));
  }

  /** The pending batch of this key and limits, made if there is none. */
  private batchFor(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Batch {
    // Batched by key id; a key whose limits changed within the turn (a policy reloaded
    // between its requests) gets a batch of its own under a longer name.
    let id = keyId;
    let batch = this.pending.get(id);
    if (batch && !sameLimits(batch, rate, quota)) {
      id = `${keyId}|${rate?.limit}|${rate?.windowSeconds}|${quota?.limit}|${quota?.period}`;
      batch = this.pending.get(id);
    }
    if (!batch) {
      batch = { keyId, rate, quota, now, waiters: [], counted: 0, basis: undefined, countedUpTo: 0 };
      this.pending.set(id, batch);
    }
    return batch;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.size === 0) return;
    const batches = [...this.pending.values()];
    this.pending = new Map();
    for (const b of batches) {
      b.basis = this.headroom.get(b.keyId);
      b.countedUpTo = b.basis?.admitted ?? 0;
      this.latestSent.set(b.keyId, b);
    }
    // On a Cluster the keys of different key ids live in different hash slots: one call each.
    const per = this.conn.clustered ? 1 : MAX_DECISIONS_PER_CALL;
    for (let i = 0; i < batches.length; i += per) this.decide(batches.slice(i, i + per));
  };

  /** One script call for the batches of several keys (one round trip, one reply to parse). */
  private decide(batches: Batch[]): void {
    const names: string[] = [];
    const args: number[] = [];
    const windows = batches.map(({ keyId, rate, quota, now, waiters, counted }) => {
      const w = this.keys(keyId, rate, quota, now);
      names.push(...w.names);
      args.push(
        rate ? rate.limit : -1, w.size, now - w.start,
        quota ? quota.limit : -1, quota ? periodEnd(quota.period, w.qStart) + 86_400_000 : 0,
        waiters.length, counted,
      );
      return w;
    });
    this.conn.fastCall((c) => RATE_LIMIT.run(c, names, args)).then((reply) => {
      const r = reply as number[];
      for (let b = 0; b < batches.length; b++) {
        const batch = batches[b]!;
        const { rate, quota, now, waiters } = batch;
        const { start, size, qStart } = windows[b]!;
        const admitted = r[b * 5]!;
        const why = r[b * 5 + 1]!;
        // Learned only from the reply to the last batch sent for the key: an earlier reply
        // would leave out what later batches, still in flight, admit.
        if (this.latestSent.get(batch.keyId) === batch) {
          this.latestSent.delete(batch.keyId);
          this.learn(batch, start, size, qStart, r[b * 5 + 2]!, r[b * 5 + 3]!, r[b * 5 + 4]!);
        }
        let refused: LimitDecision | null = null;
        // The batch's admissions share one answer: the budgets as this reply leaves them.
        const ok = admitted > 0
          ? admission(rate, { start, size, current: r[b * 5 + 2]!, previous: r[b * 5 + 3]! }, quota, { start: qStart, count: r[b * 5 + 4]! }, now)
          : OK;
        for (let i = 0; i < waiters.length; i++) {
          if (i < admitted) {
            waiters[i]!(ok);
            continue;
          }
          refused ??= why === 2 ? quotaRefusal(quota!, qStart, now) : rateRefusal({ start, size, current: r[b * 5 + 2]!, previous: r[b * 5 + 3]! }, rate!.limit, now);
          waiters[i]!(refused);
        }
      }
    }, () => {
      // No headroom for any key once Redis fails: the next requests go to Redis (or the
      // fallback) until a reply comes back. What was admitted on headroom in these batches
      // is counted by the fallback instead.
      for (const h of this.headroom.values()) h.at = -Infinity;
      for (const batch of batches) {
        const { keyId, rate, quota, now, waiters, counted } = batch;
        if (this.latestSent.get(keyId) === batch) this.latestSent.delete(keyId);
        if (counted > 0) this.fallback.count(keyId, rate, quota, now, counted);
        for (const resolve of waiters) resolve(this.fallback.take(keyId, rate, quota, now));
      }
    });
  }

  /** Keeps what a reply says of a key's budgets, as the basis for headroom admissions. */
  private learn(batch: Batch, start: number, size: number, qStart: number, current: number, previous: number, used: number): void {
    const { keyId, rate, quota, now } = batch;
    let h = this.headroom.get(keyId);
    if (h === undefined) {
      // A limit of HEADROOM_MIN or less never has the headroom: every request goes to Redis.
      if ((rate !== null && rate.limit <= HEADROOM_MIN) || (quota !== null && quota.limit <= HEADROOM_MIN)) return;
      h = { rate, quota, at: 0, windowStart: 0, windowEnd: 0, quotaStart: 0, quotaEnd: 0, rateRoom: 0, quotaRoom: 0, admitted: 0, since: 0 };
      this.headroom.set(keyId, h);
    }
    h.rate = rate;
    h.quota = quota;
    h.at = now;
    h.windowStart = rate ? start : -Infinity;
    h.windowEnd = rate ? start + size : Infinity;
    h.quotaStart = quota ? qStart : -Infinity;
    h.quotaEnd = quota ? periodEnd(quota.period, qStart) : Infinity;
    h.rateRoom = rate ? rate.limit - estimateAt({ start, size, current, previous }, now) : Infinity;
    h.quotaRoom = quota ? quota.limit - used : Infinity;
    // Admitted on headroom and not in this reply's counts: since the batch was sent (or, if
    // the headroom was dropped and begun again meanwhile, every one of the new headroom's).
    h.since = batch.basis === h ? h.admitted - batch.countedUpTo : h.admitted;
  }

  async peek(keyId: string, rate: RateLimit | null, quota: Quota | null, now: number): Promise<Budgets> {
    const { size, start, qStart, names } = this.keys(keyId, rate, quota, now);
    const [cur, prev, used] = await this.conn.slowCall((c) => c.mget(...names));
    const w: Window = { start, size, current: Number(cur ?? 0), previous: Number(prev ?? 0) };
    return budgets(w, { start: qStart, count: Number(used ?? 0) }, rate, quota, now);
  }

  prune(now: number): void {
    this.fallback.prune(now);
    // An old headroom goes once no batch of its key is pending or in flight (their accounting
    // refers to it).
    for (const [keyId, h] of this.headroom) {
      if (now - h.at > HEADROOM_TTL_MS && !this.pending.has(keyId) && !this.latestSent.has(keyId)) this.headroom.delete(keyId);
    }
  }
}
