import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KeyRecord } from '../../domain/api-key.js';
import type { AdminTokenRecord, AuditEntry, Group, Owner, Workspace } from '../../domain/entities.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import type {
  ActivityRecord, AuditPage, Change, ChangeListener, EntityType, KeyStore, KeyUsage, NodeReport, ResetListener, UsageDelta, WriteBatch,
} from '../types.js';
import { NODE_REPORT_MAX_AGE_MS } from '../types.js';
import { ChangeFeedReader, parseFeedEntry } from './change-feed.js';
import type { RedisConnection } from './connection.js';
import { AUDIT_PAGE, COMMIT, INDEX_WORKSPACES, LOOKUP, RECORD_ACTIVITY, RECORD_USAGE } from './scripts.js';

export interface RedisStoreOptions {
  connection: RedisConnection;
  logger: Logger;
  /** How many batches the change feed keeps (approximately) for nodes catching up. */
  feedLength?: number;
  /** How long one blocking read of the feed waits; bounds how stale a quiet node may look. */
  feedBlockMs?: number;
  /** Node reports older than this are not listed. */
  nodeMaxAgeMs?: number;
}

/**
 * Reports older than this are deleted from Redis; younger ones past the listing bound are only
 * left out (deleting a report another node may be refreshing at that moment could lose it).
 */
const NODE_RETENTION_MS = 24 * 3_600_000;

/**
 * The shared store: every record in Redis (or Redis Cluster, all under one hash tag so each
 * batch is one script on one slot), every batch one atomic Lua script that also appends the
 * change-feed entry. Nothing is cached here; the data plane caches compiled policies and
 * follows the feed. Faults surface as STORE_UNAVAILABLE, refused preconditions as CONFLICT.
 */
export class RedisStore implements KeyStore {
  readonly driver = 'redis' as const;
  private readonly conn: RedisConnection;
  private readonly logger: Logger;
  private readonly base: string;
  private readonly feedLength: number;
  private readonly feedBlockMs: number;
  private readonly nodeMaxAgeMs: number;
  private readonly listeners = new Set<ChangeListener>();
  private readonly resetListeners = new Set<ResetListener>();
  private feed: ChangeFeedReader | null = null;
  private closed = false;

  constructor(opts: RedisStoreOptions) {
    this.conn = opts.connection;
    this.logger = opts.logger;
    this.base = `${opts.connection.prefix}{store}`;
    this.feedLength = opts.feedLength ?? 100_000;
    this.feedBlockMs = opts.feedBlockMs ?? 1_000;
    this.nodeMaxAgeMs = opts.nodeMaxAgeMs ?? NODE_REPORT_MAX_AGE_MS;
  }

  private k(name: string): string {
    return `${this.base}:${name}`;
  }

  async open(): Promise<void> {
    await this.conn.connect();
    const startedAt = Date.now();
    const version = await this.currentVersion();
    this.feed = new ChangeFeedReader(this.conn, this.k('feed'), version, startedAt, {
      changes: (changes) => this.publish(changes),
      reset: () => {
        for (const l of this.resetListeners) l();
      },
      error: (err) => this.logger.warn({ err: { message: (err as Error).message } }, 'reading the change feed failed; retrying'),
    }, this.logger, this.feedBlockMs);
    await this.feed.start();
    await this.indexWorkspaces();
    this.logger.info({ version, prefix: this.conn.prefix }, 'redis store connected');
  }

