import type { KeyRecord } from '../../domain/api-key.js';
import type { AdminTokenRecord, AuditEntry, Group, Owner, Workspace } from '../../domain/entities.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import { Interner } from '../../domain/interner.js';
import { KeygateError } from '../../errors/catalogue.js';
import { CorruptStoreError } from './journal.js';
import { preconditionToken, type Change, type Entity, type EntityType, type WriteBatch } from '../types.js';

/** A journal record: one committed batch. */
export interface BatchRecord extends WriteBatch { v: number; at: number }

export interface SnapshotData {
  version: number;
  workspaces: Workspace[];
  keys: KeyRecord[];
  groups: Group[];
  owners: Owner[];
  /** Audit entries not yet folded into the audit file (only in snapshots of older versions). */
  audit?: AuditEntry[];
  /** How many bytes of the audit file this snapshot covers. */
  auditBytes?: number;
  /** Absent in snapshots written before token signing existed. */
  signingKeys?: SigningKeyRecord[];
  adminTokens?: AdminTokenRecord[];
}

// Records are held for the life of the process: equal lists and repeated strings are shared
// between them (they are never changed in place; a write replaces the whole record).
const lists = new Interner<readonly string[]>(4_096);
const strings = new Interner<string>(4_096);
const sharedList = (list: readonly string[]): string[] =>
  (list.length === 0 ? EMPTY : lists.get(JSON.stringify(list), () => Object.freeze([...list]))) as string[];
const EMPTY: readonly string[] = Object.freeze([]);

/** The record as held: shared lists, one copy of its workspace id, `updatedAt` shared with `createdAt` when equal. */
function compact(rec: KeyRecord, seq: number): KeyRecord {
  return {
    ...rec,
    workspaceId: strings.get(rec.workspaceId, () => rec.workspaceId),
    permissions: sharedList(rec.permissions),
    ipAllowlist: sharedList(rec.ipAllowlist),
    eventAllowlist: sharedList(rec.eventAllowlist),
    eventDenylist: sharedList(rec.eventDenylist),
    profileAttributeAllowlist: sharedList(rec.profileAttributeAllowlist),
    updatedAt: rec.updatedAt === rec.createdAt ? rec.createdAt : rec.updatedAt,
    seq,
  };
}

/** The snapshot file's format: a header, chunked entities, a trailer (see `snapshotRecords`). */
const SNAPSHOT_FORMAT = 2;
const SNAPSHOT_CHUNK = 1_000;

export type SnapshotRecord =
  | { snapshot: number; version: number; auditBytes: number }
  | { workspaces: Workspace[] }
  | { groups: Group[] }
  | { owners: Owner[] }
  | { signingKeys: SigningKeyRecord[] }
  | { adminTokens: AdminTokenRecord[] }
  | { keys: KeyRecord[] }
  | { end: number };

/**
 * Builds the state from a snapshot file's records as they are read. Also reads the earlier
 * format: one record holding the whole `SnapshotData`.
 */
export class SnapshotReader {
  private state: StoreState | null = null;
  private auditBytes = 0;
  private lines = 0;
  private done = false;

  constructor(private readonly file: string) {}

  add(record: unknown): void {
    const r = record as Record<string, unknown>;
    if (this.done) throw new CorruptStoreError(`${this.file}: records follow the end of the snapshot`);
    if (this.lines++ === 0) {
      if (r.snapshot === undefined) {
        // The earlier format: everything in one record.
        const data = record as SnapshotData;
        for (const table of ['workspaces', 'groups', 'owners', 'keys'] as const) {
          if (!Array.isArray(data[table])) throw new CorruptStoreError(`${this.file}: the snapshot has no ${table}`);
        }
        this.state = new StoreState();
        this.state.addEntities(data);
        this.state.version = data.version;
        this.auditBytes = data.auditBytes ?? 0;
        this.done = true;
        return;
      }
      if (r.snapshot !== SNAPSHOT_FORMAT || typeof r.version !== 'number') throw new CorruptStoreError(`${this.file}: unknown snapshot format ${JSON.stringify(r.snapshot)}`);
      this.state = new StoreState();
      this.state.version = r.version;
      this.auditBytes = typeof r.auditBytes === 'number' ? r.auditBytes : 0;
      return;
    }
    if (typeof r.end === 'number') {
      if (r.end !== this.lines - 1) throw new CorruptStoreError(`${this.file}: the snapshot ends after ${this.lines - 1} records, not ${r.end}`);
      this.done = true;
    } else if (this.state!.addEntities(r) === 0) throw new CorruptStoreError(`${this.file}: unknown snapshot record`);
  }

