import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../domain/api-key.js';
import type { AuditEntry, Workspace } from '../../domain/entities.js';
import { KeygateError } from '../../errors.js';
import type { Change, WriteBatch } from '../types.js';
import { EmbeddedStore } from './embedded-store.js';

const logger = pino({ level: 'silent' });
const T0 = '2025-06-01T12:00:00.000Z';

let counter = 0;

function keyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  counter++;
  return {
    id: `key_test${String(counter).padStart(18, '0')}`,
    workspaceId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
    name: `key ${counter}`,
    description: '',
    groupId: null,
    ownerId: null,
    type: 'workspace',
    environment: 'live',
    prefix: 'kg_live_abcd',
    enabled: true,
    permissions: ['events.create'],
    permissionsLocked: false,
    ipAllowlist: [],
    eventAllowlist: [],
    eventDenylist: [],
    profileAttributeAllowlist: [],
    basicAuth: false,
    simpleAuth: { enabled: false, salt: null },
    rateLimit: null,
    quota: null,
    createdAt: T0,
    updatedAt: T0,
    expiresAt: null,
    version: 1,
    secretHash: `hash-current-${counter}`,
    retiredSecrets: [],
    seq: 0,
    ...overrides,
  };
}

function workspace(id: string): Workspace {
  return { id, name: `ws ${id}`, createdAt: T0 };
}

function audit(action: string, targetId: string): AuditEntry {
  counter++;
  return {
    id: `aud_${counter}`,
    at: T0,
    actor: { type: 'admin', name: 'ops' },
    action,
    target: { type: 'key', id: targetId },
    before: null,
    after: null,
  };
}

const putKey = (rec: KeyRecord, extra: Partial<WriteBatch> = {}): WriteBatch => ({
  ops: [{ op: 'put', entity: { type: 'key', value: rec } }],
  audit: [],
  ...extra,
});

const deleteKey = (id: string): WriteBatch => ({ ops: [{ op: 'delete', type: 'key', id }], audit: [] });

/** A change without its commit time, which the tests check separately. */
const timeless = (changes: readonly Change[] | null): Array<Omit<Change, 'at'>> | null =>
  changes === null ? null : changes.map(({ version, kind, id, op }) => ({ version, kind, id, op }));

/** The record as the store keeps it: its `seq` is assigned by the store. */
const withoutSeq = (rec: KeyRecord | null): Omit<KeyRecord, 'seq'> | null => {
  if (rec === null) return null;
  const { seq: _seq, ...rest } = rec;
  return rest;
};

