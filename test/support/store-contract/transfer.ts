// The store contract: what export and import read and write (the whole audit in commit order).
import { describe, expect, it } from 'vitest';
import type { ContractContext } from './harness.js';
import { audit, keyRecord, putKey } from './records.js';

export function transferContract({ openStore, reopen }: ContractContext): void {
  describe('audit scan (export)', () => {
    it('reads the whole audit oldest first, in pages by position', async () => {
      const store = await openStore();
      expect(await store.scanAudit(0, 10)).toEqual([]);
      const rec = keyRecord();
      const entries = Array.from({ length: 7 }, (_, i) => audit(`key.update-${i}`, rec.id));
      await store.commit(putKey(rec, { audit: entries.slice(0, 3) }));
      await store.commit({ ops: [], audit: entries.slice(3, 4) });
      await store.commit(putKey({ ...rec, name: 'again' }, { audit: entries.slice(4) }));
      expect(await store.scanAudit(0, 100)).toEqual(entries);
      expect(await store.scanAudit(0, 3)).toEqual(entries.slice(0, 3));
      expect(await store.scanAudit(3, 3)).toEqual(entries.slice(3, 6));
      expect(await store.scanAudit(6, 3)).toEqual(entries.slice(6));
      expect(await store.scanAudit(7, 3)).toEqual([]);
      expect(await store.scanAudit(0, 0)).toEqual([]);
    });

    it('keeps positions when entries are added between two pages', async () => {
      const store = await openStore();
      const rec = keyRecord();
      const first = [audit('key.create', rec.id), audit('key.update', rec.id)];
      await store.commit(putKey(rec, { audit: first }));
      expect(await store.scanAudit(0, 1)).toEqual(first.slice(0, 1));
      const later = audit('key.delete', rec.id);
      await store.commit({ ops: [{ op: 'delete', type: 'key', id: rec.id }], audit: [later] });
      expect(await store.scanAudit(1, 10)).toEqual([first[1], later]);
    });

    it('reads the same audit after a reopen', async () => {
      let store = await openStore();
      const rec = keyRecord();
      const entries = [audit('key.create', rec.id), audit('key.update', rec.id)];
      await store.commit(putKey(rec, { audit: entries }));
      store = await reopen(store);
      expect(await store.scanAudit(0, 10)).toEqual(entries);
      expect(await store.scanAudit(1, 10)).toEqual(entries.slice(1));
    });
  });
}
