import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { AuditEntry } from '../../domain/entities.js';
import type { SigningKeyCipher } from '../../domain/signing-key-cipher.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import type { ActivityRecord, Entity, EntityType, KeyStore, UsageDelta, WriteOp } from '../types.js';
import {
  EXPORT_FORMAT, EXPORT_VERSION, RECORD_SCHEMAS, RECORD_TYPES, emptyCounts, headerSchema, pepperFingerprint, trailerSchema,
  type Counts, type RecordType,
} from './format.js';

/** Records written per commit: one journal line, or one Lua call, of a few hundred KiB at most. */
const ENTITY_BATCH = 200;
const AUDIT_BATCH = 500;
const USAGE_BATCH = 500;
const ACTIVITY_BATCH = 1_000;

/** The import was refused before anything was written: the store, or the stream, does not qualify. */
export class ImportRefusedError extends Error {}

export interface ImportOptions {
  /** The target deployment's pepper: must be the one the stream was exported with. */
  pepper: string;
  /** The target deployment's signing-key encryption: every signing key in the stream must open with it. */
  cipher: SigningKeyCipher;
  /** The target's `keys.activityPerKey`: the newest records of each key it keeps (default: all of the stream's). */
  activityPerKey?: number;
}

/** A source of the stream's lines that can be read more than once (validated, then written). */
export type Lines = () => AsyncIterable<string>;

type Parsed = { kind: 'record'; type: RecordType; value: Record<string, unknown> } | { kind: 'end' };

const ENTITY_OF: Partial<Record<RecordType, EntityType>> = {
  workspace: 'workspace', group: 'group', owner: 'owner', 'signing-key': 'signing-key', 'admin-token': 'admin-token', key: 'key',
};

function issues(error: z.ZodError, prefix: string): string {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
}

/**
 * Reads the whole stream and checks it: its header and format version, the pepper it was
 * written under, every record against the fields keygate reads, that every reference (a key's
 * workspace, group and owner, a usage count's key) names a record before it, that every
 * signing key opens with this deployment's encryption key, and the trailer's counts and
 * SHA-256. Throws ImportRefusedError naming the line; returns the counts.
 */
export async function checkExport(lines: AsyncIterable<string>, opts: ImportOptions): Promise<Counts> {
  const digest = createHash('sha256');
  const counts = emptyCounts();
  const seen: Record<RecordType, Set<string>> = {
    workspace: new Set(), group: new Set(), owner: new Set(), 'signing-key': new Set(), 'admin-token': new Set(), key: new Set(), usage: new Set(), activity: new Set(), audit: new Set(),
  };
  let n = 0;
  let order = 0;
  let trailer: z.infer<typeof trailerSchema> | null = null;
  let before = '';
  for await (const text of lines) {
    n++;
    const refuse = (why: string): never => {
      throw new ImportRefusedError(`line ${n}: ${why}`);
    };
    if (trailer !== null) refuse('content after the trailer');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      refuse('not a JSON object');
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) refuse('not a JSON object');
    const obj = json as Record<string, unknown>;
    if (n === 1) {
      if (obj.format !== EXPORT_FORMAT) refuse(`not a keygate export (the first line has no "format":"${EXPORT_FORMAT}")`);
      if (obj.version !== EXPORT_VERSION) refuse(`export format version ${JSON.stringify(obj.version)}; this keygate reads version ${EXPORT_VERSION}`);
      const header = headerSchema.safeParse(obj);
      if (!header.success) refuse(issues(header.error, 'header'));
      if (header.data!.pepperFingerprint !== pepperFingerprint(opts.pepper)) {
        refuse('the export was written under another secrets.pepper: no key would authenticate with this one (keygate stores only peppered hashes); run the import with the pepper of the deployment it came from');
      }
    } else if (obj.end !== undefined) {
      const t = trailerSchema.safeParse(obj);
      if (!t.success) refuse(issues(t.error, 'trailer'));
      trailer = t.data!;
      before = digest.copy().digest('hex');
      continue;
    } else {
      const type = obj.type as RecordType;
      const at = RECORD_TYPES.indexOf(type);
      if (at < 0) refuse(`unknown record type ${JSON.stringify(obj.type)}`);
      if (at < order) refuse(`a ${type} record after the ${RECORD_TYPES[order]} records (the stream is out of order)`);
      order = at;
      const parsed = RECORD_SCHEMAS[type].safeParse(obj.value);
      if (!parsed.success) refuse(issues(parsed.error, type));
      const value = parsed.data as Record<string, unknown>;
      // A key has many activity records: one is named by its key, time and request id.
      const idOf = type === 'usage' ? (value.keyId as string)
        : type === 'activity' ? `${value.keyId as string}/${value.at as string}/${value.requestId as string}` : (value.id as string);
      if (seen[type].has(idOf)) refuse(`${type} ${idOf} appears twice`);
      seen[type].add(idOf);
      const needs = (ref: RecordType, refId: unknown, field: string): void => {
        if (typeof refId === 'string' && !seen[ref].has(refId)) refuse(`${type} ${idOf}: ${field} names ${ref} ${refId}, which the export does not hold`);
      };
      if (type === 'key') {
        needs('workspace', value.workspaceId, 'workspaceId');
        needs('group', value.groupId, 'groupId');
        needs('owner', value.ownerId, 'ownerId');
      }
      if (type === 'usage' || type === 'activity') needs('key', value.keyId, 'keyId');
      if (type === 'signing-key') {
        try {
          opts.cipher.open(value as unknown as SigningKeyRecord);
        } catch (err) {
          refuse(`signing key ${idOf}: ${(err as Error).message}`);
        }
      }
      counts[type]++;
    }
    digest.update(`${text}\n`);
  }
  if (n === 0) throw new ImportRefusedError('the stream is empty: not a keygate export');
  if (trailer === null) throw new ImportRefusedError(`the stream ends after line ${n} without its trailer: it was cut short, or its export failed`);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (trailer.records !== total) throw new ImportRefusedError(`the trailer counts ${trailer.records} records, the stream holds ${total}`);
  for (const type of RECORD_TYPES) {
    if ((trailer.counts[type] ?? 0) !== counts[type]) throw new ImportRefusedError(`the trailer counts ${trailer.counts[type] ?? 0} ${type} records, the stream holds ${counts[type]}`);
  }
  if (trailer.sha256 !== before) throw new ImportRefusedError('the stream does not match its trailer\'s SHA-256: it was altered or damaged');
  return counts;
}