describe('EmbeddedStore', () => {
  let root: string;
  let dir: string;
  const open: EmbeddedStore[] = [];

  async function openStore(): Promise<EmbeddedStore> {
    const store = new EmbeddedStore({ path: dir, logger });
    await store.open();
    open.push(store);
    return store;
  }

  async function closeStore(store: EmbeddedStore): Promise<void> {
    const i = open.indexOf(store);
    if (i !== -1) open.splice(i, 1);
    await store.close();
  }

  async function reopen(store: EmbeddedStore): Promise<EmbeddedStore> {
    await closeStore(store);
    return openStore();
  }

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'keygate-store-'));
    dir = join(root, 'data');
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  describe('files', () => {
    it('creates its directory with mode 0700', async () => {
      await openStore();
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    });

    it('creates missing parent directories with mode 0700 as well', async () => {
      dir = join(root, 'nested', 'data');
      await openStore();
      expect(statSync(join(root, 'nested')).mode & 0o777).toBe(0o700);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    });

    it('creates the journal with mode 0600', async () => {
      const store = await openStore();
      await store.commit(putKey(keyRecord()));
      expect(statSync(join(dir, 'journal.log')).mode & 0o777).toBe(0o600);
    });

    it('creates the snapshot with mode 0600 when it compacts', async () => {
      const store = await openStore();
      await store.commit(putKey(keyRecord()));
      await store.compactNow();
      expect(statSync(join(dir, 'snapshot.json')).mode & 0o777).toBe(0o600);
    });

    it('writes usage counts to a 0600 file on close', async () => {
      const store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 2 }, lastUsedAt: T0 }]);
      await closeStore(store);
      expect(statSync(join(dir, 'usage.json')).mode & 0o777).toBe(0o600);
    });

    it('never writes a secret hash into the lock file or usage file', async () => {
      const store = await openStore();
      const rec = keyRecord({ secretHash: 'hash-that-must-stay-in-the-journal' });
      await store.commit(putKey(rec));
      await store.recordUsage([{ keyId: rec.id, byOutcome: { OK: 1 }, lastUsedAt: T0 }]);
      await closeStore(store);
      expect(readFileSync(join(dir, 'usage.json'), 'utf8')).not.toContain(rec.secretHash);
    });
  });

  describe('commit', () => {
    it('keeps committed data across a close and reopen', async () => {
      let store = await openStore();
      const ws = workspace('3f2504e0-4f89-41d3-9a0c-0305e82c3301');
      const rec = keyRecord({ workspaceId: ws.id });
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }], audit: [] });
      await store.commit(putKey(rec, { audit: [audit('key.create', rec.id)] }));
      store = await reopen(store);
      expect(await store.getWorkspace(ws.id)).toEqual(ws);
      expect(withoutSeq(await store.getKey(rec.id))).toEqual(withoutSeq(rec));
      expect(await store.currentVersion()).toBe(2);
      expect((await store.listAudit({ limit: 10 })).map((a) => a.action)).toEqual(['key.create']);
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
    });

    it('refuses a batch whose "must not exist" precondition fails with CONFLICT, and writes nothing', async () => {
      let store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      const journalBytes = statSync(join(dir, 'journal.log')).size;

      const changed = { ...rec, name: 'changed' };
      const attempt = store.commit(putKey(changed, { expect: [{ type: 'key', id: rec.id, token: null }] }));
      await expect(attempt).rejects.toBeInstanceOf(KeygateError);
      await expect(attempt).rejects.toMatchObject({ code: 'CONFLICT', status: 409 });

      expect(await store.currentVersion()).toBe(1);
      expect((await store.getKey(rec.id))!.name).toBe(rec.name);
      expect(statSync(join(dir, 'journal.log')).size).toBe(journalBytes);
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
    });

    it('refuses a precondition on a record that must exist but does not', async () => {
      const store = await openStore();
      await expect(store.commit(putKey(keyRecord(), { expect: [{ type: 'key', id: 'key_missing', token: '1' }] }))).rejects.toMatchObject({
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
      expect(await store.listAudit({ limit: 10 })).toEqual([]);
    });

    it('accepts a batch whose preconditions hold', async () => {
      const store = await openStore();
      const rec = keyRecord({ version: 1 });
      await store.commit(putKey(rec, { expect: [{ type: 'key', id: rec.id, token: null }] }));
      await store.commit(putKey({ ...rec, version: 2 }, { expect: [{ type: 'key', id: rec.id, token: '1' }] }));
      expect((await store.getKey(rec.id))!.version).toBe(2);
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
      expect(await store.getKey('key_unknown')).toBeNull();
      expect(await store.getWorkspace('nope')).toBeNull();
    });

    it('lists the audit newest first and filters it by target', async () => {
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
      expect(await store.listAudit({ limit: 1 })).toHaveLength(1);
    });

    it('indexes keys by group and by owner, following moves and deletes', async () => {
      const store = await openStore();
      const rec = keyRecord({ groupId: 'grp_a', ownerId: 'own_a' });
      await store.commit(putKey(rec));
      expect(await store.keyIdsInGroup('grp_a')).toEqual([rec.id]);
      expect(await store.keyIdsOfOwner('own_a')).toEqual([rec.id]);
      await store.commit(putKey({ ...rec, groupId: 'grp_b', ownerId: null }));
      expect(await store.keyIdsInGroup('grp_a')).toEqual([]);
      expect(await store.keyIdsInGroup('grp_b')).toEqual([rec.id]);
      expect(await store.keyIdsOfOwner('own_a')).toEqual([]);
      await store.commit(deleteKey(rec.id));
      expect(await store.keyIdsInGroup('grp_b')).toEqual([]);
    });
  });

  describe('findKeyBySecretHash', () => {
    it('finds a key by its current secret hash', async () => {
      const store = await openStore();
      const rec = keyRecord({ secretHash: 'hash-now' });
      await store.commit(putKey(rec));
      expect((await store.findKeyBySecretHash('hash-now'))?.id).toBe(rec.id);
    });

    it('finds a key by a retired secret hash', async () => {
      const store = await openStore();
      const rec = keyRecord({ secretHash: 'hash-new', retiredSecrets: [{ hash: 'hash-old', expiresAt: T0 }] });
      await store.commit(putKey(rec));
      expect((await store.findKeyBySecretHash('hash-old'))?.id).toBe(rec.id);
      expect((await store.findKeyBySecretHash('hash-new'))?.id).toBe(rec.id);
    });

    it('returns null for a hash no key has', async () => {
      const store = await openStore();
      await store.commit(putKey(keyRecord()));
      expect(await store.findKeyBySecretHash('hash-nobody-has')).toBeNull();
    });

    it('stops finding a rotated-away hash once it is no longer retired', async () => {
      const store = await openStore();
      const rec = keyRecord({ secretHash: 'hash-1' });
      await store.commit(putKey(rec));
      await store.commit(putKey({ ...rec, secretHash: 'hash-2', retiredSecrets: [{ hash: 'hash-1', expiresAt: T0 }] }));
      expect((await store.findKeyBySecretHash('hash-1'))?.id).toBe(rec.id);
      await store.commit(putKey({ ...rec, secretHash: 'hash-3', retiredSecrets: [] }));
      expect(await store.findKeyBySecretHash('hash-1')).toBeNull();
      expect(await store.findKeyBySecretHash('hash-2')).toBeNull();
      expect((await store.findKeyBySecretHash('hash-3'))?.id).toBe(rec.id);
    });

    it('finds neither the current nor a retired hash after the key is deleted', async () => {
      const store = await openStore();
      const rec = keyRecord({ secretHash: 'hash-cur', retiredSecrets: [{ hash: 'hash-ret', expiresAt: T0 }] });
      await store.commit(putKey(rec));
      await store.commit(deleteKey(rec.id));
      expect(await store.findKeyBySecretHash('hash-cur')).toBeNull();
      expect(await store.findKeyBySecretHash('hash-ret')).toBeNull();
      expect(await store.getKey(rec.id)).toBeNull();
    });

    it('still finds current and retired hashes after a reopen, and not deleted ones', async () => {
      let store = await openStore();
      const kept = keyRecord({ secretHash: 'hash-kept', retiredSecrets: [{ hash: 'hash-kept-old', expiresAt: T0 }] });
      const gone = keyRecord({ secretHash: 'hash-gone' });
      await store.commit(putKey(kept));
      await store.commit(putKey(gone));
      await store.commit(deleteKey(gone.id));
      store = await reopen(store);
      expect((await store.findKeyBySecretHash('hash-kept'))?.id).toBe(kept.id);
      expect((await store.findKeyBySecretHash('hash-kept-old'))?.id).toBe(kept.id);
      expect(await store.findKeyBySecretHash('hash-gone')).toBeNull();
      await store.compactNow();
      store = await reopen(store);
      expect((await store.findKeyBySecretHash('hash-kept-old'))?.id).toBe(kept.id);
      expect(await store.findKeyBySecretHash('hash-gone')).toBeNull();
    });
  });

  describe('scanKeys', () => {
    async function threeKeysWithFirstUpdated(store: EmbeddedStore): Promise<string[]> {
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
      expect((await store.scanKeys(0, 10)).map((k) => k.id)).toEqual(ids);
    });

    it('gives seqs that ascend in creation order and survive updates', async () => {
      const store = await openStore();
      await threeKeysWithFirstUpdated(store);
      const seqs = (await store.scanKeys(0, 10)).map((k) => k.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(3);
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

    it('keeps the same order and seqs across a reopen', async () => {
      let store = await openStore();
      const ids = await threeKeysWithFirstUpdated(store);
      const before = (await store.scanKeys(0, 10)).map((k) => [k.id, k.seq]);
      store = await reopen(store);
      const after = (await store.scanKeys(0, 10)).map((k) => [k.id, k.seq]);
      expect(after).toEqual(before);
      expect(after.map(([id]) => id)).toEqual(ids);
    });

    it('keeps the same order and seqs after compaction and a reopen', async () => {
      let store = await openStore();
      const ids = await threeKeysWithFirstUpdated(store);
      const before = (await store.scanKeys(0, 10)).map((k) => [k.id, k.seq]);
      await store.compactNow();
      expect((await store.scanKeys(0, 10)).map((k) => [k.id, k.seq])).toEqual(before);
      store = await reopen(store);
      const after = (await store.scanKeys(0, 10)).map((k) => [k.id, k.seq]);
      expect(after).toEqual(before);
      expect(after.map(([id]) => id)).toEqual(ids);
      // A key created after the reopen comes last, with a larger seq.
      const d = keyRecord();
      await store.commit(putKey(d));
      const all = await store.scanKeys(0, 10);
      expect(all.map((k) => k.id)).toEqual([...ids, d.id]);
      expect(all[3]!.seq).toBeGreaterThan(all[2]!.seq);
    });
  });

  describe('change feed', () => {
    it('tells subscribers about each commit with increasing versions', async () => {
      const store = await openStore();
      const seen: Change[][] = [];
      store.subscribe((changes) => seen.push([...changes]));
      const a = keyRecord();
      const before = Date.now();
      await store.commit(putKey(a));
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: workspace('w1') } }], audit: [] });
      await store.commit(deleteKey(a.id));
      const after = Date.now();
      for (const c of seen.flat()) {
        expect(c.at).toBeGreaterThanOrEqual(before);
        expect(c.at).toBeLessThanOrEqual(after);
      }
      expect(seen.map(timeless)).toEqual([
        [{ version: 1, kind: 'key', id: a.id, op: 'put' }],
        [{ version: 2, kind: 'workspace', id: 'w1', op: 'put' }],
        [{ version: 3, kind: 'key', id: a.id, op: 'delete' }],
      ]);
    });

    it('gives every change of one batch the same version', async () => {
      const store = await openStore();
      const seen: Change[] = [];
      store.subscribe((changes) => seen.push(...changes));
      const a = keyRecord();
      await store.commit({
        ops: [
          { op: 'put', entity: { type: 'workspace', value: workspace('w1') } },
          { op: 'put', entity: { type: 'key', value: a } },
        ],
        audit: [],
      });
      expect(seen.map((c) => c.version)).toEqual([1, 1]);
      expect(seen.map((c) => c.kind)).toEqual(['workspace', 'key']);
    });

    it('does not notify about a refused batch', async () => {
      const store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      const seen: Change[] = [];
      store.subscribe((changes) => seen.push(...changes));
      await expect(store.commit(putKey(rec, { expect: [{ type: 'key', id: rec.id, token: null }] }))).rejects.toThrow();
      expect(seen).toEqual([]);
    });

    it('stops notifying after unsubscribe', async () => {
      const store = await openStore();
      const seen: Change[] = [];
      const unsubscribe = store.subscribe((changes) => seen.push(...changes));
      await store.commit(putKey(keyRecord()));
      unsubscribe();
      await store.commit(putKey(keyRecord()));
      expect(seen.map((c) => c.version)).toEqual([1]);
    });

    it('keeps committing when a listener throws', async () => {
      const store = await openStore();
      store.subscribe(() => {
        throw new Error('listener bug');
      });
      const seen: number[] = [];
      store.subscribe((changes) => seen.push(...changes.map((c) => c.version)));
      expect(await store.commit(putKey(keyRecord()))).toBe(1);
      expect(seen).toEqual([1]);
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

    it('answers changesSince with null after a reopen when the feed cannot reach back', async () => {
      let store = await openStore();
      await store.commit(putKey(keyRecord()));
      await store.commit(putKey(keyRecord()));
      store = await reopen(store);
      expect(await store.changesSince(0)).toBeNull();
      expect(await store.changesSince(2)).toEqual([]);
      const c = keyRecord();
      await store.commit(putKey(c));
      expect(timeless(await store.changesSince(2))).toEqual([{ version: 3, kind: 'key', id: c.id, op: 'put' }]);
    });
  });

  describe('locking', () => {
    it('refuses to open a second store on the same directory while the first is open', async () => {
      await openStore();
      const second = new EmbeddedStore({ path: dir, logger });
      let opened = false;
      try {
        await second.open();
        opened = true;
      } catch {
        // expected
      } finally {
        if (opened) await second.close();
      }
      expect(opened).toBe(false);
    });

    it('refuses to open a store locked by another live process', async () => {
      const first = await openStore();
      await closeStore(first);
      const holder: ChildProcess = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
      try {
        writeFileSync(join(dir, 'store.lock'), String(holder.pid));
        const store = new EmbeddedStore({ path: dir, logger });
        await expect(store.open()).rejects.toThrow(/in use by process/);
        expect(readFileSync(join(dir, 'store.lock'), 'utf8')).toBe(String(holder.pid));
      } finally {
        holder.kill();
      }
    });

    it('takes over a lock left by a process that has died', async () => {
      const first = await openStore();
      const rec = keyRecord();
      await first.commit(putKey(rec));
      await closeStore(first);
      const dead = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
      await new Promise((resolve) => dead.once('exit', resolve));
      writeFileSync(join(dir, 'store.lock'), String(dead.pid));
      const store = await openStore();
      expect((await store.getKey(rec.id))?.id).toBe(rec.id);
    });

    it('removes its lock file on close', async () => {
      const store = await openStore();
      expect(existsSync(join(dir, 'store.lock'))).toBe(true);
      await closeStore(store);
      expect(existsSync(join(dir, 'store.lock'))).toBe(false);
    });
  });

  describe('compaction and recovery', () => {
    it('keeps everything after compactNow and a reopen', async () => {
      let store = await openStore();
      const ws = workspace('w1');
      const a = keyRecord({ groupId: 'grp_1', retiredSecrets: [{ hash: 'hash-a-old', expiresAt: T0 }] });
      const b = keyRecord({ ownerId: 'own_1' });
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }], audit: [] });
      await store.commit(putKey(a, { audit: [audit('key.create', a.id)] }));
      await store.commit(putKey(b, { audit: [audit('key.create', b.id)] }));
      await store.commit({
        ops: [{ op: 'put', entity: { type: 'group', value: { id: 'grp_1', name: 'g', description: '', createdAt: T0, updatedAt: T0 } } }],
        audit: [],
      });
      await store.commit({
        ops: [{ op: 'put', entity: { type: 'owner', value: { id: 'own_1', name: 'o', status: 'active', permissions: ['*'], createdAt: T0, updatedAt: T0, version: 1 } } }],
        audit: [],
      });
      const keysBefore = await store.scanKeys(0, 10);

      await store.compactNow();
      expect(statSync(join(dir, 'journal.log')).size).toBe(0);
      expect(existsSync(join(dir, 'snapshot.json'))).toBe(true);

      store = await reopen(store);
      expect(await store.currentVersion()).toBe(5);
      expect(await store.listWorkspaces()).toEqual([ws]);
      expect(await store.scanKeys(0, 10)).toEqual(keysBefore);
      expect((await store.listGroups()).map((g) => g.id)).toEqual(['grp_1']);
      expect((await store.listOwners()).map((o) => o.id)).toEqual(['own_1']);
      expect(await store.keyIdsInGroup('grp_1')).toEqual([a.id]);
      expect(await store.keyIdsOfOwner('own_1')).toEqual([b.id]);
      expect((await store.findKeyBySecretHash('hash-a-old'))?.id).toBe(a.id);
      expect((await store.listAudit({ limit: 10 })).map((e) => e.target.id)).toEqual([b.id, a.id]);
    });

    it('replays journal records written after a snapshot', async () => {
      let store = await openStore();
      const a = keyRecord();
      const b = keyRecord();
      await store.commit(putKey(a));
      await store.compactNow();
      await store.commit(putKey(b));
      await store.commit(putKey({ ...a, name: 'renamed after the snapshot' }));
      store = await reopen(store);
      expect(await store.currentVersion()).toBe(3);
      expect((await store.getKey(a.id))!.name).toBe('renamed after the snapshot');
      expect((await store.scanKeys(0, 10)).map((k) => k.id)).toEqual([a.id, b.id]);
    });

    it('compacts by itself once the journal passes the configured size', async () => {
      const store = new EmbeddedStore({ path: dir, logger, compactAfterBytes: 1 });
      await store.open();
      open.push(store);
      await store.commit(putKey(keyRecord()));
      expect(existsSync(join(dir, 'snapshot.json'))).toBe(true);
      expect(statSync(join(dir, 'journal.log')).size).toBe(0);
      const reopened = await reopen(store);
      expect(await reopened.currentVersion()).toBe(1);
    });

    it('cuts a torn record off the journal and opens with the data before it', async () => {
      let store = await openStore();
      const a = keyRecord();
      await store.commit(putKey(a));
      await closeStore(store);
      appendFileSync(join(dir, 'journal.log'), '1234abcd {"v":2,"ops":[{"op":"put"');
      store = await openStore();
      expect(await store.currentVersion()).toBe(1);
      expect((await store.getKey(a.id))?.id).toBe(a.id);
      const b = keyRecord();
      expect(await store.commit(putKey(b))).toBe(2);
      store = await reopen(store);
      expect((await store.scanKeys(0, 10)).map((k) => k.id)).toEqual([a.id, b.id]);
    });

    it('refuses to open on a damaged record in the middle of the journal', async () => {
      const store = await openStore();
      await store.commit(putKey(keyRecord()));
      await store.commit(putKey(keyRecord()));
      await closeStore(store);
      const file = join(dir, 'journal.log');
      const text = readFileSync(file, 'utf8');
      writeFileSync(file, text.replace('"v":1', '"v":7'));
      await expect(new EmbeddedStore({ path: dir, logger }).open()).rejects.toThrow(/refusing to load|damaged/);
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
  });
});

