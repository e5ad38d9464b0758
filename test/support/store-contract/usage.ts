// The store contract: usage counts per key.
import { describe, expect, it } from 'vitest';
import type { ContractContext } from './harness.js';
import { deleteKey, keyRecord, putKey, T0, timeless, uniqueId } from './records.js';

export function usageContract({ openStore, reopen }: ContractContext): void {
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
}