/** What the store holds, in words, when it is not empty; null when it was never written. */
export async function describeContents(store: KeyStore): Promise<string | null> {
  const version = await store.currentVersion();
  if (version === 0) return null;
  const parts = [
    [(await store.listWorkspaces()).length, 'workspace'],
    [(await store.scanKeys(0, 1_000)).length, 'key'],
    [(await store.listGroups()).length, 'group'],
    [(await store.listOwners()).length, 'owner'],
    [(await store.listSigningKeys()).length, 'signing key'],
    [(await store.listAdminTokens()).length, 'admin token'],
  ] as const;
  const held = parts.filter(([count]) => count > 0).map(([count, what]) => `${count >= 1_000 ? '1000+' : count} ${what}${count === 1 ? '' : 's'}`);
  return `store version ${version}${held.length > 0 ? `: ${held.join(', ')}` : ', its records since deleted'}`;
}

/**
 * Loads an export into an empty store: checks the whole stream first (nothing is written
 * when any of it is refused), then writes it in batches, each put conditional on the record
 * not existing. A fault while writing leaves the records written so far.
 */
export async function importExport(store: KeyStore, lines: Lines, opts: ImportOptions): Promise<Counts> {
  const contents = await describeContents(store);
  if (contents !== null) {
    throw new ImportRefusedError(`the target store is not empty (${contents}); keygate import loads only into a store that was never written: an empty store.path directory, or an unused store.keyPrefix on Redis`);
  }
  const counts = await checkExport(lines(), opts);

  let ops: WriteOp[] = [];
  let audit: AuditEntry[] = [];
  let usage: UsageDelta[] = [];
  let activity: ActivityRecord[] = [];
  const keepPerKey = opts.activityPerKey ?? 1_000_000;
  const flushOps = async (): Promise<void> => {
    if (ops.length === 0) return;
    const batch = ops;
    ops = [];
    await store.commit({
      ops: batch,
      audit: [],
      expect: batch.map((op) => (op.op === 'put' ? { type: op.entity.type, id: op.entity.value.id, token: null } : { type: op.type, id: op.id, token: null })),
    });
  };
  const flushAudit = async (): Promise<void> => {
    if (audit.length === 0) return;
    const batch = audit;
    audit = [];
    await store.commit({ ops: [], audit: batch });
  };
  const flushUsage = async (): Promise<void> => {
    if (usage.length === 0) return;
    const batch = usage;
    usage = [];
    await store.recordUsage(batch);
  };

  const flushActivity = async (): Promise<void> => {
    if (activity.length === 0) return;
    const batch = activity;
    activity = [];
    await store.recordActivity(batch, keepPerKey);
  };

  for await (const text of lines()) {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const line = classify(parsed);
    if (line === null || line.kind === 'end') continue;
    const entity = ENTITY_OF[line.type];
    if (entity !== undefined) {
      const value = entity === 'key' ? { ...line.value, seq: 0 } : line.value;
      ops.push({ op: 'put', entity: { type: entity, value } as unknown as Entity });
      if (ops.length >= ENTITY_BATCH) await flushOps();
    } else if (line.type === 'usage') {
      await flushOps();
      const u = line.value as { keyId: string; total: number; byOutcome: Record<string, number>; lastUsedAt: string | null };
      // A count with no last use (never seen, but kept) still carries its totals.
      usage.push({ keyId: u.keyId, byOutcome: u.byOutcome, lastUsedAt: u.lastUsedAt ?? new Date(0).toISOString() });
      if (usage.length >= USAGE_BATCH) await flushUsage();
    } else if (line.type === 'activity') {
      await flushOps();
      await flushUsage();
      activity.push(line.value as unknown as ActivityRecord);
      if (activity.length >= ACTIVITY_BATCH) await flushActivity();
    } else {
      await flushOps();
      await flushUsage();
      await flushActivity();
      audit.push(line.value as unknown as AuditEntry);
      if (audit.length >= AUDIT_BATCH) await flushAudit();
    }
  }
  await flushOps();
  await flushUsage();
  await flushActivity();
  await flushAudit();
  return counts;
}

function classify(obj: Record<string, unknown>): Parsed | null {
  if (obj.format !== undefined) return null;
  if (obj.end !== undefined) return { kind: 'end' };
  return { kind: 'record', type: obj.type as RecordType, value: obj.value as Record<string, unknown> };
}
