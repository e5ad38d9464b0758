import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Change, EntityType } from '../types.js';
import type { RedisClient, RedisConnection } from './connection.js';

type StreamEntry = [id: string, fields: string[]];

/** Entries taken per read of the feed. */
const PAGE = 1_000;
type XReadReply = Array<[stream: string, entries: StreamEntry[]]> | null;

export interface FeedEvents {
  /** Changes in version order, each batch applied exactly once. */
  changes(changes: Change[]): void;
  /** The feed lost entries this node never saw (trimmed while it was away): drop all caches. */
  reset(): void;
  /** A read of the feed failed. */
  error(err: unknown): void;
}

export interface FeedEntry {
  version: number;
  /** This commit's random id, and the id of the commit before it ('' for the first). */
  head: string | null;
  prev: string | null;
  changes: Change[];
}

/**
 * Parses one stream entry (`<version>-1`; fields `at`, `c`, and the commit ids `h` and `p`,
 * which chain every commit to the one before it: a Redis that came back without its last
 * writes, and reuses their version numbers, breaks the chain).
 */
export function parseFeedEntry(id: string, fields: string[]): FeedEntry {
  const version = Number(id.slice(0, id.indexOf('-')));
  let at = 0;
  let raw = '[]';
  let head: string | null = null;
  let prev: string | null = null;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const f = fields[i];
    if (f === 'at') at = Number(fields[i + 1]);
    else if (f === 'c') raw = fields[i + 1]!;
    else if (f === 'h') head = fields[i + 1]!;
    else if (f === 'p') prev = fields[i + 1]!;
  }
  const changes = (JSON.parse(raw) as Array<[EntityType, string, 'put' | 'delete']>)
    .map(([kind, cid, op]) => ({ version, kind, id: cid, op, at }));
  return { version, head, prev, changes };
}

/**
 * Follows the store's Redis Stream from the last version this node applied. A blocking
 * XREAD returns at once when entries wait and otherwise after `blockMs`; either answer
 * confirms the node is current as of a known instant (`confirmedAt`), which is what bounds
 * staleness. After a reconnect the next read resumes from the last applied version, so no
 * change is missed unless the stream was trimmed past it, which is detected as a gap. Each
 * entry names the commit before it, so a Redis that came back without writes this node
 * applied (and hands their version numbers out again) is noticed too: the node then drops
 * everything cached and reads the feed from the start.
 */
export class ChangeFeedReader {
  private applied: number;
  /** The id of the last commit applied; null while unknown (then the next one is taken on trust). */
  private head: string | null = null;
  private confirmed = 0;
  private running = false;
  private client: RedisClient | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly conn: RedisConnection,
    private readonly feedKey: string,
    startVersion: number,
    /** When `startVersion` was read: the node is current as of then. */
    startedAt: number,
    private readonly events: FeedEvents,
    private readonly logger: Logger,
    private readonly blockMs = 1_000,
    /** The store's version counter and last commit id, beside the stream: they show a Redis that lost writes. */
    private readonly versionKey = feedKey.replace(/:feed$/, ':version'),
    private readonly headKey = feedKey.replace(/:feed$/, ':head'),
  ) {
    this.applied = startVersion;
    this.confirmed = startedAt;
  }

  /** The newest version this node has applied. */
  get appliedVersion(): number {
    return this.applied;
  }

  /** Every change committed before this instant (ms since the epoch) has been applied. */
  get confirmedAt(): number {
    return this.confirmed;
  }

  async start(): Promise<void> {
    this.running = true;
    this.client = await this.conn.blocking('feed', this.blockMs + 1_000);
    const [version, head] = await this.client.mget(this.versionKey, this.headKey).catch(() => [null, null]);
    if (Number(version ?? 0) === this.applied) this.head = head ?? null;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let backoff = 0;
    while (this.running) {
      const sentAt = Date.now();
      let reply: XReadReply;
      try {
        reply = (await this.client!.xread('COUNT', PAGE, 'BLOCK', this.blockMs, 'STREAMS', this.feedKey, `${this.applied}-1`)) as XReadReply;
        backoff = 0;
      } catch (err) {
        if (!this.running) break;
        this.events.error(err);
        backoff = Math.min(backoff === 0 ? 50 : backoff * 2, 500);
        await sleep(backoff);
        continue;
      }
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) {
        // Reading from the applied version on, a Redis that lost its data (restarted without
        // persistence, flushed, failed over to a replica that lagged) would look quiet forever:
        // when nothing arrives, check that the store is still the one this node follows.
        try {
          const [version, stored] = await this.client!.mget(this.versionKey, this.headKey);
          const current = Number(version ?? 0);
          const head = stored ?? null;
          if (current < this.applied || (current === this.applied && this.head !== null && head !== this.head)) {
            this.startOver('the store lost writes this node applied (its version went backwards or its last commit changed)');
            continue;
          }
          if (current === this.applied) this.head = head;
        } catch (err) {
          if (!this.running) break;
          this.events.error(err);
          continue;
        }
        // Nothing arrived between the server taking the read (after sentAt) and it timing out.
        this.confirmed = Math.min(sentAt + this.blockMs, Date.now());
        continue;
      }
      // A full page may have more behind it: only a read that drained the backlog confirms.
      if (this.apply(entries) && entries.length < PAGE) this.confirmed = sentAt;
    }
  }

  /** Drops everything cached and reads the store's feed again from its first version. */
  private startOver(why: string): void {
    this.logger.warn({ applied: this.applied }, `${why}; dropping every cached key and reading the feed from the start`);
    this.head = null;
    this.applied = 0;
    this.events.reset();
  }

  /** Delivers the entries in order; false when they do not follow what this node applied (read again from the start). */
  private apply(entries: StreamEntry[]): boolean {
    const batch: Change[] = [];
    for (const [id, fields] of entries) {
      const { version, head, prev, changes } = parseFeedEntry(id, fields);
      if (version <= this.applied) continue;
      if (version === this.applied + 1) {
        if (prev !== null && this.head !== null && prev !== this.head) {
          if (batch.length > 0) this.events.changes(batch);
          this.startOver('the change feed does not follow the last commit this node applied (Redis lost writes)');
          return false;
        }
      } else {
        this.logger.warn({ applied: this.applied, next: version }, 'the change feed was trimmed past this node; dropping every cached key');
        if (batch.length > 0) this.events.changes(batch.splice(0));
        this.events.reset();
      }
      this.applied = version;
      this.head = head;
      batch.push(...changes);
    }
    if (batch.length > 0) this.events.changes(batch);
    return true;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.client?.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
