// The store contract: finding keys by secret hash or id, freshness, and scanning keys in order.
import { describe, expect, it } from 'vitest';
import type { Change, KeyStore } from '../../../src/store/types.js';
import type { ContractContext } from './harness.js';
import { deleteKey, keyRecord, owner, putKey, T0, uniqueId, waitFor, withoutSeq } from './records.js';

export function keysContract({ openStore, reopen, listen }: ContractContext): void {
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
}
