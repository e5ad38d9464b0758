import type { KeyRecord } from '../domain/api-key.js';
import type { AdminTokenRecord, AuditEntry, Group, Owner, Workspace } from '../domain/entities.js';
import type { SigningKeyRecord } from '../domain/signing-key.js';

export type EntityType = 'workspace' | 'key' | 'group' | 'owner' | 'signing-key' | 'admin-token';

export type Entity =
  | { type: 'workspace'; value: Workspace }
  | { type: 'key'; value: KeyRecord }
  | { type: 'group'; value: Group }
  | { type: 'owner'; value: Owner }
  | { type: 'signing-key'; value: SigningKeyRecord }
  | { type: 'admin-token'; value: AdminTokenRecord };

export type WriteOp =
  | { op: 'put'; entity: Entity }
  | { op: 'delete'; type: EntityType; id: string };

/**
 * Optimistic concurrency: the batch applies only if the record's `version` (or, for records
 * without one, its `updatedAt`) is still what the writer read; `null` means it must not exist.
 */
export interface Precondition { type: EntityType; id: string; token: string | null }

export interface WriteBatch {
  ops: WriteOp[];
  audit: AuditEntry[];
  expect?: Precondition[];
  /** Groups that must have no keys when the batch applies (a group delete racing a key write). */
  expectEmptyGroups?: string[];
  /** Owners no key may refer to when the batch applies (an owner delete racing a key write). */
  expectEmptyOwners?: string[];
  /** Workspaces that must hold no keys when the batch applies (a workspace delete racing a key write). */
  expectEmptyWorkspaces?: string[];
}

/**
 * A page of the audit log (or of one target's entries), newest first. Positions count from
 * the oldest entry (0) and never change; `next` is the `before` of the following page.
 */
export interface AuditPage { entries: AuditEntry[]; next: number | null }

/** One entry of the change feed: every write bumps the store version once. */
export interface Change {
  version: number;
  kind: EntityType;
  id: string;
  op: 'put' | 'delete';
  /** When the change was committed (ms since the epoch), for measuring propagation lag. */
  at: number;
}

/**
 * Nodes report every 5 s; a report not refreshed for three of those is no longer listed: its
 * process is gone (killed, or cut off from the store).
 */
export const NODE_REPORT_MAX_AGE_MS = 15_000;

export interface NodeReport {
  id: string;
  /** The keygate process the node belongs to (a process with workers reports one node per worker). */
  instance?: string;
  role: 'gateway' | 'admin';
  appliedVersion: number;
  reportedAt: string;
}

/** Per-key request counts, batched by the data plane; telemetry, not part of the change feed. */
export interface KeyUsage { total: number; byOutcome: Record<string, number>; lastUsedAt: string | null }
export interface UsageDelta { keyId: string; byOutcome: Record<string, number>; lastUsedAt: string }

/**
 * One request a key made, as the admin API shows it: never a secret, token, query string or
 * body (`route` is the config route's name). Telemetry like usage, not on the change feed.
 */
export interface ActivityRecord {
  keyId: string;
  /** When the request ended (ISO 8601). */
  at: string;
  requestId: string;
  method: string;
  route: string;
  status: number;
  outcome: string;
  clientIp: string | null;
}

export type ChangeListener = (changes: readonly Change[]) => void;
/** The feed lost changes this process never saw: everything cached from the store is suspect. */
export type ResetListener = () => void;

/**
 * The one contract both backends keep. Reads return copies the caller may not mutate;
 * `commit` is atomic and durable when its promise resolves.
 */
export interface KeyStore {
  readonly driver: 'embedded' | 'redis';
  open(): Promise<void>;
  close(): Promise<void>;
  /** False after an unrecoverable write fault: reads may go on, writes are refused. */
  healthy(): boolean;
  currentVersion(): Promise<number>;
  /** Every change committed before this instant (ms since the epoch) has reached the subscribers. */
  feedConfirmedAt(): number;
  /** The newest version whose changes have reached the subscribers. */
  appliedVersion(): number;

  getWorkspace(id: string): Promise<Workspace | null>;
  listWorkspaces(): Promise<Workspace[]>;
  getKey(id: string): Promise<KeyRecord | null>;
  /**
   * A key by secret hash or id together with its owner, in one read. Read-only: the embedded
   * store hands out its own objects here (no copy per cache miss), so callers must not change them.
   */
  lookupKey(by: 'hash' | 'id', value: string): Promise<{ record: KeyRecord; owner: Owner | null } | null>;
  /** Keys in creation order, starting after `afterSeq`. */
  scanKeys(afterSeq: number, count: number): Promise<KeyRecord[]>;
  keyIdsInGroup(groupId: string): Promise<string[]>;
  keyIdsOfOwner(ownerId: string): Promise<string[]>;
  getGroup(id: string): Promise<Group | null>;
  listGroups(): Promise<Group[]>;
  getOwner(id: string): Promise<Owner | null>;
  listOwners(): Promise<Owner[]>;
  /** Token signing keys, private halves included: for the gateway, never for an admin response. */
  listSigningKeys(): Promise<SigningKeyRecord[]>;
  /** Newest first. */
  listAudit(filter: { targetId?: string; limit: number }): Promise<AuditEntry[]>;
  /**
   * The whole audit log in commit order, oldest first: up to `count` entries after the first
   * `position` ones. Positions never move (new entries come after), so an export can page
   * through a log that grows meanwhile.
   */
  scanAudit(position: number, count: number): Promise<AuditEntry[]>;
  /** Newest first, the entries at positions below `before` (all when absent). */
  pageAudit(filter: { targetId?: string; before?: number; limit: number }): Promise<AuditPage>;
  /** Whether any key is in the workspace. */
  workspaceHasKeys(workspaceId: string): Promise<boolean>;
  getAdminToken(id: string): Promise<AdminTokenRecord | null>;
  listAdminTokens(): Promise<AdminTokenRecord[]>;

  commit(batch: WriteBatch): Promise<number>;

  /** Changes after `fromVersion`, or null when the feed no longer reaches back that far (reload). */
  changesSince(fromVersion: number): Promise<Change[] | null>;
  subscribe(listener: ChangeListener, onReset?: ResetListener): () => void;

  recordUsage(deltas: readonly UsageDelta[]): Promise<void>;
  getUsage(keyId: string): Promise<KeyUsage>;

  /**
   * Adds requests to their keys' activity (records of unknown keys are dropped), keeping the
   * newest `keepPerKey` of each key by `at`, whatever order the nodes' batches arrive in;
   * shared by every node, kept across a restart.
   */
  recordActivity(records: readonly ActivityRecord[], keepPerKey: number): Promise<void>;
  /** A key's newest activity by `at`, at most `limit` records, newest first. */
  listActivity(keyId: string, limit: number): Promise<ActivityRecord[]>;

  reportNode(report: NodeReport): Promise<void>;
  /** The nodes that reported within the last `NODE_REPORT_MAX_AGE_MS` (or the store's own bound). */
  listNodes(): Promise<NodeReport[]>;
  /** Drops a node's report at once: its process has exited. */
  forgetNode(id: string): Promise<void>;
}

export function preconditionToken(entity: Entity): string {
  const v = entity.value;
  if ('version' in v) return String(v.version);
  if ('updatedAt' in v && typeof v.updatedAt === 'string') return v.updatedAt;
  return v.createdAt;
}