  /**
   * Once per store: fills the per-workspace key sets (`:w:<id>`, which guard a workspace
   * delete) for keys written by versions before them. Every commit keeps them since.
   */
  private async indexWorkspaces(): Promise<void> {
    const marker = this.k('w-indexed');
    if ((await this.conn.slowCall((c) => c.get(marker))) !== null) return;
    let after = 0;
    for (;;) {
      const page = await this.conn.slowCall((c) => c.zrangebyscore(this.k('order'), `(${after}`, '+inf', 'WITHSCORES', 'LIMIT', 0, 500));
      if (page.length === 0) break;
      const ids = page.filter((_, i) => i % 2 === 0);
      after = Number(page[page.length - 1]);
      await this.conn.slowCall((c) => INDEX_WORKSPACES.run(c, [this.k('e:key')], [this.base, ...ids]));
    }
    await this.conn.slowCall((c) => c.set(marker, '1'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.feed?.stop();
    await this.conn.close();
  }

  healthy(): boolean {
    return !this.closed && this.feed !== null;
  }

  feedConfirmedAt(): number {
    return this.feed?.confirmedAt ?? 0;
  }

  appliedVersion(): number {
    return this.feed?.appliedVersion ?? 0;
  }

  async currentVersion(): Promise<number> {
    const v = await this.conn.slowCall((c) => c.get(this.k('version')));
    return v === null ? 0 : Number(v);
  }

  /** An admin read by id (the data plane reads keys through lookupKey): the admin bound, as for writes. */
  private async getRecord<T>(type: EntityType, id: string): Promise<T | null> {
    const raw = await this.conn.slowCall((c) => c.hget(this.k(`e:${type}`), id));
    return raw === null ? null : (JSON.parse(raw) as T);
  }

  private async listRecords<T>(type: EntityType): Promise<T[]> {
    const all = await this.conn.slowCall((c) => c.hvals(this.k(`e:${type}`)));
    return all.map((raw) => JSON.parse(raw) as T);
  }

  getWorkspace(id: string): Promise<Workspace | null> {
    return this.getRecord('workspace', id);
  }

  listWorkspaces(): Promise<Workspace[]> {
    return this.listRecords('workspace');
  }

  getKey(id: string): Promise<KeyRecord | null> {
    return this.getRecord('key', id);
  }

  async lookupKey(by: 'hash' | 'id', value: string): Promise<{ record: KeyRecord; owner: Owner | null } | null> {
    const reply = (await this.conn.fastCall((c) => LOOKUP.run(c, [this.k('hash')], [this.base, by, value]))) as [string, string] | null;
    if (!reply) return null;
    return { record: JSON.parse(reply[0]) as KeyRecord, owner: reply[1] === '' ? null : (JSON.parse(reply[1]) as Owner) };
  }

  async scanKeys(afterSeq: number, count: number): Promise<KeyRecord[]> {
    return this.conn.slowCall(async (c) => {
      const ids = await c.zrangebyscore(this.k('order'), `(${afterSeq}`, '+inf', 'LIMIT', 0, count);
      if (ids.length === 0) return [];
      const raws = await c.hmget(this.k('e:key'), ...ids);
      // A key deleted between the two reads is simply skipped.
      return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as KeyRecord);
    });
  }

  keyIdsInGroup(groupId: string): Promise<string[]> {
    return this.conn.slowCall((c) => c.smembers(this.k(`g:${groupId}`)));
  }

  keyIdsOfOwner(ownerId: string): Promise<string[]> {
    return this.conn.slowCall((c) => c.smembers(this.k(`o:${ownerId}`)));
  }

  getGroup(id: string): Promise<Group | null> {
    return this.getRecord('group', id);
  }

  listGroups(): Promise<Group[]> {
    return this.listRecords('group');
  }

  getOwner(id: string): Promise<Owner | null> {
    return this.getRecord('owner', id);
  }

  listOwners(): Promise<Owner[]> {
    return this.listRecords('owner');
  }

  listSigningKeys(): Promise<SigningKeyRecord[]> {
    return this.listRecords('signing-key');
  }

  async workspaceHasKeys(workspaceId: string): Promise<boolean> {
    return (await this.conn.slowCall((c) => c.scard(this.k(`w:${workspaceId}`)))) > 0;
  }

  getAdminToken(id: string): Promise<AdminTokenRecord | null> {
    return this.getRecord('admin-token', id);
  }

  listAdminTokens(): Promise<AdminTokenRecord[]> {
    return this.listRecords('admin-token');
  }

  async pageAudit(filter: { targetId?: string; before?: number; limit: number }): Promise<AuditPage> {
    const list = filter.targetId === undefined ? this.k('audit') : this.k(`audit:${filter.targetId}`);
    if (filter.limit <= 0) return { entries: [], next: filter.before ?? null };
    const [before, raws] = (await this.conn.slowCall((c) => AUDIT_PAGE.run(c, [list], [filter.before ?? -1, filter.limit]))) as [number, string[]];
    const rest = before - raws.length;
    return { entries: raws.map((r) => JSON.parse(r) as AuditEntry), next: rest > 0 ? rest : null };
  }

  async listAudit(filter: { targetId?: string; limit: number }): Promise<AuditEntry[]> {
    if (filter.limit <= 0) return [];
    const list = filter.targetId === undefined ? this.k('audit') : this.k(`audit:${filter.targetId}`);
    const raws = await this.conn.slowCall((c) => c.lrange(list, 0, filter.limit - 1));
    return raws.map((r) => JSON.parse(r) as AuditEntry);
  }

  async scanAudit(position: number, count: number): Promise<AuditEntry[]> {
    if (count <= 0) return [];
    // The list is newest first (LPUSH): counted from its tail, positions do not move as it grows.
    const raws = await this.conn.slowCall((c) => c.lrange(this.k('audit'), -(position + count), -(position + 1)));
    return raws.reverse().map((r) => JSON.parse(r) as AuditEntry);
  }

  async commit(batch: WriteBatch): Promise<number> {
    const ops = batch.ops.map((op) => {
      if (op.op === 'delete') return { op: 'delete', type: op.type, id: op.id };
      const { type, value } = op.entity;
      if (type !== 'key') return { op: 'put', type, id: value.id, json: JSON.stringify(value) };
      // The script assigns the creation-order seq; it is stored in front of the rest.
      const { seq: _seq, ...rest } = value;
      return {
        op: 'put', type, id: value.id, json: JSON.stringify(rest),
        hashes: [value.secretHash, ...value.retiredSecrets.map((r) => r.hash)],
        groupId: value.groupId, ownerId: value.ownerId, workspaceId: value.workspaceId,
      };
    });
    const changes = batch.ops.map((op) =>
      op.op === 'put' ? [op.entity.type, op.entity.value.id, 'put'] : [op.type, op.id, 'delete']);
    const envelope = JSON.stringify({
      expect: batch.expect ?? [],
      emptyGroups: batch.expectEmptyGroups ?? [],
      emptyOwners: batch.expectEmptyOwners ?? [],
      emptyWorkspaces: batch.expectEmptyWorkspaces ?? [],
      ops,
      audit: batch.audit.map((a) => ({ target: a.target.id, json: JSON.stringify(a) })),
      changes: JSON.stringify(changes),
    });
    const version = await this.conn.slowCall((c) => COMMIT.run(c, [this.k('version')], [this.base, envelope, this.feedLength, randomBytes(9).toString('base64url')]));
    return Number(version);
  }

  async changesSince(fromVersion: number): Promise<Change[] | null> {
    const [current, entries] = await this.conn.slowCall(async (c) => [
      await c.get(this.k('version')),
      (await c.xrange(this.k('feed'), `(${fromVersion}-1`, '+')) as Array<[string, string[]]>,
    ] as const);
    const version = current === null ? 0 : Number(current);
    if (fromVersion >= version) return [];
    const out: Change[] = [];
    let expected = fromVersion + 1;
    for (const [id, fields] of entries) {
      const changes = parseFeedEntry(id, fields);
      if (changes.version !== expected) return null;
      expected++;
      out.push(...changes.changes);
    }
    return expected > version ? out : null;
  }

  subscribe(listener: ChangeListener, onReset?: ResetListener): () => void {
    this.listeners.add(listener);
    if (onReset) this.resetListeners.add(onReset);
    return () => {
      this.listeners.delete(listener);
      if (onReset) this.resetListeners.delete(onReset);
    };
  }

  private publish(changes: Change[]): void {
    for (const listener of this.listeners) {
      try {
        listener(changes);
      } catch (err) {
        this.logger.error({ err }, 'change listener failed');
      }
    }
  }

  async recordUsage(deltas: readonly UsageDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    const payload = JSON.stringify(deltas.map((d) => ({ k: d.keyId, o: d.byOutcome, at: d.lastUsedAt })));
    await this.conn.slowCall((c) => RECORD_USAGE.run(c, [this.k('e:key')], [this.base, payload]));
  }

  async getUsage(keyId: string): Promise<KeyUsage> {
    const h = await this.conn.slowCall((c) => c.hgetall(this.k(`u:${keyId}`)));
    const byOutcome: Record<string, number> = {};
    for (const [field, n] of Object.entries(h)) if (field.startsWith('o:')) byOutcome[field.slice(2)] = Number(n);
    return { total: Number(h.total ?? 0), byOutcome, lastUsedAt: h.last ?? null };
  }

  async recordActivity(records: readonly ActivityRecord[], keepPerKey: number): Promise<void> {
    if (records.length === 0 || keepPerKey <= 0) return;
    const payload = JSON.stringify(records.map((r) => [r.keyId, Date.parse(r.at), JSON.stringify(r)]));
    await this.conn.slowCall((c) => RECORD_ACTIVITY.run(c, [this.k('e:key')], [this.base, keepPerKey, payload]));
  }

  async listActivity(keyId: string, limit: number): Promise<ActivityRecord[]> {
    if (limit <= 0) return [];
    const raws = await this.conn.slowCall((c) => c.zrevrange(this.k(`act:${keyId}`), 0, limit - 1));
    return raws.map((r) => JSON.parse(r) as ActivityRecord);
  }

  async reportNode(report: NodeReport): Promise<void> {
    await this.conn.slowCall((c) => c.hset(this.k('nodes'), report.id, JSON.stringify(report)));
  }

  async listNodes(): Promise<NodeReport[]> {
    const all = await this.conn.slowCall((c) => c.hgetall(this.k('nodes')));
    const now = Date.now();
    const out: NodeReport[] = [];
    const gone: string[] = [];
    for (const [id, raw] of Object.entries(all)) {
      const report = JSON.parse(raw) as NodeReport;
      const age = now - Date.parse(report.reportedAt);
      if (age > NODE_RETENTION_MS) gone.push(id);
      else if (age <= this.nodeMaxAgeMs) out.push(report);
    }
    if (gone.length > 0) await this.conn.slowCall((c) => c.hdel(this.k('nodes'), ...gone)).catch(() => undefined);
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async forgetNode(id: string): Promise<void> {
    await this.conn.slowCall((c) => c.hdel(this.k('nodes'), id));
  }
}