  finish(): { state: StoreState; auditBytes: number } {
    if (this.state === null) throw new CorruptStoreError(`${this.file}: empty snapshot; refusing to load`);
    if (!this.done) throw new CorruptStoreError(`${this.file}: the snapshot is cut off before its end; refusing to load`);
    return { state: this.state, auditBytes: this.auditBytes };
  }
}

function addTo(index: Map<string, Set<string>>, key: string | null, id: string): void {
  if (key === null) return;
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(id);
}

function removeFrom(index: Map<string, Set<string>>, key: string | null, id: string): void {
  if (key === null) return;
  const set = index.get(key);
  if (!set) return;
  set.delete(id);
  if (set.size === 0) index.delete(key);
}

/** Everything the embedded store holds, in memory, with the indexes its reads need. */
export class StoreState {
  version = 0;
  /** The last creation-order position handed out; replay hands out the same ones. */
  private lastSeq = 0;
  readonly workspaces = new Map<string, Workspace>();
  /** Insertion order is creation order: updates replace in place, so `seq` ascends along the map. */
  readonly keys = new Map<string, KeyRecord>();
  readonly groups = new Map<string, Group>();
  readonly owners = new Map<string, Owner>();
  readonly signingKeys = new Map<string, SigningKeyRecord>();
  readonly adminTokens = new Map<string, AdminTokenRecord>();
  /** Audit entries since the last compaction; older ones live in the audit file. */
  readonly recentAudit: AuditEntry[] = [];
  readonly byHash = new Map<string, string>();
  readonly byGroup = new Map<string, Set<string>>();
  readonly byOwner = new Map<string, Set<string>>();
  readonly byWorkspace = new Map<string, Set<string>>();

  private table(type: EntityType): Map<string, Entity['value']> {
    switch (type) {
      case 'workspace': return this.workspaces;
      case 'key': return this.keys;
      case 'group': return this.groups;
      case 'owner': return this.owners;
      case 'signing-key': return this.signingKeys;
      case 'admin-token': return this.adminTokens;
    }
  }

  get(type: EntityType, id: string): Entity['value'] | undefined {
    return this.table(type).get(id);
  }

  /** Throws CONFLICT when a precondition no longer holds; checked before anything is written. */
  check(batch: WriteBatch): void {
    for (const p of batch.expect ?? []) {
      const current = this.get(p.type, p.id);
      const token = current === undefined ? null : preconditionToken({ type: p.type, value: current } as Entity);
      if (token !== p.token) throw new KeygateError('CONFLICT');
    }
    for (const groupId of batch.expectEmptyGroups ?? []) {
      if ((this.byGroup.get(groupId)?.size ?? 0) > 0) throw new KeygateError('GROUP_IN_USE');
    }
    for (const ownerId of batch.expectEmptyOwners ?? []) {
      if ((this.byOwner.get(ownerId)?.size ?? 0) > 0) throw new KeygateError('OWNER_IN_USE');
    }
    for (const workspaceId of batch.expectEmptyWorkspaces ?? []) {
      if ((this.byWorkspace.get(workspaceId)?.size ?? 0) > 0) throw new KeygateError('WORKSPACE_IN_USE');
    }
  }

