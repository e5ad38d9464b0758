// The store contract: reads (copies, unknown ids, the audit, the group and owner indexes) and the
// workspaces, groups, owners and signing keys.
import { describe, expect, it } from 'vitest';
import type { Owner } from '../../../src/domain/entities.js';
import type { WriteOp } from '../../../src/store/types.js';
import type { ContractContext } from './harness.js';
import { audit, byId, deleteKey, group, keyRecord, owner, putKey, signingKey, T0, timeless, uniqueId, workspace } from './records.js';

export function readsContract({ openStore }: ContractContext): void {
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
}