describe('group delete guard', () => {
  it('refuses a batch expecting an empty group once a key has joined it (regression: a delete racing a key write)', async () => {
    const { mkdtempSync: mk, rmSync: rm } = await import('node:fs');
    const { tmpdir: td } = await import('node:os');
    const { join: j } = await import('node:path');
    const pinoMod = (await import('pino')).default;
    const { EmbeddedStore } = await import('./embedded-store.js');
    const dir = mk(j(td(), 'keygate-group-guard-'));
    const store = new EmbeddedStore({ path: dir, logger: pinoMod({ level: 'silent' }) });
    await store.open();
    try {
      const now = new Date().toISOString();
      await store.commit({ ops: [{ op: 'put', entity: { type: 'group', value: { id: 'grp_1', name: 'g', description: '', createdAt: now, updatedAt: now } } }], audit: [] });
      const key = {
        id: 'key_1', workspaceId: 'w', name: 'k', description: '', groupId: 'grp_1', ownerId: null, type: 'workspace', environment: 'live',
        prefix: 'kg_live_abcd', enabled: true, permissions: [], permissionsLocked: false, ipAllowlist: [], eventAllowlist: [], eventDenylist: [],
        profileAttributeAllowlist: [], basicAuth: false, simpleAuth: { enabled: false, salt: null }, rateLimit: null, quota: null,
        createdAt: now, updatedAt: now, expiresAt: null, version: 1, secretHash: 'h1', retiredSecrets: [], seq: 0,
      } as const;
      await store.commit({ ops: [{ op: 'put', entity: { type: 'key', value: { ...key, permissions: [], ipAllowlist: [], eventAllowlist: [], eventDenylist: [], profileAttributeAllowlist: [], retiredSecrets: [], simpleAuth: { enabled: false, salt: null } } } }], audit: [] });
      await expect(store.commit({ ops: [{ op: 'delete', type: 'group', id: 'grp_1' }], audit: [], expectEmptyGroups: ['grp_1'] }))
        .rejects.toMatchObject({ code: 'GROUP_IN_USE' });
      expect(await store.getGroup('grp_1')).not.toBeNull();
    } finally {
      await store.close();
      rm(dir, { recursive: true, force: true });
    }
  });
});
