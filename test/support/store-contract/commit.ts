// The store contract: an empty store, commit with its versions and preconditions, and the group
// delete guard.
import { describe, expect, it } from 'vitest';
import { KeygateError } from '../../../src/errors/catalogue.js';
import type { Precondition, WriteBatch } from '../../../src/store/types.js';
import type { ContractContext } from './harness.js';
import { audit, deleteKey, group, keyRecord, owner, putKey, signingKey, T0, timeless, uniqueId, withoutSeq, workspace } from './records.js';

export function commitContract({ openStore, closeStore, reopen }: ContractContext): void {
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
}
