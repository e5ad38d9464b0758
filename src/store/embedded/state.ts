import type { KeyRecord } from '../../domain/api-key.js';
import type { AuditEntry, Group, Owner, Workspace } from '../../domain/entities.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import { KeygateError } from '../../errors.js';
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
  /** Audit entries since the last compaction; older ones live in the audit file. */
  readonly recentAudit: AuditEntry[] = [];
  readonly byHash = new Map<string, string>();
  readonly byGroup = new Map<string, Set<string>>();
  readonly byOwner = new Map<string, Set<string>>();

  private table(type: EntityType): Map<string, Entity['value']> {
    switch (type) {
      case 'workspace': return this.workspaces;
      case 'key': return this.keys;
      case 'group': return this.groups;
      case 'owner': return this.owners;
      case 'signing-key': return this.signingKeys;
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
    const record: KeyRecord = { ...next, seq: prev ? prev.seq : (seq ?? this.lastSeq + 1) };
    if (record.seq > this.lastSeq) this.lastSeq = record.seq;
    if (prev) this.unindexKey(prev);
    this.keys.set(record.id, record);
    this.byHash.set(record.secretHash, record.id);
    for (const r of record.retiredSecrets) this.byHash.set(r.hash, record.id);
    addTo(this.byGroup, record.groupId, record.id);
    addTo(this.byOwner, record.ownerId, record.id);
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
  }

  /** Everything but the recent audit, which a compaction has just folded into the audit file. */
  snapshot(auditBytes: number): SnapshotData {
    return {
      version: this.version,
      workspaces: [...this.workspaces.values()],
      keys: [...this.keys.values()],
      groups: [...this.groups.values()],
      owners: [...this.owners.values()],
      auditBytes,
      signingKeys: [...this.signingKeys.values()],
    };
  }

  static fromSnapshot(data: SnapshotData): StoreState {
    const state = new StoreState();
    for (const w of data.workspaces) state.workspaces.set(w.id, w);
    for (const g of data.groups) state.groups.set(g.id, g);
    for (const o of data.owners) state.owners.set(o.id, o);
    for (const k of data.signingKeys ?? []) state.signingKeys.set(k.id, k);
    for (const k of data.keys) state.putKey(k, k.seq);
    for (const a of data.audit ?? []) state.recentAudit.push(a);
    state.version = data.version;
    return state;
  }
}
