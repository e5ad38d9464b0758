// The store contract: the change feed (subscribers and changesSince).
import { describe, expect, it } from 'vitest';
import type { Change } from '../../../src/store/types.js';
import type { ContractContext } from './harness.js';
import { deleteKey, group, keyRecord, putKey, timeless, waitFor, workspace } from './records.js';

export function changeFeedContract({ openStore, listen }: ContractContext): void {
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
}