  /** Applies a batch that already passed `check`; returns the change entries it makes. */
  apply(batch: BatchRecord): Change[] {
    const changes: Change[] = [];
    for (const op of batch.ops) {
      if (op.op === 'put') {
        const { type, value } = op.entity;
        if (type === 'key') this.putKey(value);
        else (this.table(type) as Map<string, typeof value>).set(value.id, value);
        changes.push({ version: batch.v, kind: type, id: value.id, op: 'put', at: batch.at });
      } else {
        if (op.type === 'key') this.deleteKey(op.id);
        else this.table(op.type).delete(op.id);
        changes.push({ version: batch.v, kind: op.type, id: op.id, op: 'delete', at: batch.at });
      }
    }
    for (const entry of batch.audit) this.recentAudit.push(entry);
    this.version = batch.v;
    return changes;
  }

  private putKey(next: KeyRecord, seq?: number): void {
    const prev = this.keys.get(next.id);
    const record = compact(next, prev ? prev.seq : (seq ?? this.lastSeq + 1));
    if (record.seq > this.lastSeq) this.lastSeq = record.seq;
    if (prev) this.unindexKey(prev);
    this.keys.set(record.id, record);
    this.byHash.set(record.secretHash, record.id);
    for (const r of record.retiredSecrets) this.byHash.set(r.hash, record.id);
    addTo(this.byGroup, record.groupId, record.id);
    addTo(this.byOwner, record.ownerId, record.id);
    addTo(this.byWorkspace, record.workspaceId, record.id);
  }

  private deleteKey(id: string): void {
    const prev = this.keys.get(id);
    if (!prev) return;
    this.unindexKey(prev);
    this.keys.delete(id);
  }

  private unindexKey(rec: KeyRecord): void {
    this.byHash.delete(rec.secretHash);
    for (const r of rec.retiredSecrets) this.byHash.delete(r.hash);
    removeFrom(this.byGroup, rec.groupId, rec.id);
    removeFrom(this.byOwner, rec.ownerId, rec.id);
    removeFrom(this.byWorkspace, rec.workspaceId, rec.id);
  }

  /**
   * Everything but the recent audit (which a compaction has just folded into the audit file),
   * as the records of a snapshot file: a header, the entities in chunks, then a trailer that
   * counts the lines before it. Written and read one record at a time, so 100 000 keys never
   * sit in memory a second time as one JSON text.
   */
  *snapshotRecords(auditBytes: number): Generator<SnapshotRecord> {
    const header: SnapshotRecord = { snapshot: SNAPSHOT_FORMAT, version: this.version, auditBytes };
    yield header;
    let lines = 1;
    const tables = [
      ['workspaces', [...this.workspaces.values()]],
      ['groups', [...this.groups.values()]],
      ['owners', [...this.owners.values()]],
      ['signingKeys', [...this.signingKeys.values()]],
      ['adminTokens', [...this.adminTokens.values()]],
      ['keys', [...this.keys.values()]],
    ] as const;
    for (const [table, values] of tables) {
      for (let i = 0; i < values.length; i += SNAPSHOT_CHUNK) {
        yield { [table]: values.slice(i, i + SNAPSHOT_CHUNK) } as SnapshotRecord;
        lines++;
      }
    }
    yield { end: lines };
  }

  /**
   * Adds the entities a snapshot record holds — one table's chunk, or every table of an
   * earlier-format snapshot — and returns how many tables it held.
   */
  addEntities(part: Partial<Record<'workspaces' | 'groups' | 'owners' | 'signingKeys' | 'adminTokens' | 'keys' | 'audit', unknown>>): number {
    let tables = 0;
    const each = <T>(list: unknown, add: (item: T) => void): void => {
      if (!Array.isArray(list)) return;
      tables++;
      for (const item of list as T[]) add(item);
    };
    each<Workspace>(part.workspaces, (w) => this.workspaces.set(w.id, w));
    each<Group>(part.groups, (g) => this.groups.set(g.id, g));
    each<Owner>(part.owners, (o) => this.owners.set(o.id, o));
    each<SigningKeyRecord>(part.signingKeys, (k) => this.signingKeys.set(k.id, k));
    each<AdminTokenRecord>(part.adminTokens, (t) => this.adminTokens.set(t.id, t));
    each<KeyRecord>(part.keys, (k) => this.putKey(k, k.seq));
    each<AuditEntry>(part.audit, (a) => this.recentAudit.push(a));
    return tables;
  }
}
