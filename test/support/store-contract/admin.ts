// The store contract: admin tokens, the paged audit log and the guards of workspace and owner
// deletes.
import { describe, expect, it } from 'vitest';
import type { AdminTokenRecord } from '../../../src/domain/entities.js';
import { KeygateError } from '../../../src/errors/catalogue.js';
import type { ContractContext } from './harness.js';
import { audit, keyRecord, owner, putKey, T0, uniqueId, workspace } from './records.js';

export function adminToken(id: string = uniqueId('adm'), overrides: Partial<AdminTokenRecord> = {}): AdminTokenRecord {
  return {
    id, name: `token ${id}`, scopes: ['keys:read'], workspaces: null, createdAt: T0, updatedAt: T0,
    createdBy: { type: 'admin', name: 'ops', tokenId: 'config:ops' }, secretHash: `hash-${id}`, ...overrides,
  };
}

export function adminContract({ openStore, reopen, listen }: ContractContext): void {
  describe('admin tokens', () => {
    it('keeps, lists and deletes admin tokens, each change on the feed', async () => {
      let store = await openStore();
      const a = adminToken(undefined, { workspaces: ['ws-a'] });
      const b = adminToken();
      await store.commit({ ops: [{ op: 'put', entity: { type: 'admin-token', value: a } }, { op: 'put', entity: { type: 'admin-token', value: b } }], audit: [] });
      store = await reopen(store);
      expect(await store.getAdminToken(a.id)).toEqual(a);
      expect((await store.listAdminTokens()).map((t) => t.id).sort()).toEqual([a.id, b.id].sort());
      await store.commit({ ops: [{ op: 'delete', type: 'admin-token', id: a.id }], audit: [], expect: [{ type: 'admin-token', id: a.id, token: T0 }] });
      expect(await store.getAdminToken(a.id)).toBeNull();
      expect((await store.listAdminTokens()).map((t) => t.id)).toEqual([b.id]);
    });

    it('puts admin-token changes on the change feed', async () => {
      const store = await openStore();
      const seen: string[] = [];
      listen(store, (changes) => { for (const c of changes) seen.push(`${c.kind}:${c.op}`); });
      const t = adminToken();
      await store.commit({ ops: [{ op: 'put', entity: { type: 'admin-token', value: t } }], audit: [] });
      await store.commit({ ops: [{ op: 'delete', type: 'admin-token', id: t.id }], audit: [] });
      const deadline = Date.now() + 5_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(seen).toEqual(['admin-token:put', 'admin-token:delete']);
    });
  });

  describe('the audit log in pages', () => {
    it('pages the whole log newest first by stable positions, new entries not shifting later pages', async () => {
      const store = await openStore();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const entry = audit(`key.update`, `t${i % 2}`);
        ids.push(entry.id);
        await store.commit({ ops: [], audit: [entry] });
      }
      const first = await store.pageAudit({ limit: 3 });
      expect(first.entries.map((e) => e.id)).toEqual([ids[6], ids[5], ids[4]]);
      expect(first.next).toBe(4);
      // An entry written between two pages lands before the first page, not in the next.
      await store.commit({ ops: [], audit: [audit('key.update', 't9')] });
      const second = await store.pageAudit({ limit: 3, before: first.next! });
      expect(second.entries.map((e) => e.id)).toEqual([ids[3], ids[2], ids[1]]);
      const last = await store.pageAudit({ limit: 3, before: second.next! });
      expect(last.entries.map((e) => e.id)).toEqual([ids[0]]);
      expect(last.next).toBeNull();
    });

    it("pages one target's entries", async () => {
      let store = await openStore();
      const target = uniqueId('key');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const entry = audit('key.update', target);
        ids.push(entry.id);
        await store.commit({ ops: [], audit: [entry, audit('key.update', uniqueId('other'))] });
      }
      store = await reopen(store);
      const first = await store.pageAudit({ targetId: target, limit: 2 });
      expect(first.entries.map((e) => e.id)).toEqual([ids[4], ids[3]]);
      const rest = await store.pageAudit({ targetId: target, limit: 10, before: first.next! });
      expect(rest.entries.map((e) => e.id)).toEqual([ids[2], ids[1], ids[0]]);
      expect(rest.next).toBeNull();
    });
  });

  describe('delete guards', () => {
    it('refuses a batch expecting an empty workspace or owner while a key is in it, and allows it once the key is gone', async () => {
      const store = await openStore();
      const ws = workspace();
      const own = owner();
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }, { op: 'put', entity: { type: 'owner', value: own } }], audit: [] });
      expect(await store.workspaceHasKeys(ws.id)).toBe(false);
      const rec = keyRecord({ workspaceId: ws.id, ownerId: own.id });
      await store.commit(putKey(rec));
      expect(await store.workspaceHasKeys(ws.id)).toBe(true);
      const delWs = { ops: [{ op: 'delete' as const, type: 'workspace' as const, id: ws.id }], audit: [], expectEmptyWorkspaces: [ws.id] };
      const delOwner = { ops: [{ op: 'delete' as const, type: 'owner' as const, id: own.id }], audit: [], expectEmptyOwners: [own.id] };
      await expect(store.commit(delWs)).rejects.toMatchObject({ code: 'WORKSPACE_IN_USE' });
      await expect(store.commit(delOwner)).rejects.toBeInstanceOf(KeygateError);
      await expect(store.commit(delOwner)).rejects.toMatchObject({ code: 'OWNER_IN_USE' });
      expect(await store.getWorkspace(ws.id)).not.toBeNull();
      await store.commit({ ops: [{ op: 'delete', type: 'key', id: rec.id }], audit: [] });
      expect(await store.workspaceHasKeys(ws.id)).toBe(false);
      await store.commit(delWs);
      await store.commit(delOwner);
      expect(await store.getWorkspace(ws.id)).toBeNull();
      expect(await store.getOwner(own.id)).toBeNull();
    });
  });
}
