// The store contract: the activity records of each key (who called what, never a secret).
import { describe, expect, it } from 'vitest';
import type { ActivityRecord } from '../../../src/store/types.js';
import type { ContractContext } from './harness.js';
import { deleteKey, keyRecord, putKey, timeless, uniqueId } from './records.js';

let n = 0;
/** A record of `keyId` at a distinct instant. */
export function activity(keyId: string, overrides: Partial<ActivityRecord> = {}): ActivityRecord {
  n++;
  return {
    keyId,
    at: new Date(Date.UTC(2025, 5, 1, 12, 0, 0, n)).toISOString(),
    requestId: `req-${n}`,
    method: 'POST',
    route: 'send-events',
    status: 200,
    outcome: 'OK',
    clientIp: '203.0.113.7',
    ...overrides,
  };
}

export function activityContract({ openStore, reopen }: ContractContext): void {
  describe('activity', () => {
    it('lists the records of a key, the last recorded first, up to the limit', async () => {
      const store = await openStore();
      const rec = keyRecord();
      const other = keyRecord();
      await store.commit(putKey(rec));
      await store.commit(putKey(other));
      expect(await store.listActivity(rec.id, 10)).toEqual([]);
      const a = activity(rec.id);
      const b = activity(other.id, { status: 403, outcome: 'PERMISSION_DENIED', method: 'GET', route: 'list-events' });
      const c = activity(rec.id, { clientIp: null });
      await store.recordActivity([a, b], 100);
      await store.recordActivity([c], 100);
      expect(await store.listActivity(rec.id, 10)).toEqual([c, a]);
      expect(await store.listActivity(rec.id, 1)).toEqual([c]);
      expect(await store.listActivity(other.id, 10)).toEqual([b]);
    });

    it('keeps only the newest records of each key', async () => {
      const store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      const records = Array.from({ length: 8 }, () => activity(rec.id));
      await store.recordActivity(records.slice(0, 5), 3);
      await store.recordActivity(records.slice(5), 3);
      expect(await store.listActivity(rec.id, 100)).toEqual(records.slice(5).reverse());
    });

    it('orders and trims by time, whatever order the batches arrive in', async () => {
      const store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      const [r1, r2, r3, r4, r5] = Array.from({ length: 5 }, () => activity(rec.id));
      // Node B's batch (older requests) reaches the store after node A's.
      await store.recordActivity([r3!, r5!], 3);
      await store.recordActivity([r1!, r2!, r4!], 3);
      expect(await store.listActivity(rec.id, 10)).toEqual([r5, r4, r3]);
    });

    it('drops records of an unknown key, and a deleted key\'s records with it', async () => {
      const store = await openStore();
      const unknown = uniqueId('key_unknown');
      await store.recordActivity([activity(unknown)], 10);
      expect(await store.listActivity(unknown, 10)).toEqual([]);
      const rec = keyRecord();
      await store.commit(putKey(rec));
      await store.recordActivity([activity(rec.id)], 10);
      await store.commit(deleteKey(rec.id));
      expect(await store.listActivity(rec.id, 10)).toEqual([]);
      await store.recordActivity([activity(rec.id)], 10);
      expect(await store.listActivity(rec.id, 10)).toEqual([]);
    });

    it('keeps activity across a close and reopen', async () => {
      let store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      const records = [activity(rec.id), activity(rec.id)];
      await store.recordActivity(records, 10);
      store = await reopen(store);
      expect(await store.listActivity(rec.id, 10)).toEqual(records.reverse());
    });

    it('does not put activity on the change feed', async () => {
      const store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      await store.recordActivity([activity(rec.id)], 10);
      expect(await store.currentVersion()).toBe(1);
      expect(timeless(await store.changesSince(0))).toEqual([{ version: 1, kind: 'key', id: rec.id, op: 'put' }]);
    });
  });
}
