import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRedis, startRedis, startTcpProxy, type RedisServer, type TcpProxy } from '../../../test/support/redis-server.js';
import { deleteKey, keyRecord, owner, putKey, T0, timeless, waitFor, withoutSeq, workspace } from '../../../test/support/store-contract/index.js';
import type { Change, NodeReport } from '../types.js';
import { RedisConnection } from './connection.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';

// What only the Redis store does: several nodes on one prefix, its feed's freshness, Redis faults.
// The behaviour every store shares is in the store contract (redis-store.contract.test.ts).

const logger = pino({ level: 'silent' });
const BLOCK_MS = 200;
/**
 * How stale an idle, healthy feed may look: Redis ends a blocking read on its timer tick (every
 * 100 ms at the default hz 10), so a read may come back up to 100 ms late, twice in a row.
 */
const IDLE_STALENESS_MS = BLOCK_MS + 2 * 100 + 100;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!requireRedis())('RedisStore', () => {
  let server: RedisServer;
  let admin: Redis;
  const stores: RedisStore[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true });
    admin.on('error', () => {});
    await admin.connect();
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.cleanup();
  });

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close().catch(() => undefined)));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    if (!server.running) await server.restart();
    await waitFor(() => admin.status === 'ready', 'the test client to reconnect');
  });

  const newPrefix = (): string => `store-test-${randomBytes(6).toString('hex')}:`;

  /** An opened store; stores opened with the same prefix are nodes sharing one keyspace. */
  async function openStore(prefix: string, over: Partial<RedisStoreOptions> & { url?: string } = {}): Promise<RedisStore> {
    const { url, ...rest } = over;
    const connection = new RedisConnection({ url: url ?? server.url, keyPrefix: prefix, logger, fastTimeoutMs: 1_000 });
    const store = new RedisStore({ connection, logger, feedBlockMs: BLOCK_MS, ...rest });
    stores.push(store);
    await store.open();
    return store;
  }

  describe('lookupKey', () => {
    it('finds a key by secret hash or id together with its owner', async () => {
      const store = await openStore(newPrefix());
      const own = owner();
      const rec = keyRecord({ ownerId: own.id });
      await store.commit({ ops: [{ op: 'put', entity: { type: 'owner', value: own } }], audit: [] });
      await store.commit(putKey(rec));
      for (const [by, value] of [['hash', rec.secretHash], ['id', rec.id]] as const) {
        const found = await store.lookupKey(by, value);
        expect(found, by).not.toBeNull();
        expect(withoutSeq(found!.record)).toEqual(withoutSeq(rec));
        expect(found!.record.seq).toBe(1);
        expect(found!.owner).toEqual(own);
      }
    });

    it('finds a key by a retired secret hash', async () => {
      const store = await openStore(newPrefix());
      const rec = keyRecord({ retiredSecrets: [{ hash: 'retired-hash', expiresAt: T0 }] });
      await store.commit(putKey(rec));
      expect((await store.lookupKey('hash', 'retired-hash'))?.record.id).toBe(rec.id);
    });

    it('gives a null owner for a key without one, and for a key whose owner is missing', async () => {
      const store = await openStore(newPrefix());
      const plain = keyRecord();
      const orphan = keyRecord({ ownerId: 'own_that_is_not_there' });
      await store.commit(putKey(plain));
      await store.commit(putKey(orphan));
      expect(await store.lookupKey('id', plain.id)).toMatchObject({ record: { id: plain.id }, owner: null });
      expect(await store.lookupKey('hash', orphan.secretHash)).toMatchObject({ record: { id: orphan.id, ownerId: 'own_that_is_not_there' }, owner: null });
    });

    it('returns null for an unknown hash or id, and after the key is deleted', async () => {
      const store = await openStore(newPrefix());
      const rec = keyRecord();
      expect(await store.lookupKey('hash', 'no-such-hash')).toBeNull();
      expect(await store.lookupKey('id', 'key_none')).toBeNull();
      await store.commit(putKey(rec));
      await store.commit(deleteKey(rec.id));
      expect(await store.lookupKey('hash', rec.secretHash)).toBeNull();
      expect(await store.lookupKey('id', rec.id)).toBeNull();
    });

    it('follows an owner update', async () => {
      const store = await openStore(newPrefix());
      const own = owner();
      const rec = keyRecord({ ownerId: own.id });
      await store.commit({ ops: [{ op: 'put', entity: { type: 'owner', value: own } }], audit: [] });
      await store.commit(putKey(rec));
      const disabled = { ...own, status: 'disabled' as const, version: 2 };
      await store.commit({ ops: [{ op: 'put', entity: { type: 'owner', value: disabled } }], audit: [] });
      expect((await store.lookupKey('id', rec.id))!.owner).toEqual(disabled);
    });

    it('does not see keys of another prefix', async () => {
      const a = await openStore(newPrefix());
      const b = await openStore(newPrefix());
      const rec = keyRecord();
      await a.commit(putKey(rec));
      expect(await b.lookupKey('id', rec.id)).toBeNull();
      expect(await b.lookupKey('hash', rec.secretHash)).toBeNull();
    });
  });

  describe('per-workspace key sets', () => {
    it('indexes keys written before the sets existed once, at open, so a workspace holding them is not deleted', async () => {
      const prefix = newPrefix();
      let store = await openStore(prefix);
      const ws = workspace();
      const kept = keyRecord({ workspaceId: ws.id });
      const gone = keyRecord({ workspaceId: ws.id });
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }], audit: [] });
      await store.commit(putKey(kept));
      await store.commit(putKey(gone));
      await store.commit(deleteKey(gone.id));
      // As an older version left it: no set, no marker.
      const base = `${prefix}{store}`;
      await admin.del(`${base}:w:${ws.id}`, `${base}:w-indexed`);
      await store.close();
      store = await openStore(prefix);
      expect(await store.workspaceHasKeys(ws.id)).toBe(true);
      expect(await admin.smembers(`${base}:w:${ws.id}`)).toEqual([kept.id]);
      expect(await admin.get(`${base}:w-indexed`)).toBe('1');
      await expect(store.commit({ ops: [{ op: 'delete', type: 'workspace', id: ws.id }], audit: [], expectEmptyWorkspaces: [ws.id] })).rejects.toMatchObject({ code: 'WORKSPACE_IN_USE' });
    });
  });

  describe('feed freshness', () => {
    it('is confirmed current right after open, and stays so while idle', async () => {
      const before = Date.now();
      const store = await openStore(newPrefix());
      expect(store.feedConfirmedAt()).toBeGreaterThanOrEqual(before);
      expect(store.feedConfirmedAt()).toBeLessThanOrEqual(Date.now());
      await sleep(BLOCK_MS * 3);
      expect(Date.now() - store.feedConfirmedAt()).toBeLessThanOrEqual(IDLE_STALENESS_MS);
    });

    it('goes stale once Redis is killed', async () => {
      const store = await openStore(newPrefix());
      await sleep(BLOCK_MS + 50);
      const killedAt = Date.now();
      await server.kill();
      await sleep(1_000);
      // Nothing is confirmed after the kill: the staleness keeps growing, well past an idle feed's.
      expect(store.feedConfirmedAt()).toBeLessThanOrEqual(killedAt);
      expect(Date.now() - store.feedConfirmedAt()).toBeGreaterThan(IDLE_STALENESS_MS + 400);
      expect(store.healthy()).toBe(true);
    });

    it('starts at version 0 with nothing applied', async () => {
      const store = await openStore(newPrefix());
      expect(store.appliedVersion()).toBe(0);
    });
  });

  describe('two nodes on one prefix', () => {
    it('follows the commits of another node: appliedVersion, subscribers and reads', async () => {
      const prefix = newPrefix();
      const writer = await openStore(prefix);
      const follower = await openStore(prefix);
      const heard: Change[] = [];
      follower.subscribe((changes) => heard.push(...changes));

      const rec = keyRecord();
      const startedAt = Date.now();
      await writer.commit(putKey(rec));
      await writer.commit(putKey({ ...rec, name: 'renamed', version: 2 }));
      await writer.commit(deleteKey(rec.id));
      await waitFor(() => follower.appliedVersion() === 3, 'version 3 on the follower');
      expect(timeless(heard)).toEqual([
        { version: 1, kind: 'key', id: rec.id, op: 'put' },
        { version: 2, kind: 'key', id: rec.id, op: 'put' },
        { version: 3, kind: 'key', id: rec.id, op: 'delete' },
      ]);
      for (const c of heard) {
        expect(c.at).toBeGreaterThanOrEqual(startedAt - 5);
        expect(c.at).toBeLessThanOrEqual(Date.now() + 5);
      }
      expect(await follower.currentVersion()).toBe(3);
      // The writer applies its own commits from the feed too, on its own read: it may be a
      // read behind the follower at this instant, never behind for long.
      await waitFor(() => writer.appliedVersion() === 3, 'version 3 on the writer');
    });

    it('a node opened later starts at the current version and hears only what comes after', async () => {
      const prefix = newPrefix();
      const writer = await openStore(prefix);
      await writer.commit(putKey(keyRecord()));
      await writer.commit(putKey(keyRecord()));
      const late = await openStore(prefix);
      expect(late.appliedVersion()).toBe(2);
      const heard: Change[] = [];
      late.subscribe((changes) => heard.push(...changes));
      const rec = keyRecord();
      await writer.commit(putKey(rec));
      await waitFor(() => late.appliedVersion() === 3, 'version 3');
      expect(timeless(heard)).toEqual([{ version: 3, kind: 'key', id: rec.id, op: 'put' }]);
    });

    it('a node that missed trimmed changes while cut off tells its reset listeners', async () => {
      const prefix = newPrefix();
      const writer = await openStore(prefix);
      const proxy = await startTcpProxy(server.port);
      proxies.push(proxy);
      const follower = await openStore(prefix, { url: proxy.url });
      let resets = 0;
      const heard: Change[] = [];
      follower.subscribe((changes) => heard.push(...changes), () => { resets++; });

      await writer.commit(putKey(keyRecord()));
      await waitFor(() => follower.appliedVersion() === 1, 'version 1');
      proxy.cut();
      await sleep(50);
      for (let i = 0; i < 4; i++) await writer.commit(putKey(keyRecord()));
      await admin.xtrim(`${prefix}{store}:feed`, 'MAXLEN', 1);
      proxy.restore();
      await waitFor(() => follower.appliedVersion() === 5, 'version 5', 5_000);
      expect(resets).toBe(1);
      expect(heard.map((c) => c.version)).toEqual([1, 5]);
    });
  });

  describe('changesSince', () => {
    it('returns null once the feed was trimmed past the version, and what is left after it', async () => {
      const prefix = newPrefix();
      const store = await openStore(prefix);
      for (let i = 0; i < 5; i++) await store.commit(putKey(keyRecord()));
      await admin.xtrim(`${prefix}{store}:feed`, 'MAXLEN', 2);
      expect(await store.changesSince(0)).toBeNull();
      expect(await store.changesSince(2)).toBeNull();
      expect((await store.changesSince(3))!.map((c) => c.version)).toEqual([4, 5]);
      await admin.xtrim(`${prefix}{store}:feed`, 'MAXLEN', 0);
      expect(await store.changesSince(0)).toBeNull();
      expect(await store.changesSince(4)).toBeNull();
      expect(await store.changesSince(5)).toEqual([]);
    });

    it('keeps only about feedLength entries', async () => {
      const prefix = newPrefix();
      const store = await openStore(prefix, { feedLength: 10 });
      for (let i = 0; i < 300; i++) await store.commit(putKey(keyRecord()));
      // MAXLEN ~ trims whole nodes of the stream: the length stays near the cap, not at 300.
      expect(await admin.xlen(`${prefix}{store}:feed`)).toBeLessThan(300);
      expect(await store.changesSince(0)).toBeNull();
      expect((await store.changesSince(299))!.map((c) => c.version)).toEqual([300]);
    });
  });

  describe('Redis down', () => {
    it('refuses admin writes and reads with STORE_UNAVAILABLE', async () => {
      const store = await openStore(newPrefix());
      await server.kill();
      await expect(store.commit(putKey(keyRecord()))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await expect(store.listWorkspaces()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await expect(store.lookupKey('id', 'key_x')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      await expect(store.reportNode({ id: 'n', role: 'gateway', appliedVersion: 0, reportedAt: new Date().toISOString() }))
        .rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    });

    it('writes again once Redis is back (with its data)', async () => {
      const durable = await startRedis({ appendonly: true, appendfsync: 'always' });
      try {
        const store = await openStore(newPrefix(), { url: durable.url });
        expect(await store.commit(putKey(keyRecord()))).toBe(1);
        await durable.kill();
        await expect(store.commit(putKey(keyRecord()))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
        await durable.restart();
        const deadline = Date.now() + 5_000;
        let version: number | null = null;
        while (version === null && Date.now() < deadline) {
          version = await store.commit(putKey(keyRecord())).catch(() => null);
          if (version === null) await sleep(100);
        }
        expect(version).toBe(2);
        await waitFor(() => store.appliedVersion() === 2, 'version 2 applied', 5_000);
      } finally {
        for (const s of stores.splice(0)) await s.close().catch(() => undefined);
        await durable.cleanup();
      }
    });
  });

  describe('a slow Redis', () => {
    it('gives admin reads by id (a key, a workspace) the admin bound, not the request path\'s store.timeoutMs (regression: a create behind a 260 ms stall answered 503)', async () => {
      const connection = new RedisConnection({ url: server.url, keyPrefix: newPrefix(), logger, fastTimeoutMs: 200 });
      const store = new RedisStore({ connection, logger, feedBlockMs: BLOCK_MS });
      stores.push(store);
      await store.open();
      const ws = workspace();
      const rec = keyRecord({ workspaceId: ws.id });
      await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }, { op: 'put', entity: { type: 'key', value: rec } }], audit: [] });
      server.pause();
      const resume = sleep(600).then(() => server.resume());
      try {
        const [gotWs, gotKey] = await Promise.all([store.getWorkspace(ws.id), store.getKey(rec.id)]);
        expect(gotWs?.id).toBe(ws.id);
        expect(gotKey?.id).toBe(rec.id);
      } finally {
        await resume;
      }
    });
  });

  describe('listNodes', () => {
    const report = (id: string, ageMs: number): NodeReport => ({
      id, instance: 'proc-1', role: 'gateway', appliedVersion: 3, reportedAt: new Date(Date.now() - ageMs).toISOString(),
    });

    it('leaves out reports older than nodeMaxAgeMs', async () => {
      const prefix = newPrefix();
      const store = await openStore(prefix, { nodeMaxAgeMs: 60_000 });
      await store.reportNode(report('node-fresh', 1_000));
      await store.reportNode(report('node-old', 61_000));
      await store.reportNode(report('node-edge', 59_000));
      expect((await store.listNodes()).map((n) => n.id)).toEqual(['node-edge', 'node-fresh']);
    });

    it('lists by default only reports of the last 15 s (three missed heartbeats), and deletes from Redis those older than a day (regression: a dead node stayed listed for a day)', async () => {
      const prefix = newPrefix();
      const store = await openStore(prefix);
      await store.reportNode(report('node-10s', 10_000));
      await store.reportNode(report('node-20s', 20_000));
      await store.reportNode(report('node-hour', 3_600_000));
      await store.reportNode(report('node-two-days', 48 * 3_600_000));
      expect((await store.listNodes()).map((n) => n.id)).toEqual(['node-10s']);
      // Only what is surely gone is deleted: a report just past the bound may be refreshed at this moment.
      expect((await admin.hkeys(`${prefix}{store}:nodes`)).sort()).toEqual(['node-10s', 'node-20s', 'node-hour']);
    });

    it('forgets a node at once on forgetNode, and only that node', async () => {
      const prefix = newPrefix();
      const store = await openStore(prefix);
      await store.reportNode(report('node-a', 0));
      await store.reportNode(report('node-b', 0));
      await store.forgetNode('node-a');
      await store.forgetNode('node-unknown');
      expect((await store.listNodes()).map((n) => n.id)).toEqual(['node-b']);
      expect(await admin.hkeys(`${prefix}{store}:nodes`)).toEqual(['node-b']);
    });

    it('shows one node\'s reports to every node on the prefix', async () => {
      const prefix = newPrefix();
      const a = await openStore(prefix);
      const b = await openStore(prefix);
      await a.reportNode(report('node-a', 0));
      await b.reportNode(report('node-b', 0));
      expect((await a.listNodes()).map((n) => n.id)).toEqual(['node-a', 'node-b']);
      expect(await b.listNodes()).toEqual(await a.listNodes());
    });
  });
});
