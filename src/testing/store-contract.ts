// The behaviour every KeyStore backend must have, as one suite each backend runs against its
// own factory (excluded from the build, like the rest of src/testing).
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../domain/api-key.js';
import type { AuditEntry, Group, Owner, Workspace } from '../domain/entities.js';
import type { SigningKeyRecord } from '../domain/signing-key.js';
import { KeygateError } from '../errors/catalogue.js';
import type { Change, KeyStore, NodeReport, Precondition, WriteBatch, WriteOp } from '../store/types.js';
import { keyRecord as baseKeyRecord, TEST_WORKSPACE } from './fixtures.js';

export interface StoreFactory {
  /** A fresh, empty store (at version 0, with no records, audit, usage or node reports), opened. */
  create(): Promise<KeyStore>;
  /** A second store instance over the same data as `store` (after `store` was closed), opened. */
  reopen(store: KeyStore): Promise<KeyStore>;
  /** Frees everything made by create and reopen (temp dirs, server-side data); runs after each test. */
  cleanup?(): Promise<void>;
}

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

const byId = <T extends { id: string }>(items: T[]): T[] => [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

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

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    const live = new Set<KeyStore>();
    const subscriptions: Array<() => void> = [];

    async function openStore(): Promise<KeyStore> {
      const store = await factory.create();
      live.add(store);
      return store;
    }

    async function closeStore(store: KeyStore): Promise<void> {
      live.delete(store);
      await store.close();
    }

    async function reopen(store: KeyStore): Promise<KeyStore> {
      await closeStore(store);
      const again = await factory.reopen(store);
      live.add(again);
      return again;
    }

    /** Subscribes for the length of the test. */
    function listen(store: KeyStore, listener: (changes: readonly Change[]) => void): () => void {
      const unsubscribe = store.subscribe(listener);
      subscriptions.push(unsubscribe);
      return unsubscribe;
    }

    afterEach(async () => {
      for (const unsubscribe of subscriptions.splice(0)) unsubscribe();
      for (const store of [...live]) {
        live.delete(store);
        await store.close().catch(() => undefined);
      }
      await factory.cleanup?.();
    });

    describe('an empty store', () => {
      it('starts at version 0 with nothing in it', async () => {
        const store = await openStore();
        expect(store.healthy()).toBe(true);
        expect(await store.currentVersion()).toBe(0);
        expect(await store.listWorkspaces()).toEqual([]);
        expect(await store.listGroups()).toEqual([]);
        expect(await store.listOwners()).toEqual([]);
        expect(await store.listSigningKeys()).toEqual([]);
        expect(await store.listNodes()).toEqual([]);
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
        expect(await store.scanKeys(0, 10)).toEqual([]);
        expect(await store.changesSince(0)).toEqual([]);
      });
    });

    describe('commit', () => {
      it('keeps committed data across a close and reopen', async () => {
        let store = await openStore();
        const ws = workspace();
        const rec = keyRecord({ workspaceId: ws.id });
        const grp = group();
        const own = owner();
        const sig = signingKey();
        await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }], audit: [] });
        await store.commit(putKey(rec, { audit: [audit('key.create', rec.id)] }));
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'group', value: grp } },
            { op: 'put', entity: { type: 'owner', value: own } },
            { op: 'put', entity: { type: 'signing-key', value: sig } },
          ],
          audit: [],
        });
        store = await reopen(store);
        expect(await store.getWorkspace(ws.id)).toEqual(ws);
        expect(withoutSeq(await store.getKey(rec.id))).toEqual(withoutSeq(rec));
        expect(await store.getGroup(grp.id)).toEqual(grp);
        expect(await store.getOwner(own.id)).toEqual(own);
        expect(await store.listSigningKeys()).toEqual([sig]);
        expect(await store.currentVersion()).toBe(3);
        expect((await store.listAudit({ limit: 10 })).map((a) => a.action)).toEqual(['key.create']);
      });

      it('carries on numbering versions after a reopen', async () => {
        let store = await openStore();
        await store.commit(putKey(keyRecord()));
        await store.commit(putKey(keyRecord()));
        store = await reopen(store);
        expect(await store.currentVersion()).toBe(2);
        expect(await store.changesSince(2)).toEqual([]);
        const c = keyRecord();
        expect(await store.commit(putKey(c))).toBe(3);
        expect(timeless(await store.changesSince(2))).toEqual([{ version: 3, kind: 'key', id: c.id, op: 'put' }]);
      });

      it('returns the new store version, one higher per batch', async () => {
        const store = await openStore();
        expect(await store.currentVersion()).toBe(0);
        expect(await store.commit(putKey(keyRecord()))).toBe(1);
        expect(await store.commit(putKey(keyRecord()))).toBe(2);
        expect(await store.currentVersion()).toBe(2);
      });

      it('applies concurrent commits one after the other, each with its own version', async () => {
        const store = await openStore();
        const versions = await Promise.all(Array.from({ length: 20 }, () => store.commit(putKey(keyRecord()))));
        expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(await store.scanKeys(0, 100)).toHaveLength(20);
        expect(await store.currentVersion()).toBe(20);
      });

      it('refuses a batch whose "must not exist" precondition fails with CONFLICT, and applies nothing, even after a reopen', async () => {
        let store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));

        const changed = { ...rec, name: 'changed' };
        const attempt = store.commit(putKey(changed, { expect: [{ type: 'key', id: rec.id, token: null }] }));
        await expect(attempt).rejects.toBeInstanceOf(KeygateError);
        await expect(attempt).rejects.toMatchObject({ code: 'CONFLICT', status: 409 });

        expect(await store.currentVersion()).toBe(1);
        expect((await store.getKey(rec.id))!.name).toBe(rec.name);
        store = await reopen(store);
        expect((await store.getKey(rec.id))!.name).toBe(rec.name);
        expect(await store.currentVersion()).toBe(1);
      });

      it('refuses a batch whose version precondition is stale with CONFLICT', async () => {
        const store = await openStore();
        const rec = keyRecord({ version: 1 });
        await store.commit(putKey(rec));
        await store.commit(putKey({ ...rec, version: 2, name: 'second' }, { expect: [{ type: 'key', id: rec.id, token: '1' }] }));
        await expect(
          store.commit(putKey({ ...rec, version: 2, name: 'lost update' }, { expect: [{ type: 'key', id: rec.id, token: '1' }] })),
        ).rejects.toMatchObject({ code: 'CONFLICT' });
        expect((await store.getKey(rec.id))!.name).toBe('second');
        expect(await store.currentVersion()).toBe(2);
      });

      it('refuses a precondition on a record that must exist but does not', async () => {
        const store = await openStore();
        await expect(store.commit(putKey(keyRecord(), { expect: [{ type: 'key', id: uniqueId('key_missing'), token: '1' }] }))).rejects.toMatchObject({
          code: 'CONFLICT',
        });
        expect(await store.currentVersion()).toBe(0);
      });

      it('applies nothing of a batch when one of several preconditions fails', async () => {
        const store = await openStore();
        const a = keyRecord();
        const b = keyRecord();
        await store.commit(putKey(a));
        const batch: WriteBatch = {
          ops: [
            { op: 'put', entity: { type: 'key', value: b } },
            { op: 'delete', type: 'key', id: a.id },
          ],
          audit: [audit('key.create', b.id)],
          expect: [
            { type: 'key', id: b.id, token: null },
            { type: 'key', id: a.id, token: '99' },
          ],
        };
        await expect(store.commit(batch)).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await store.getKey(b.id)).toBeNull();
        expect(await store.getKey(a.id)).not.toBeNull();
        expect(await store.lookupKey('hash', b.secretHash)).toBeNull();
        expect(await store.listAudit({ limit: 10 })).toEqual([]);
        expect(await store.currentVersion()).toBe(1);
      });

      it('accepts a batch whose preconditions hold', async () => {
        const store = await openStore();
        const rec = keyRecord({ version: 1 });
        await store.commit(putKey(rec, { expect: [{ type: 'key', id: rec.id, token: null }] }));
        await store.commit(putKey({ ...rec, version: 2 }, { expect: [{ type: 'key', id: rec.id, token: '1' }] }));
        expect((await store.getKey(rec.id))!.version).toBe(2);
      });

      it('checks a precondition against the version, or else the updatedAt, or else the createdAt of the record', async () => {
        const store = await openStore();
        const ws = workspace();
        const grp = group(undefined, { updatedAt: '2025-06-02T00:00:00.000Z' });
        const own = owner(undefined, { version: 4 });
        const sig = signingKey(undefined, { version: 7 });
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'workspace', value: ws } },
            { op: 'put', entity: { type: 'group', value: grp } },
            { op: 'put', entity: { type: 'owner', value: own } },
            { op: 'put', entity: { type: 'signing-key', value: sig } },
          ],
          audit: [],
        });
        const stale: Precondition[] = [
          { type: 'workspace', id: ws.id, token: '2025-01-01T00:00:00.000Z' },
          { type: 'group', id: grp.id, token: T0 },
          { type: 'owner', id: own.id, token: '3' },
          { type: 'signing-key', id: sig.id, token: '6' },
        ];
        for (const p of stale) {
          const attempt = store.commit(putKey(keyRecord(), { expect: [p] }));
          await expect(attempt, `${p.type} ${p.token}`).rejects.toMatchObject({ code: 'CONFLICT' });
        }
        expect(await store.currentVersion()).toBe(1);
        const renamed = { ...grp, name: 'renamed', updatedAt: '2025-06-03T00:00:00.000Z' };
        await store.commit({
          ops: [{ op: 'put', entity: { type: 'group', value: renamed } }],
          audit: [],
          expect: [
            { type: 'workspace', id: ws.id, token: ws.createdAt },
            { type: 'group', id: grp.id, token: grp.updatedAt },
            { type: 'owner', id: own.id, token: '4' },
            { type: 'signing-key', id: sig.id, token: '7' },
          ],
        });
        expect(await store.getGroup(grp.id)).toEqual(renamed);
        expect(await store.currentVersion()).toBe(2);
      });

      it('keeps working after a refused batch', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        await expect(store.commit(putKey(rec, { expect: [{ type: 'key', id: rec.id, token: null }] }))).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await store.commit(putKey(keyRecord()))).toBe(2);
        expect(store.healthy()).toBe(true);
      });

      it('refuses writes after close', async () => {
        const store = await openStore();
        await closeStore(store);
        expect(store.healthy()).toBe(false);
        await expect(store.commit(putKey(keyRecord()))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      });
    });

    describe('group delete guard', () => {
      it('refuses a batch expecting an empty group once a key has joined it, with GROUP_IN_USE', async () => {
        const store = await openStore();
        const grp = group();
        await store.commit({ ops: [{ op: 'put', entity: { type: 'group', value: grp } }], audit: [] });
        const rec = keyRecord({ groupId: grp.id });
        await store.commit(putKey(rec));
        await expect(store.commit({ ops: [{ op: 'delete', type: 'group', id: grp.id }], audit: [], expectEmptyGroups: [grp.id] }))
          .rejects.toMatchObject({ code: 'GROUP_IN_USE' });
        expect(await store.getGroup(grp.id)).toEqual(grp);
        expect(await store.currentVersion()).toBe(2);
      });

      it('accepts a batch expecting an empty group once its keys have left', async () => {
        const store = await openStore();
        const grp = group();
        await store.commit({ ops: [{ op: 'put', entity: { type: 'group', value: grp } }], audit: [] });
        const moved = keyRecord({ groupId: grp.id });
        const deleted = keyRecord({ groupId: grp.id });
        await store.commit(putKey(moved));
        await store.commit(putKey(deleted));
        await store.commit(putKey({ ...moved, groupId: null }));
        await store.commit(deleteKey(deleted.id));
        expect(await store.commit({ ops: [{ op: 'delete', type: 'group', id: grp.id }], audit: [], expectEmptyGroups: [grp.id] })).toBe(6);
        expect(await store.getGroup(grp.id)).toBeNull();
      });
    });

    describe('reads', () => {
      it('returns copies that the caller can change without changing the store', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        const read = (await store.getKey(rec.id))!;
        read.permissions.push('*');
        read.name = 'mutated';
        const again = (await store.getKey(rec.id))!;
        expect(again.permissions).toEqual(['events.create']);
        expect(again.name).toBe(rec.name);
      });

      it('is not affected by later changes to the batch the caller committed', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        rec.permissions.push('*');
        expect((await store.getKey(rec.id))!.permissions).toEqual(['events.create']);
      });

      it('returns null for an unknown id', async () => {
        const store = await openStore();
        expect(await store.getKey(uniqueId('key_unknown'))).toBeNull();
        expect(await store.getWorkspace(uniqueId('nope'))).toBeNull();
        expect(await store.getGroup(uniqueId('grp_unknown'))).toBeNull();
        expect(await store.getOwner(uniqueId('own_unknown'))).toBeNull();
      });

      it('lists the audit newest first, filters it by target and stops at the limit', async () => {
        const store = await openStore();
        const a = keyRecord();
        const b = keyRecord();
        await store.commit(putKey(a, { audit: [audit('key.create', a.id)] }));
        await store.commit(putKey(b, { audit: [audit('key.create', b.id)] }));
        await store.commit(putKey({ ...a, name: 'x' }, { audit: [audit('key.update', a.id)] }));
        expect((await store.listAudit({ limit: 10 })).map((e) => `${e.action} ${e.target.id}`)).toEqual([
          `key.update ${a.id}`,
          `key.create ${b.id}`,
          `key.create ${a.id}`,
        ]);
        expect((await store.listAudit({ targetId: a.id, limit: 10 })).map((e) => e.action)).toEqual(['key.update', 'key.create']);
        expect((await store.listAudit({ limit: 1 })).map((e) => e.action)).toEqual(['key.update']);
        expect((await store.listAudit({ targetId: b.id, limit: 1 })).map((e) => e.target.id)).toEqual([b.id]);
      });

      it('keeps the audit entries of one batch with their content', async () => {
        const store = await openStore();
        const rec = keyRecord();
        const first = { ...audit('key.create', rec.id), before: null, after: { name: rec.name } };
        const second = audit('key.update', rec.id);
        await store.commit(putKey(rec, { audit: [first, second] }));
        expect(await store.listAudit({ limit: 10 })).toEqual([second, first]);
      });

      it('indexes keys by group and by owner, following moves and deletes', async () => {
        const store = await openStore();
        const grpA = uniqueId('grp');
        const grpB = uniqueId('grp');
        const ownA = uniqueId('own');
        const rec = keyRecord({ groupId: grpA, ownerId: ownA });
        await store.commit(putKey(rec));
        expect(await store.keyIdsInGroup(grpA)).toEqual([rec.id]);
        expect(await store.keyIdsOfOwner(ownA)).toEqual([rec.id]);
        const other = keyRecord({ groupId: grpA, ownerId: ownA });
        await store.commit(putKey(other));
        expect([...(await store.keyIdsInGroup(grpA))].sort()).toEqual([rec.id, other.id].sort());
        expect([...(await store.keyIdsOfOwner(ownA))].sort()).toEqual([rec.id, other.id].sort());
        await store.commit(deleteKey(other.id));
        await store.commit(putKey({ ...rec, groupId: grpB, ownerId: null }));
        expect(await store.keyIdsInGroup(grpA)).toEqual([]);
        expect(await store.keyIdsInGroup(grpB)).toEqual([rec.id]);
        expect(await store.keyIdsOfOwner(ownA)).toEqual([]);
        await store.commit(deleteKey(rec.id));
        expect(await store.keyIdsInGroup(grpB)).toEqual([]);
      });
    });

    describe('workspaces, groups, owners and signing keys', () => {
      it('gets and lists workspaces, groups and owners, following updates and deletes', async () => {
        const store = await openStore();
        const [w1, w2] = [workspace(), workspace()];
        const [g1, g2] = [group(), group()];
        const [o1, o2] = [owner(), owner()];
        const ops: WriteOp[] = [
          ...[w1, w2].map((value): WriteOp => ({ op: 'put', entity: { type: 'workspace', value } })),
          ...[g1, g2].map((value): WriteOp => ({ op: 'put', entity: { type: 'group', value } })),
          ...[o1, o2].map((value): WriteOp => ({ op: 'put', entity: { type: 'owner', value } })),
        ];
        await store.commit({ ops, audit: [] });
        expect(await store.getWorkspace(w1.id)).toEqual(w1);
        expect(await store.getGroup(g2.id)).toEqual(g2);
        expect(await store.getOwner(o1.id)).toEqual(o1);
        expect(byId(await store.listWorkspaces())).toEqual(byId([w1, w2]));
        expect(byId(await store.listGroups())).toEqual(byId([g1, g2]));
        expect(byId(await store.listOwners())).toEqual(byId([o1, o2]));

        const g1b = { ...g1, name: 'renamed', updatedAt: '2025-06-02T00:00:00.000Z' };
        const o2b: Owner = { ...o2, status: 'disabled', version: 2 };
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'group', value: g1b } },
            { op: 'put', entity: { type: 'owner', value: o2b } },
            { op: 'delete', type: 'workspace', id: w2.id },
            { op: 'delete', type: 'group', id: g2.id },
            { op: 'delete', type: 'owner', id: o1.id },
          ],
          audit: [],
        });
        expect(await store.getWorkspace(w2.id)).toBeNull();
        expect(await store.getGroup(g2.id)).toBeNull();
        expect(await store.getOwner(o1.id)).toBeNull();
        expect(await store.getGroup(g1.id)).toEqual(g1b);
        expect(await store.getOwner(o2.id)).toEqual(o2b);
        expect(await store.listWorkspaces()).toEqual([w1]);
        expect(await store.listGroups()).toEqual([g1b]);
        expect(await store.listOwners()).toEqual([o2b]);
      });

      it('returns copies of workspaces, groups and owners', async () => {
        const store = await openStore();
        const grp = group();
        const own = owner();
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'group', value: grp } },
            { op: 'put', entity: { type: 'owner', value: own } },
          ],
          audit: [],
        });
        (await store.getOwner(own.id))!.permissions.push('keys.delete');
        (await store.listOwners())[0]!.permissions.push('keys.delete');
        (await store.listGroups())[0]!.name = 'mutated';
        expect((await store.getOwner(own.id))!.permissions).toEqual(['*']);
        expect((await store.getGroup(grp.id))!.name).toBe(grp.name);
      });

      it('lists signing keys with their private halves, following updates and deletes', async () => {
        const store = await openStore();
        const s1 = signingKey();
        const s2 = signingKey(undefined, { alg: 'ES256' });
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'signing-key', value: s1 } },
            { op: 'put', entity: { type: 'signing-key', value: s2 } },
          ],
          audit: [],
        });
        expect(byId(await store.listSigningKeys())).toEqual(byId([s1, s2]));
        const retired = { ...s1, retiredAt: T0, version: 2 };
        await store.commit({
          ops: [{ op: 'put', entity: { type: 'signing-key', value: retired } }],
          audit: [],
          expect: [{ type: 'signing-key', id: s1.id, token: '1' }],
        });
        expect(byId(await store.listSigningKeys())).toEqual(byId([retired, s2]));
        const listed = await store.listSigningKeys();
        listed[0]!.privateJwk!.d = 'mutated';
        expect(byId(await store.listSigningKeys())).toEqual(byId([retired, s2]));
        await store.commit({ ops: [{ op: 'delete', type: 'signing-key', id: s2.id }], audit: [] });
        expect(await store.listSigningKeys()).toEqual([retired]);
        expect(timeless(await store.changesSince(2))).toEqual([{ version: 3, kind: 'signing-key', id: s2.id, op: 'delete' }]);
      });
    });

    describe('lookupKey and freshness', () => {
      it('finds a key by secret hash or by id together with its owner', async () => {
        const store = await openStore();
        const own = owner();
        const rec = keyRecord({ ownerId: own.id });
        await store.commit({ ops: [{ op: 'put', entity: { type: 'owner', value: own } }, { op: 'put', entity: { type: 'key', value: rec } }], audit: [] });
        for (const found of [await store.lookupKey('hash', rec.secretHash), await store.lookupKey('id', rec.id)]) {
          expect(withoutSeq(found?.record ?? null)).toEqual(withoutSeq(rec));
          expect(found?.owner).toEqual(own);
        }
      });

      it('gives a null owner to a key without one, and null for an unknown hash or id', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        expect((await store.lookupKey('hash', rec.secretHash))?.owner).toBeNull();
        expect(await store.lookupKey('hash', 'no-such-hash')).toBeNull();
        expect(await store.lookupKey('id', 'key_nosuchkey')).toBeNull();
      });

      it('finds a key by a retired hash and not after the key is deleted', async () => {
        const store = await openStore();
        const rec = keyRecord({ retiredSecrets: [{ hash: `retired-${uniqueId('h')}`, expiresAt: '2999-01-01T00:00:00.000Z' }] });
        await store.commit(putKey(rec));
        expect((await store.lookupKey('hash', rec.retiredSecrets[0]!.hash))?.record.id).toBe(rec.id);
        await store.commit(deleteKey(rec.id));
        expect(await store.lookupKey('hash', rec.secretHash)).toBeNull();
        expect(await store.lookupKey('id', rec.id)).toBeNull();
      });

      it('reports the applied version once its changes reached the subscribers, and a recent confirmation', async () => {
        const store = await openStore();
        const seen: Change[] = [];
        listen(store, (changes) => seen.push(...changes));
        const before = Date.now();
        const v = await store.commit(putKey(keyRecord()));
        await waitFor(() => seen.length === 1 && store.appliedVersion() === v, 'the change to be applied');
        await waitFor(() => store.feedConfirmedAt() >= before, 'a confirmation after the commit');
        expect(store.feedConfirmedAt()).toBeLessThanOrEqual(Date.now());
      });
    });

    describe("lookupKey('hash')", () => {
      it('finds a key by its current secret hash', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        const found = await store.lookupKey('hash', rec.secretHash);
        expect(found?.record.id).toBe(rec.id);
        expect(withoutSeq(found?.record ?? null)).toEqual(withoutSeq(rec));
      });

      it('finds a key by a retired secret hash', async () => {
        const store = await openStore();
        const id = uniqueId('key');
        const rec = keyRecord({ id, secretHash: `hash-new-${id}`, retiredSecrets: [{ hash: `hash-old-${id}`, expiresAt: T0 }] });
        await store.commit(putKey(rec));
        expect((await store.lookupKey('hash', `hash-old-${id}`))?.record.id).toBe(rec.id);
        expect((await store.lookupKey('hash', `hash-new-${id}`))?.record.id).toBe(rec.id);
      });

      it('returns null for a hash no key has', async () => {
        const store = await openStore();
        await store.commit(putKey(keyRecord()));
        expect(await store.lookupKey('hash', uniqueId('hash-nobody-has'))).toBeNull();
      });

      it('stops finding a rotated-away hash once it is no longer retired', async () => {
        const store = await openStore();
        const id = uniqueId('key');
        const h = (n: number) => `hash-${n}-${id}`;
        const rec = keyRecord({ id, secretHash: h(1) });
        await store.commit(putKey(rec));
        await store.commit(putKey({ ...rec, secretHash: h(2), retiredSecrets: [{ hash: h(1), expiresAt: T0 }] }));
        expect((await store.lookupKey('hash', h(1)))?.record.id).toBe(rec.id);
        await store.commit(putKey({ ...rec, secretHash: h(3), retiredSecrets: [] }));
        expect(await store.lookupKey('hash', h(1))).toBeNull();
        expect(await store.lookupKey('hash', h(2))).toBeNull();
        expect((await store.lookupKey('hash', h(3)))?.record.id).toBe(rec.id);
      });

      it('finds neither the current nor a retired hash after the key is deleted', async () => {
        const store = await openStore();
        const id = uniqueId('key');
        const rec = keyRecord({ id, secretHash: `hash-cur-${id}`, retiredSecrets: [{ hash: `hash-ret-${id}`, expiresAt: T0 }] });
        await store.commit(putKey(rec));
        await store.commit(deleteKey(rec.id));
        expect(await store.lookupKey('hash', `hash-cur-${id}`)).toBeNull();
        expect(await store.lookupKey('hash', `hash-ret-${id}`)).toBeNull();
        expect(await store.getKey(rec.id)).toBeNull();
      });

      it('still finds current and retired hashes after a reopen, and not deleted ones', async () => {
        let store = await openStore();
        const kept = keyRecord();
        const keptOld = `hash-old-${kept.id}`;
        kept.retiredSecrets = [{ hash: keptOld, expiresAt: T0 }];
        const gone = keyRecord();
        await store.commit(putKey(kept));
        await store.commit(putKey(gone));
        await store.commit(deleteKey(gone.id));
        store = await reopen(store);
        expect((await store.lookupKey('hash', kept.secretHash))?.record.id).toBe(kept.id);
        expect((await store.lookupKey('hash', keptOld))?.record.id).toBe(kept.id);
        expect(await store.lookupKey('hash', gone.secretHash)).toBeNull();
      });
    });

    describe('scanKeys', () => {
      async function threeKeysWithFirstUpdated(store: KeyStore): Promise<string[]> {
        const a = keyRecord();
        const b = keyRecord();
        const c = keyRecord();
        await store.commit(putKey(a));
        await store.commit(putKey(b));
        await store.commit(putKey(c));
        await store.commit(putKey({ ...a, name: 'updated later', version: 2 }));
        return [a.id, b.id, c.id];
      }

      it('walks keys in creation order, an update keeping a key in its place', async () => {
        const store = await openStore();
        const ids = await threeKeysWithFirstUpdated(store);
        const keys = await store.scanKeys(0, 10);
        expect(keys.map((k) => k.id)).toEqual(ids);
        expect(keys[0]!.name).toBe('updated later');
      });

      it('gives seqs that ascend in creation order and survive updates', async () => {
        const store = await openStore();
        const ids = await threeKeysWithFirstUpdated(store);
        const seqs = (await store.scanKeys(0, 10)).map((k) => k.seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        expect(new Set(seqs).size).toBe(3);
        expect(seqs[0]).toBeGreaterThan(0);
        expect((await store.getKey(ids[0]!))!.seq).toBe(seqs[0]);
      });

      it('resumes after a seq and stops at the count', async () => {
        const store = await openStore();
        const ids = await threeKeysWithFirstUpdated(store);
        const first = await store.scanKeys(0, 1);
        expect(first.map((k) => k.id)).toEqual([ids[0]]);
        const rest = await store.scanKeys(first[0]!.seq, 10);
        expect(rest.map((k) => k.id)).toEqual([ids[1], ids[2]]);
        const last = await store.scanKeys(rest[1]!.seq, 10);
        expect(last).toEqual([]);
      });

      it('skips deleted keys', async () => {
        const store = await openStore();
        const ids = await threeKeysWithFirstUpdated(store);
        await store.commit(deleteKey(ids[1]!));
        expect((await store.scanKeys(0, 10)).map((k) => k.id)).toEqual([ids[0], ids[2]]);
      });

      it('keeps the same order and seqs across a reopen, and puts keys created after it last', async () => {
        let store = await openStore();
        const ids = await threeKeysWithFirstUpdated(store);
        const before = (await store.scanKeys(0, 10)).map((k) => [k.id, k.seq]);
        store = await reopen(store);
        const after = (await store.scanKeys(0, 10)).map((k) => [k.id, k.seq]);
        expect(after).toEqual(before);
        expect(after.map(([id]) => id)).toEqual(ids);
        const d = keyRecord();
        await store.commit(putKey(d));
        const all = await store.scanKeys(0, 10);
        expect(all.map((k) => k.id)).toEqual([...ids, d.id]);
        expect(all[3]!.seq).toBeGreaterThan(all[2]!.seq);
      });
    });

    describe('change feed', () => {
      it('tells subscribers about each commit with increasing versions, never splitting a commit', async () => {
        const store = await openStore();
        const seen: Change[][] = [];
        listen(store, (changes) => seen.push([...changes]));
        const a = keyRecord();
        const ws = workspace();
        const grp = group();
        const before = Date.now();
        await store.commit(putKey(a));
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'workspace', value: ws } },
            { op: 'put', entity: { type: 'group', value: grp } },
          ],
          audit: [],
        });
        await store.commit(deleteKey(a.id));
        const after = Date.now();
        await waitFor(() => seen.flat().length >= 4);
        for (const c of seen.flat()) {
          expect(c.at).toBeGreaterThanOrEqual(before);
          expect(c.at).toBeLessThanOrEqual(after);
        }
        expect(timeless(seen.flat())).toEqual([
          { version: 1, kind: 'key', id: a.id, op: 'put' },
          { version: 2, kind: 'workspace', id: ws.id, op: 'put' },
          { version: 2, kind: 'group', id: grp.id, op: 'put' },
          { version: 3, kind: 'key', id: a.id, op: 'delete' },
        ]);
        // A backend may hand several commits to one listener call, but all of a commit goes in one call.
        const callsPerVersion = new Map<number, number>();
        for (const call of seen) for (const v of new Set(call.map((c) => c.version))) callsPerVersion.set(v, (callsPerVersion.get(v) ?? 0) + 1);
        expect([...callsPerVersion.values()]).toEqual([1, 1, 1]);
      });

      it('gives every change of one batch the same version', async () => {
        const store = await openStore();
        const seen: Change[] = [];
        listen(store, (changes) => seen.push(...changes));
        const a = keyRecord();
        const ws = workspace();
        await store.commit({
          ops: [
            { op: 'put', entity: { type: 'workspace', value: ws } },
            { op: 'put', entity: { type: 'key', value: a } },
          ],
          audit: [],
        });
        await waitFor(() => seen.length >= 2);
        expect(seen.map((c) => c.version)).toEqual([1, 1]);
        expect(seen.map((c) => c.kind)).toEqual(['workspace', 'key']);
        expect(seen.map((c) => c.id)).toEqual([ws.id, a.id]);
      });

      it('does not notify about a refused batch', async () => {
        const store = await openStore();
        const seen: Change[] = [];
        listen(store, (changes) => seen.push(...changes));
        const rec = keyRecord();
        await store.commit(putKey(rec));
        await expect(store.commit(putKey(rec, { expect: [{ type: 'key', id: rec.id, token: null }] }))).rejects.toThrow();
        // A later batch that does arrive shows the refused one never will.
        const later = keyRecord();
        await store.commit(putKey(later));
        await waitFor(() => seen.some((c) => c.id === later.id));
        expect(timeless(seen)).toEqual([
          { version: 1, kind: 'key', id: rec.id, op: 'put' },
          { version: 2, kind: 'key', id: later.id, op: 'put' },
        ]);
      });

      it('stops notifying after unsubscribe', async () => {
        const store = await openStore();
        const seen: Change[] = [];
        const witness: Change[] = [];
        const unsubscribe = listen(store, (changes) => seen.push(...changes));
        listen(store, (changes) => witness.push(...changes));
        await store.commit(putKey(keyRecord()));
        await waitFor(() => seen.length >= 1 && witness.length >= 1);
        unsubscribe();
        await store.commit(putKey(keyRecord()));
        await waitFor(() => witness.some((c) => c.version === 2));
        expect(seen.map((c) => c.version)).toEqual([1]);
      });

      it('keeps committing and notifying when a listener throws', async () => {
        const store = await openStore();
        listen(store, () => {
          throw new Error('listener bug');
        });
        const seen: number[] = [];
        listen(store, (changes) => seen.push(...changes.map((c) => c.version)));
        expect(await store.commit(putKey(keyRecord()))).toBe(1);
        await waitFor(() => seen.length >= 1);
        expect(seen).toEqual([1]);
        expect(await store.commit(putKey(keyRecord()))).toBe(2);
        await waitFor(() => seen.length >= 2);
        expect(seen).toEqual([1, 2]);
        expect(store.healthy()).toBe(true);
      });

      it('answers changesSince with the changes after a version', async () => {
        const store = await openStore();
        const a = keyRecord();
        const b = keyRecord();
        await store.commit(putKey(a));
        await store.commit(putKey(b));
        await store.commit(deleteKey(a.id));
        expect(timeless(await store.changesSince(0))).toEqual([
          { version: 1, kind: 'key', id: a.id, op: 'put' },
          { version: 2, kind: 'key', id: b.id, op: 'put' },
          { version: 3, kind: 'key', id: a.id, op: 'delete' },
        ]);
        expect(timeless(await store.changesSince(2))).toEqual([{ version: 3, kind: 'key', id: a.id, op: 'delete' }]);
        expect(await store.changesSince(3)).toEqual([]);
      });
    });

    describe('usage', () => {
      const empty = { total: 0, byOutcome: {}, lastUsedAt: null };

      it('adds up counts per outcome and in total, keeping the latest use', async () => {
        const store = await openStore();
        const rec = keyRecord();
        const other = keyRecord();
        await store.commit(putKey(rec));
        await store.commit(putKey(other));
        expect(await store.getUsage(rec.id)).toEqual(empty);
        await store.recordUsage([
          { keyId: rec.id, byOutcome: { OK: 2 }, lastUsedAt: '2025-06-01T12:00:05.000Z' },
          { keyId: other.id, byOutcome: { OK: 1 }, lastUsedAt: '2025-06-01T12:00:01.000Z' },
        ]);
        await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 3, PERMISSION_DENIED: 1 }, lastUsedAt: '2025-06-01T12:00:09.000Z' }]);
        // A batch that arrives late carries an older time: the latest use stays.
        await store.recordUsage([{ keyId: rec.id, byOutcome: { RATE_LIMITED: 4 }, lastUsedAt: '2025-06-01T12:00:02.000Z' }]);
        expect(await store.getUsage(rec.id)).toEqual({
          total: 10,
          byOutcome: { OK: 5, PERMISSION_DENIED: 1, RATE_LIMITED: 4 },
          lastUsedAt: '2025-06-01T12:00:09.000Z',
        });
        expect(await store.getUsage(other.id)).toEqual({ total: 1, byOutcome: { OK: 1 }, lastUsedAt: '2025-06-01T12:00:01.000Z' });
      });

      it('ignores usage of an unknown key', async () => {
        const store = await openStore();
        const unknown = uniqueId('key_unknown');
        await store.recordUsage([{ keyId: unknown, byOutcome: { OK: 1 }, lastUsedAt: T0 }]);
        expect(await store.getUsage(unknown)).toEqual(empty);
      });

      it('drops the usage of a deleted key and ignores usage reported after the delete', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 3 }, lastUsedAt: T0 }]);
        await store.commit(deleteKey(rec.id));
        expect(await store.getUsage(rec.id)).toEqual(empty);
        await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 1 }, lastUsedAt: T0 }]);
        expect(await store.getUsage(rec.id)).toEqual(empty);
        // A key made again under the same id starts from nothing.
        await store.commit(putKey(rec));
        expect(await store.getUsage(rec.id)).toEqual(empty);
      });

      it('keeps usage counts across a close and reopen, and drops them with the key', async () => {
        let store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 3, PERMISSION_DENIED: 1 }, lastUsedAt: T0 }]);
        store = await reopen(store);
        expect(await store.getUsage(rec.id)).toEqual({ total: 4, byOutcome: { OK: 3, PERMISSION_DENIED: 1 }, lastUsedAt: T0 });
        await store.commit(deleteKey(rec.id));
        expect((await store.getUsage(rec.id)).total).toBe(0);
      });

      it('does not put usage on the change feed', async () => {
        const store = await openStore();
        const rec = keyRecord();
        await store.commit(putKey(rec));
        await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 1 }, lastUsedAt: T0 }]);
        expect(await store.currentVersion()).toBe(1);
        expect(timeless(await store.changesSince(0))).toEqual([{ version: 1, kind: 'key', id: rec.id, op: 'put' }]);
      });
    });

    describe('nodes', () => {
      it('lists the latest report of each node', async () => {
        const store = await openStore();
        const gw = uniqueId('gw');
        const admin = uniqueId('admin');
        // Recent reports: a store may stop listing nodes that have not reported for a long time.
        const now = Date.now();
        const first: NodeReport = { id: gw, role: 'gateway', appliedVersion: 1, reportedAt: new Date(now - 2_000).toISOString() };
        const adminReport: NodeReport = { id: admin, role: 'admin', appliedVersion: 2, reportedAt: new Date(now - 1_000).toISOString() };
        const latest: NodeReport = { id: gw, role: 'gateway', appliedVersion: 3, reportedAt: new Date(now).toISOString() };
        await store.reportNode(first);
        await store.reportNode(adminReport);
        expect(byId(await store.listNodes())).toEqual(byId([first, adminReport]));
        await store.reportNode(latest);
        expect(byId(await store.listNodes())).toEqual(byId([latest, adminReport]));
        expect(await store.currentVersion()).toBe(0);
      });

      it('stops listing a node whose last report is older than 15 s, and lists it again when it reports (regression: dead nodes stayed listed)', async () => {
        const store = await openStore();
        const live = uniqueId('gw-live');
        const dead = uniqueId('gw-dead');
        const now = Date.now();
        const liveReport: NodeReport = { id: live, role: 'gateway', appliedVersion: 1, reportedAt: new Date(now - 10_000).toISOString() };
        await store.reportNode(liveReport);
        await store.reportNode({ id: dead, role: 'gateway', appliedVersion: 1, reportedAt: new Date(now - 16_000).toISOString() });
        expect(byId(await store.listNodes())).toEqual(byId([liveReport]));
        const back: NodeReport = { id: dead, role: 'gateway', appliedVersion: 2, reportedAt: new Date().toISOString() };
        await store.reportNode(back);
        expect(byId(await store.listNodes())).toEqual(byId([liveReport, back]));
      });

      it('drops a node at once on forgetNode; forgetting an unknown node is no error', async () => {
        const store = await openStore();
        const gone = uniqueId('gw-gone');
        const kept = uniqueId('gw-kept');
        const keptReport: NodeReport = { id: kept, role: 'gateway', appliedVersion: 1, reportedAt: new Date().toISOString() };
        await store.reportNode({ id: gone, role: 'gateway', appliedVersion: 1, reportedAt: new Date().toISOString() });
        await store.reportNode(keptReport);
        await store.forgetNode(gone);
        await store.forgetNode(uniqueId('gw-never'));
        expect(byId(await store.listNodes())).toEqual(byId([keptReport]));
      });
    });
  });
}
