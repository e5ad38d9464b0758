import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { audit, deleteKey, keyRecord, putKey, T0, timeless, workspace } from '../../../test/support/store-contract/index.js';
import type { Change, KeyStore } from '../types.js';
import { EmbeddedStore } from './embedded-store.js';
import { frame } from './journal.js';
import { describeProcess } from './lock-holder.js';

// What only the embedded store does: its files, lock, journal and snapshot. The behaviour every
// store shares is in the store contract (embedded-store.contract.test.ts).

const logger = pino({ level: 'silent' });
const hasProc = existsSync('/proc/self/stat');

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

    it('keeps the usage counts of 2 500 keys across a restart (written in chunks of 1 000)', async () => {
      let store = await openStore();
      const keys = Array.from({ length: 2_500 }, () => keyRecord());
      await store.commit({ ops: keys.map((k) => ({ op: 'put' as const, entity: { type: 'key' as const, value: k } })), audit: [] });
      await store.recordUsage(keys.map((k, i) => ({ keyId: k.id, byOutcome: { OK: i + 1 }, lastUsedAt: T0 })));
      store = await reopen(store);
      expect(readFileSync(join(dir, 'usage.json'), 'utf8').trimEnd().split('\n')).toHaveLength(3);
      expect(await store.getUsage(keys[0]!.id)).toEqual({ total: 1, byOutcome: { OK: 1 }, lastUsedAt: T0 });
      expect(await store.getUsage(keys[2_499]!.id)).toEqual({ total: 2_500, byOutcome: { OK: 2_500 }, lastUsedAt: T0 });
    });

    it('writes usage counts one write at a time, so overlapping flushes (timer and close) leave a whole file', async () => {
      let store = await openStore();
      const keys = Array.from({ length: 3_000 }, () => keyRecord());
      await store.commit({ ops: keys.map((k) => ({ op: 'put' as const, entity: { type: 'key' as const, value: k } })), audit: [] });
      const flush = (): Promise<void> => (store as unknown as { flushUsage(): Promise<void> }).flushUsage();
      const use = (some: typeof keys) => store.recordUsage(some.map((k) => ({ keyId: k.id, byOutcome: { OK: 1 }, lastUsedAt: T0 })));
      await use(keys.slice(0, 1_000));
      const first = flush();
      // The second write holds more keys than the first, so two writers on one file would clash.
      await use(keys.slice(1_000));
      await Promise.all([first, flush()]);
      // Before close() writes again: the file on disk holds the second write, whole.
      expect(readFileSync(join(dir, 'usage.json'), 'utf8').trimEnd().split('\n')).toHaveLength(3);
      store = await reopen(store);
      expect((await store.getUsage(keys[0]!.id)).total).toBe(1);
      expect((await store.getUsage(keys[2_999]!.id)).total).toBe(1);
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });

    it('reads usage counts written in the earlier one-record format', async () => {
      let store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      await closeStore(store);
      writeFileSync(join(dir, 'usage.json'), frame([[rec.id, { total: 7, byOutcome: { OK: 7 }, lastUsedAt: T0 }]]));
      store = await openStore();
      expect(await store.getUsage(rec.id)).toEqual({ total: 7, byOutcome: { OK: 7 }, lastUsedAt: T0 });
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
    it('writes nothing to the journal for a refused batch', async () => {
      const store = await openStore();
      const rec = keyRecord();
      await store.commit(putKey(rec));
      const journalBytes = statSync(join(dir, 'journal.log')).size;
      await expect(store.commit(putKey({ ...rec, name: 'changed' }, { expect: [{ type: 'key', id: rec.id, token: null }] }))).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      expect(statSync(join(dir, 'journal.log')).size).toBe(journalBytes);
    });
  });

  describe("lookupKey('hash')", () => {
    it('still finds current and retired hashes after a reopen and a compaction, and not deleted ones', async () => {
      let store = await openStore();
      const kept = keyRecord({ secretHash: 'hash-kept', retiredSecrets: [{ hash: 'hash-kept-old', expiresAt: T0 }] });
      const gone = keyRecord({ secretHash: 'hash-gone' });
      await store.commit(putKey(kept));
      await store.commit(putKey(gone));
      await store.commit(deleteKey(gone.id));
      store = await reopen(store);
      expect((await store.lookupKey('hash', 'hash-kept'))?.record.id).toBe(kept.id);
      expect((await store.lookupKey('hash', 'hash-kept-old'))?.record.id).toBe(kept.id);
      expect(await store.lookupKey('hash', 'hash-gone')).toBeNull();
      await store.compactNow();
      store = await reopen(store);
      expect((await store.lookupKey('hash', 'hash-kept-old'))?.record.id).toBe(kept.id);
      expect(await store.lookupKey('hash', 'hash-gone')).toBeNull();
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
    it('tells subscribers about each commit in its own call, before the commit returns', async () => {
      const store = await openStore();
      const seen: Change[][] = [];
      store.subscribe((changes) => seen.push([...changes]));
      const a = keyRecord();
      const ws = workspace();
      await store.commit(putKey(a));
      expect(seen.map(timeless)).toEqual([[{ version: 1, kind: 'key', id: a.id, op: 'put' }]]);
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }], audit: [] });
      await store.commit(deleteKey(a.id));
      expect(seen.map(timeless)).toEqual([
        [{ version: 1, kind: 'key', id: a.id, op: 'put' }],
        [{ version: 2, kind: 'workspace', id: ws.id, op: 'put' }],
        [{ version: 3, kind: 'key', id: a.id, op: 'delete' }],
      ]);
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

    /** A live process unrelated to the store, for a lock to name. */
    function sleeper(): ChildProcess {
      return spawn('sleep', ['60'], { stdio: 'ignore' });
    }

    it.skipIf(!hasProc)('takes over a lock whose pid now belongs to another live process (regression: a reused pid blocked start-up)', async () => {
      const first = await openStore();
      const rec = keyRecord();
      await first.commit(putKey(rec));
      const left = readFileSync(join(dir, 'store.lock'), 'utf8'); // as a kill -9 would leave it
      await closeStore(first);
      const other = sleeper();
      try {
        // The holder is gone and its pid now names a process started later (a restarted container).
        writeFileSync(join(dir, 'store.lock'), left.replace(/\d+/, String(other.pid)));
        const store = await openStore();
        expect((await store.getKey(rec.id))?.id).toBe(rec.id);
        expect(readFileSync(join(dir, 'store.lock'), 'utf8')).toBe(left);
      } finally {
        other.kill();
      }
    });

    it.skipIf(!hasProc)('takes over a lock written before the last boot, although its pid and start time name a live process', async () => {
      const other = sleeper();
      try {
        const holder = await describeProcess(other.pid!);
        expect(holder.startTime).toBeDefined();
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'store.lock'), JSON.stringify({ ...holder, bootId: 'a-boot-before-this-one' }));
        await openStore();
      } finally {
        other.kill();
      }
    });

    it.skipIf(!hasProc)('refuses a lock that names a live process by its pid, start time and boot id: the holder', async () => {
      const holder = sleeper();
      try {
        const lock = JSON.stringify(await describeProcess(holder.pid!));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'store.lock'), lock);
        const store = new EmbeddedStore({ path: dir, logger });
        await expect(store.open()).rejects.toThrow(`in use by process ${holder.pid}`);
        expect(readFileSync(join(dir, 'store.lock'), 'utf8')).toBe(lock);
      } finally {
        holder.kill();
      }
    });

    it('writes its pid, start time and boot id into the lock file', async () => {
      await openStore();
      const lock = JSON.parse(readFileSync(join(dir, 'store.lock'), 'utf8'));
      expect(lock.pid).toBe(process.pid);
      if (hasProc) {
        expect(lock.startTime).toMatch(/^\d+$/);
        expect(lock.bootId).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
      }
    });

    it('takes over an empty lock file (its text never reached the disk before a power loss)', async () => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'store.lock'), '');
      await openStore();
    });

    it('removes its lock file on close', async () => {
      const store = await openStore();
      expect(existsSync(join(dir, 'store.lock'))).toBe(true);
      await closeStore(store);
      expect(existsSync(join(dir, 'store.lock'))).toBe(false);
    });
  });

  describe('compaction and recovery', () => {
    it('pages the audit log across the audit file and the journal by the same positions, and keeps admin tokens', async () => {
      let store = await openStore();
      const ids: string[] = [];
      const put = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const entry = audit('key.update', i % 2 === 0 ? 'even' : 'odd');
          ids.push(entry.id);
          await store.commit({ ops: [], audit: [entry] });
        }
      };
      await put(4);
      const token = { id: 'adm_1', name: 'ci', scopes: ['keys:write'], workspaces: ['w1'], createdAt: T0, updatedAt: T0, createdBy: { type: 'admin' as const, name: 'ops' }, secretHash: 'h' };
      await store.commit({ ops: [{ op: 'put', entity: { type: 'admin-token', value: token } }], audit: [] });
      const before = await store.pageAudit({ limit: 3 });
      await store.compactNow();
      await put(3);
      store = await reopen(store);
      expect(await store.getAdminToken('adm_1')).toEqual(token);
      // Entries 0-3 are in the audit file now, 4-6 in the journal; a page spans both.
      const page = await store.pageAudit({ limit: 3, before: before.next! });
      expect(page.entries.map((e) => e.id)).toEqual([ids[0]]);
      const spanning = await store.pageAudit({ limit: 4, before: 6 });
      expect(spanning.entries.map((e) => e.id)).toEqual([ids[5], ids[4], ids[3], ids[2]]);
      const even = await store.pageAudit({ targetId: 'even', limit: 10 });
      expect(even.entries.map((e) => e.id)).toEqual([ids[6], ids[4], ids[2], ids[0]]);
      const evenOlder = await store.pageAudit({ targetId: 'even', limit: 2, before: 2 });
      expect(evenOlder.entries.map((e) => e.id)).toEqual([ids[2], ids[0]]);
    });

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
      expect((await store.lookupKey('hash', 'hash-a-old'))?.record.id).toBe(a.id);
      expect((await store.listAudit({ limit: 10 })).map((e) => e.target.id)).toEqual([b.id, a.id]);
    });

    it('writes the snapshot in chunks and reads 2 500 keys back in creation order with every index', async () => {
      let store = await openStore();
      const ws = workspace('w-big');
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }], audit: [] });
      const keys = Array.from({ length: 2_500 }, (_, i) => keyRecord({ name: `k${i}`, groupId: i % 2 === 0 ? 'grp_even' : null, ipAllowlist: ['10.0.0.0/8'] }));
      for (let i = 0; i < keys.length; i += 500) {
        await store.commit({ ops: keys.slice(i, i + 500).map((k) => ({ op: 'put' as const, entity: { type: 'key' as const, value: k } })), audit: [] });
      }
      const before = await store.scanKeys(0, 3_000);
      await store.compactNow();
      const lines = readFileSync(join(dir, 'snapshot.json'), 'utf8').trimEnd().split('\n');
      // A header, the workspace, three chunks of keys (1 000, 1 000, 500), the trailer.
      expect(lines).toHaveLength(6);
      expect(JSON.parse(lines[5]!.slice(9))).toEqual({ end: 5 });
      store = await reopen(store);
      expect(await store.currentVersion()).toBe(6);
      expect(await store.scanKeys(0, 3_000)).toEqual(before);
      expect((await store.keyIdsInGroup('grp_even')).length).toBe(1_250);
      expect((await store.lookupKey('hash', keys[2_499]!.secretHash))?.record.name).toBe('k2499');
    });

    it('refuses to open on a snapshot cut off before its trailer', async () => {
      const store = await openStore();
      await store.commit(putKey(keyRecord()));
      await store.compactNow();
      await closeStore(store);
      const text = readFileSync(join(dir, 'snapshot.json'), 'utf8');
      const lines = text.trimEnd().split('\n');
      writeFileSync(join(dir, 'snapshot.json'), `${lines.slice(0, -1).join('\n')}\n`);
      await expect(openStore()).rejects.toThrow(/cut off before its end/);
    });

    it('opens a snapshot in the earlier one-record format', async () => {
      const a = keyRecord({ groupId: 'grp_1' });
      const ws = workspace('w-old');
      const old = { version: 3, workspaces: [ws], keys: [{ ...a, seq: 1 }], groups: [], owners: [], auditBytes: 0, signingKeys: [] };
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'snapshot.json'), frame(old));
      const store = await openStore();
      expect(await store.currentVersion()).toBe(3);
      expect(await store.listWorkspaces()).toEqual([ws]);
      expect((await store.getKey(a.id))?.name).toBe(a.name);
      expect(await store.keyIdsInGroup('grp_1')).toEqual([a.id]);
      await store.commit(putKey(keyRecord()));
      expect(await store.currentVersion()).toBe(4);
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
  });
});
