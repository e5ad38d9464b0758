import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { KeyRecord } from '../../domain/api-key.js';
import type { AdminTokenRecord, AuditEntry, Group, Owner, Workspace } from '../../domain/entities.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import { KeygateError } from '../../errors/catalogue.js';
import { NODE_REPORT_MAX_AGE_MS, type ActivityRecord, type AuditPage, type Change, type ChangeListener, type KeyStore, type KeyUsage, type NodeReport, type UsageDelta, type WriteBatch } from '../types.js';
import { ActivityFile } from './activity-file.js';
import { AuditFile } from './audit-file.js';
import { CorruptStoreError, Journal, readFramedRecords, syncDir, writeFramedRecordsAtomic } from './journal.js';
import { formatLock, heldByAnother, parseLock, thisProcess, type LockHolder } from './lock-holder.js';
import { SnapshotReader, StoreState, type BatchRecord } from './state.js';

const JOURNAL = 'journal.log';
const SNAPSHOT = 'snapshot.json';
const LOCK = 'store.lock';
const USAGE = 'usage.json';
const AUDIT = 'audit.log';
const ACTIVITY = 'activity.log';
const FEED_BACKLOG = 10_000;
const USAGE_FLUSH_MS = 10_000;
const USAGE_CHUNK = 1_000;

export interface EmbeddedStoreOptions {
  path: string;
  logger: Logger;
  /** Compact the journal into a snapshot once it holds this many bytes. */
  compactAfterBytes?: number;
  /** Node reports older than this are not listed. */
  nodeMaxAgeMs?: number;
  /** Activity records kept per key when the file is read back (`keys.activityPerKey`); writes say it again. */
  activityPerKey?: number;
}

const clone = <T>(v: T): T => structuredClone(v);

/** Directories opened by this process: the pid in the lock file cannot tell two of ours apart. */
const openInThisProcess = new Set<string>();

/**
 * Durable single-writer store: every committed batch is one journal record, fsynced before
 * the commit resolves; the journal is folded into an atomically replaced snapshot now and then.
 * All reads are served from memory.
 */
export class EmbeddedStore implements KeyStore {
  readonly driver = 'embedded' as const;
  private readonly dir: string;
  private readonly logger: Logger;
  private readonly compactAfterBytes: number;
  private readonly nodeMaxAgeMs: number;
  private readonly activityPerKey: number;
  private state = new StoreState();
  private journal: Journal | null = null;
  private auditFile: AuditFile | null = null;
  private activity: ActivityFile | null = null;
  private writeChain: Promise<unknown> = Promise.resolve();
  private broken = false;
  private readonly feed: Change[] = [];
  private readonly listeners = new Set<ChangeListener>();
  private readonly nodes = new Map<string, NodeReport>();
  private usage = new Map<string, KeyUsage>();
  private usageDirty = false;
  private usageTimer: NodeJS.Timeout | null = null;

  constructor(opts: EmbeddedStoreOptions) {
    this.dir = resolve(opts.path);
    this.logger = opts.logger;
    this.compactAfterBytes = opts.compactAfterBytes ?? 16 * 1024 * 1024;
    this.nodeMaxAgeMs = opts.nodeMaxAgeMs ?? NODE_REPORT_MAX_AGE_MS;
    this.activityPerKey = opts.activityPerKey ?? 1_000;
  }

  async open(): Promise<void> {
    const created = await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    // A directory made now is durable only once its parent's entry for it is, at every level made.
    if (created !== undefined) {
      for (let d = this.dir; ; d = dirname(d)) {
        await syncDir(dirname(d));
        if (d === created || dirname(d) === d) break;
      }
    }
    await this.acquireLock();
    try {
      await this.load();
    } catch (err) {
      await this.auditFile?.close().catch(() => undefined);
      this.auditFile = null;
      await this.activity?.close().catch(() => undefined);
      this.activity = null;
      openInThisProcess.delete(this.dir);
      await fsp.rm(join(this.dir, LOCK), { force: true });
      throw err;
    }
  }

