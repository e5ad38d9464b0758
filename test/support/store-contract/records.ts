// Records, batches and waits the store contract suite builds its tests from; the store tests
// of each backend use them too.
import type { KeyRecord } from '../../../src/domain/api-key.js';
import type { AuditEntry, Group, Owner, Workspace } from '../../../src/domain/entities.js';
import type { SigningKeyRecord } from '../../../src/domain/signing-key.js';
import type { Change, WriteBatch } from '../../../src/store/types.js';
import { keyRecord as baseKeyRecord, TEST_WORKSPACE } from '../fixtures.js';

export const T0 = '2025-06-01T12:00:00.000Z';

/** Ids unique across runs and tests, for backends whose tests share one server. */
const RUN = Math.random().toString(36).slice(2, 8);
let counter = 0;
export const uniqueId = (prefix: string): string => `${prefix}_${RUN}_${++counter}`;

/** A key record with a unique id and secret hash; the store assigns its `seq`. */
export function keyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  const id = uniqueId('key');
  return baseKeyRecord({
    id,
    workspaceId: TEST_WORKSPACE,
    name: `key ${id}`,
    permissions: ['events.create'],
    createdAt: T0,
    updatedAt: T0,
    secretHash: `hash-current-${id}`,
    seq: 0,
    ...overrides,
  });
}

export function workspace(id: string = uniqueId('ws')): Workspace {
  return { id, name: `ws ${id}`, createdAt: T0 };
}

export function group(id: string = uniqueId('grp'), overrides: Partial<Group> = {}): Group {
  return { id, name: `group ${id}`, description: '', createdAt: T0, updatedAt: T0, ...overrides };
}

export function owner(id: string = uniqueId('own'), overrides: Partial<Owner> = {}): Owner {
  return { id, name: `owner ${id}`, status: 'active', permissions: ['*'], createdAt: T0, updatedAt: T0, version: 1, ...overrides };
}

export function signingKey(id: string = uniqueId('sig'), overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  return {
    id,
    alg: 'EdDSA',
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${id}` },
    privateJwk: { kty: 'OKP', crv: 'Ed25519', x: `x-${id}`, d: `d-${id}` },
    createdAt: T0,
    retiredAt: null,
    version: 1,
    ...overrides,
  };
}

export function audit(action: string, targetId: string): AuditEntry {
  return {
    id: uniqueId('aud'),
    at: T0,
    actor: { type: 'admin', name: 'ops' },
    action,
    target: { type: 'key', id: targetId },
    before: null,
    after: null,
  };
}

export const putKey = (rec: KeyRecord, extra: Partial<WriteBatch> = {}): WriteBatch => ({
  ops: [{ op: 'put', entity: { type: 'key', value: rec } }],
  audit: [],
  ...extra,
});

export const deleteKey = (id: string): WriteBatch => ({ ops: [{ op: 'delete', type: 'key', id }], audit: [] });

/** A change without its commit time, which the tests check separately. */
export const timeless = (changes: readonly Change[] | null): Array<Omit<Change, 'at'>> | null =>
  changes === null ? null : changes.map(({ version, kind, id, op }) => ({ version, kind, id, op }));

/** The record as the store keeps it: its `seq` is assigned by the store. */
export const withoutSeq = (rec: KeyRecord | null): Omit<KeyRecord, 'seq'> | null => {
  if (rec === null) return null;
  const { seq: _seq, ...rest } = rec;
  return rest;
};

export const byId = <T extends { id: string }>(items: T[]): T[] => [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

/**
 * Waits until `done()` holds, polling: a backend may deliver the change feed to subscribers
 * some milliseconds after the commit resolved.
 */
export async function waitFor(done: () => boolean, what = 'the expected notifications', timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