  private async load(): Promise<void> {
    const file = join(this.dir, SNAPSHOT);
    const reader = new SnapshotReader(file);
    const found = await readFramedRecords(file, (record) => reader.add(record));
    const snapshot = found ? reader.finish() : { state: new StoreState(), auditBytes: 0 };
    this.state = snapshot.state;
    this.auditFile = await AuditFile.open(join(this.dir, AUDIT), snapshot.auditBytes);
    const { journal, records, tornBytes } = await Journal.open(join(this.dir, JOURNAL));
    if (tornBytes > 0) {
      this.logger.warn({ file: journal.path, tornBytes }, 'cut a torn record from the end of the journal (a crash during a write that was never acknowledged)');
    }
    let replayed = 0;
    for (const raw of records) {
      const batch = raw as BatchRecord;
      if (typeof batch.v !== 'number' || !Array.isArray(batch.ops)) throw new CorruptStoreError(`${journal.path}: record without a version`);
      // Records at or below the snapshot's version were folded into it before a crash cut the journal reset short.
      if (batch.v <= this.state.version) continue;
      if (batch.v !== this.state.version + 1) throw new CorruptStoreError(`${journal.path}: version ${batch.v} follows ${this.state.version}`);
      this.state.apply(batch);
      replayed++;
    }
    this.journal = journal;
    // Chunks of [keyId, usage] pairs (an earlier format wrote them all as one record).
    this.usage = new Map();
    await readFramedRecords(join(this.dir, USAGE), (chunk) => {
      for (const [id, u] of chunk as Array<[string, KeyUsage]>) if (this.state.keys.has(id)) this.usage.set(id, u);
    });
    this.activity = await ActivityFile.open(join(this.dir, ACTIVITY), (id) => this.state.keys.has(id), this.activityPerKey);
    this.usageTimer = setInterval(() => void this.flushUsage(), USAGE_FLUSH_MS);
    this.usageTimer.unref();
    this.logger.info({ path: this.dir, version: this.state.version, keys: this.state.keys.size, replayed }, 'embedded store loaded');
  }

  /**
   * One writer per directory. The lock file is created whole and atomically (written under a
   * private name, then hard-linked into place, which fails if it exists). A lock left by a dead
   * process is taken over only while holding a second, equally atomic takeover lock, so two
   * processes starting together after a crash cannot both win. The lock names this process by
   * pid, start time and boot id, so a pid that now belongs to another process is no holder.
   */
  private async acquireLock(): Promise<void> {
    if (openInThisProcess.has(this.dir)) throw new Error(`the store at ${this.dir} is already open in this process (the embedded store has a single writer)`);
    const lockPath = join(this.dir, LOCK);
    const takeoverPath = `${lockPath}.takeover`;
    const mine = join(this.dir, `${LOCK}.${process.pid}.${randomBytes(6).toString('hex')}`);
    await fsp.writeFile(mine, formatLock(await thisProcess()), { mode: 0o600 });
    const inUse = (pid: number) => new Error(`the store at ${this.dir} is in use by process ${pid} (the embedded store has a single writer)`);
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        if (await linkIfAbsent(mine, lockPath)) {
          openInThisProcess.add(this.dir);
          return;
        }
        const holder = await readLock(lockPath);
        if (holder === null) continue; // it went away meanwhile: try again
        if (await heldByAnother(holder)) throw inUse(holder.pid);
        // The holder died without cleaning up (kill -9). Only the holder of the takeover lock may replace it.
        if (!(await linkIfAbsent(mine, takeoverPath))) {
          const taker = await readLock(takeoverPath);
          if (taker !== null && (await heldByAnother(taker))) throw inUse(taker.pid);
          await fsp.rm(takeoverPath, { force: true });
          continue;
        }
        try {
          const again = await readLock(lockPath);
          if (again !== null && (await heldByAnother(again))) throw inUse(again.pid);
          await fsp.rm(lockPath, { force: true });
          if (await linkIfAbsent(mine, lockPath)) {
            openInThisProcess.add(this.dir);
            return;
          }
        } finally {
          await fsp.rm(takeoverPath, { force: true });
        }
      }
      throw new Error(`could not lock the store at ${this.dir}`);
    } finally {
      await fsp.rm(mine, { force: true });
    }
  }

  async close(): Promise<void> {
    if (this.usageTimer) clearInterval(this.usageTimer);
    await this.flushUsage();
    await this.writeChain.catch(() => undefined);
    await this.journal?.close();
    this.journal = null;
    await this.auditFile?.close();
    this.auditFile = null;
    await this.activity?.close();
    this.activity = null;
    if (openInThisProcess.delete(this.dir)) await fsp.rm(join(this.dir, LOCK), { force: true });
  }

  healthy(): boolean {
    return !this.broken && this.journal !== null;
  }

  async currentVersion(): Promise<number> {
    return this.state.version;
  }

  /** Subscribers hear of each commit before it returns: this process is always current. */
  feedConfirmedAt(): number {
    return Date.now();
  }

  appliedVersion(): number {
    return this.state.version;
  }

  async getWorkspace(id: string): Promise<Workspace | null> {
    return clone(this.state.workspaces.get(id) ?? null);
  }

  async listWorkspaces(): Promise<Workspace[]> {
    return clone([...this.state.workspaces.values()]);
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    return clone(this.state.keys.get(id) ?? null);
  }

  async lookupKey(by: 'hash' | 'id', value: string): Promise<{ record: KeyRecord; owner: Owner | null } | null> {
    const id = by === 'hash' ? this.state.byHash.get(value) : value;
    const record = id === undefined ? undefined : this.state.keys.get(id);
    if (!record) return null;
    const owner = record.ownerId === null ? null : (this.state.owners.get(record.ownerId) ?? null);
    // Not cloned: the data plane only reads it, and its compiled policy then shares the
    // record's strings and lists instead of holding copies (see KeyStore.lookupKey).
    return { record, owner };
  }

  async scanKeys(afterSeq: number, count: number): Promise<KeyRecord[]> {
    const out: KeyRecord[] = [];
    for (const rec of this.state.keys.values()) {
      if (rec.seq <= afterSeq) continue;
      out.push(clone(rec));
      if (out.length >= count) break;
    }
    return out;
  }

  async keyIdsInGroup(groupId: string): Promise<string[]> {
    return [...(this.state.byGroup.get(groupId) ?? [])];
  }

  async keyIdsOfOwner(ownerId: string): Promise<string[]> {
    return [...(this.state.byOwner.get(ownerId) ?? [])];
  }

  async getGroup(id: string): Promise<Group | null> {
    return clone(this.state.groups.get(id) ?? null);
  }

  async listGroups(): Promise<Group[]> {
    return clone([...this.state.groups.values()]);
  }

  async getOwner(id: string): Promise<Owner | null> {
    return clone(this.state.owners.get(id) ?? null);
  }

  async listOwners(): Promise<Owner[]> {
    return clone([...this.state.owners.values()]);
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return clone([...this.state.signingKeys.values()]);
  }

  async workspaceHasKeys(workspaceId: string): Promise<boolean> {
    return (this.state.byWorkspace.get(workspaceId)?.size ?? 0) > 0;
  }

  async getAdminToken(id: string): Promise<AdminTokenRecord | null> {
    return clone(this.state.adminTokens.get(id) ?? null);
  }

  async listAdminTokens(): Promise<AdminTokenRecord[]> {
    return clone([...this.state.adminTokens.values()]);
  }

  /** Positions: the audit file's entries first (oldest), then those still in the journal. */
  async pageAudit(filter: { targetId?: string; before?: number; limit: number }): Promise<AuditPage> {
    const { targetId } = filter;
    const recent = targetId === undefined
      ? this.state.recentAudit
      : this.state.recentAudit.filter((e) => e.target.id === targetId);
    const inFile = this.auditFile?.countOf(targetId) ?? 0;
    const total = inFile + recent.length;
    let p = Math.min(filter.before ?? total, total) - 1;
    const entries: AuditEntry[] = [];
    for (; p >= 0 && entries.length < filter.limit; p--) {
      entries.push(p >= inFile ? clone(recent[p - inFile]!) : await this.auditFile!.read(p, targetId));
    }
    return { entries, next: p >= 0 ? p + 1 : null };
  }

  async listAudit(filter: { targetId?: string; limit: number }): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    const recent = this.state.recentAudit;
    for (let i = recent.length - 1; i >= 0 && out.length < filter.limit; i--) {
      const entry = recent[i]!;
      if (filter.targetId === undefined || entry.target.id === filter.targetId) out.push(clone(entry));
    }
    if (out.length < filter.limit && this.auditFile) out.push(...(await this.auditFile.newest(filter.limit - out.length, filter.targetId)));
    return out;
  }

  async scanAudit(position: number, count: number): Promise<AuditEntry[]> {
    if (count <= 0 || !this.auditFile) return [];
    // The audit file holds the older entries, the recent list the ones since the last compaction.
    const inFile = this.auditFile.count;
    const out = position < inFile ? await this.auditFile.range(position, Math.min(count, inFile - position)) : [];
    const from = Math.max(0, position - inFile);
    for (const entry of this.state.recentAudit.slice(from, from + count - out.length)) out.push(clone(entry));
    return out;
  }

  /** Serialised: each batch is checked, made durable, then applied, one at a time. */
  commit(batch: WriteBatch): Promise<number> {
    const run = this.writeChain.then(() => this.commitNow(batch));
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  private async commitNow(batch: WriteBatch): Promise<number> {
    const journal = this.journal;
    if (!journal || this.broken) throw new KeygateError('STORE_UNAVAILABLE', 'The key store cannot accept writes.');
    this.state.check(batch);
    const record: BatchRecord = { v: this.state.version + 1, at: Date.now(), ...clone(batch) };
    try {
      await journal.append(record);
    } catch (err) {
      if (journal.poisoned) this.broken = true;
      this.logger.error({ err, path: journal.path }, 'journal write failed; the change was not applied');
      throw new KeygateError('STORE_UNAVAILABLE', 'The key store could not make the change durable.');
    }
    const changes = this.state.apply(record);
    for (const c of changes) {
      if (c.kind !== 'key' || c.op !== 'delete') continue;
      if (this.usage.delete(c.id)) this.usageDirty = true;
      this.activity?.drop(c.id);
    }
    this.publish(changes);
    if (journal.bytes >= this.compactAfterBytes) await this.compact();
    return record.v;
  }

  /** Folds the journal into a fresh snapshot. A failure leaves the journal as it was. */
  private async compact(): Promise<void> {
    // The recent audit goes to the audit file first; the snapshot then counts those bytes.
    const recent = this.state.recentAudit;
    let undo: (() => Promise<void>) | null = null;
    try {
      if (recent.length > 0) undo = await this.auditFile!.append(recent);
      await writeFramedRecordsAtomic(this.dir, SNAPSHOT, this.state.snapshotRecords(this.auditFile!.bytes));
    } catch (err) {
      if (undo) await undo();
      this.logger.error({ err }, 'journal compaction failed (the journal is kept as it was); will retry after the next write');
      return;
    }
    recent.length = 0;
    try {
      await this.journal!.reset();
    } catch (err) {
      // The snapshot holds everything; only appending to a journal of unknown length is unsafe.
      this.broken = true;
      this.logger.error({ err }, 'could not reset the journal after a snapshot; refusing further writes');
    }
  }

  /** Test and operator hook: force a compaction now. */
  compactNow(): Promise<void> {
    const run = this.writeChain.then(() => this.compact());
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  private publish(changes: Change[]): void {
    for (const c of changes) this.feed.push(c);
    if (this.feed.length > FEED_BACKLOG) this.feed.splice(0, this.feed.length - FEED_BACKLOG);
    for (const listener of this.listeners) {
      try {
        listener(changes);
      } catch (err) {
        this.logger.error({ err }, 'change listener failed');
      }
    }
  }

  async changesSince(fromVersion: number): Promise<Change[] | null> {
    if (fromVersion >= this.state.version) return [];
    const oldest = this.feed[0];
    if (!oldest || oldest.version > fromVersion + 1) return null;
    return this.feed.filter((c) => c.version > fromVersion);
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // Usage counts are telemetry: kept in memory and written out every few seconds, so a crash
  // loses at most that interval of counts, never a key or a policy.
  async recordUsage(deltas: readonly UsageDelta[]): Promise<void> {
    for (const d of deltas) {
      if (!this.state.keys.has(d.keyId)) continue;
      const u = this.usage.get(d.keyId) ?? { total: 0, byOutcome: {}, lastUsedAt: null };
      for (const [outcome, n] of Object.entries(d.byOutcome)) {
        u.byOutcome[outcome] = (u.byOutcome[outcome] ?? 0) + n;
        u.total += n;
      }
      if (u.lastUsedAt === null || d.lastUsedAt > u.lastUsedAt) u.lastUsedAt = d.lastUsedAt;
      this.usage.set(d.keyId, u);
      this.usageDirty = true;
    }
  }

  async getUsage(keyId: string): Promise<KeyUsage> {
    return clone(this.usage.get(keyId) ?? { total: 0, byOutcome: {}, lastUsedAt: null });
  }

  async recordActivity(records: readonly ActivityRecord[], keepPerKey: number): Promise<void> {
    const known = records.filter((r) => this.state.keys.has(r.keyId));
    if (known.length === 0 || keepPerKey <= 0) return;
    if (!this.activity) throw new KeygateError('STORE_UNAVAILABLE', 'The key store is closed.');
    await this.activity.append(known, keepPerKey);
  }

  async listActivity(keyId: string, limit: number): Promise<ActivityRecord[]> {
    return this.activity?.list(keyId, limit) ?? [];
  }

  /** One usage write at a time: two would share the temp file (the timer's and close()'s). */
  private usageWrite: Promise<void> = Promise.resolve();

  private flushUsage(): Promise<void> {
    const run = this.usageWrite.then(() => this.flushUsageNow());
    this.usageWrite = run;
    return run;
  }

  private async flushUsageNow(): Promise<void> {
    if (!this.usageDirty || !this.journal) return;
    this.usageDirty = false;
    try {
      // In chunks, so a fleet of 100 000 keys never turns into one 10 MB string at once.
      const entries = [...this.usage.entries()];
      await writeFramedRecordsAtomic(this.dir, USAGE, (function* () {
        for (let i = 0; i < entries.length; i += USAGE_CHUNK) yield entries.slice(i, i + USAGE_CHUNK);
      })());
    } catch (err) {
      this.usageDirty = true;
      this.logger.warn({ err }, 'could not write usage counts; will retry');
    }
  }

  async reportNode(report: NodeReport): Promise<void> {
    this.nodes.set(report.id, { ...report });
  }

  async listNodes(): Promise<NodeReport[]> {
    const cutoff = Date.now() - this.nodeMaxAgeMs;
    const out: NodeReport[] = [];
    for (const [id, n] of this.nodes) {
      if (Date.parse(n.reportedAt) < cutoff) this.nodes.delete(id);
      else out.push({ ...n });
    }
    return out;
  }

  async forgetNode(id: string): Promise<void> {
    this.nodes.delete(id);
  }
}

/** Hard-links `from` to `to`; false when `to` already exists. Atomic on every local filesystem. */
async function linkIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await fsp.link(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** The holder a lock file names; null when the file is gone. */
async function readLock(path: string): Promise<LockHolder | null> {
  const text = await fsp.readFile(path, 'utf8').catch(() => null);
  return text === null ? null : parseLock(text);
}
