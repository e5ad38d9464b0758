import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRedis, startRedis, startTcpProxy, type RedisServer, type TcpProxy } from '../../../test/support/redis-server.js';
import { waitFor } from '../../../test/support/store-contract/index.js';
import type { Change, EntityType } from '../types.js';
import { ChangeFeedReader, parseFeedEntry } from './change-feed.js';
import { RedisConnection } from './connection.js';

const logger = pino({ level: 'silent' });
const BLOCK_MS = 200;
/**
 * How stale an idle, healthy feed may look: Redis ends a blocking read on its timer tick (every
 * 100 ms at the default hz 10), so a read may come back up to 100 ms late, twice in a row.
 */
const IDLE_STALENESS_MS = BLOCK_MS + 2 * 100 + 100;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('parseFeedEntry', () => {
  it('reads the version from the entry id and one change per [kind, id, op] with the commit time', () => {
    const c = JSON.stringify([['key', 'key_1', 'put'], ['group', 'grp_1', 'delete']]);
    expect(parseFeedEntry('12-1', ['at', '1700000000123', 'c', c, 'h', 'h12', 'p', 'h11'])).toEqual({
      version: 12,
      head: 'h12',
      prev: 'h11',
      changes: [
        { version: 12, kind: 'key', id: 'key_1', op: 'put', at: 1700000000123 },
        { version: 12, kind: 'group', id: 'grp_1', op: 'delete', at: 1700000000123 },
      ],
    });
  });

  it('reads the fields in any order', () => {
    const c = JSON.stringify([['owner', 'own_1', 'put']]);
    expect(parseFeedEntry('3-1', ['p', '', 'h', 'h3', 'c', c, 'at', '5'])).toEqual({
      version: 3,
      head: 'h3',
      prev: '',
      changes: [{ version: 3, kind: 'owner', id: 'own_1', op: 'put', at: 5 }],
    });
  });

  it('gives an entry without changes an empty list, a missing commit time 0 and missing commit ids null', () => {
    expect(parseFeedEntry('7-1', [])).toEqual({ version: 7, head: null, prev: null, changes: [] });
    expect(parseFeedEntry('8-1', ['c', JSON.stringify([['workspace', 'ws', 'put']])]).changes[0]!.at).toBe(0);
  });

  it('handles versions past 2^32', () => {
    expect(parseFeedEntry('5000000000-1', ['at', '1', 'c', '[]']).version).toBe(5_000_000_000);
  });
});

describe.skipIf(!requireRedis())('ChangeFeedReader', () => {
  let server: RedisServer;
  let writer: Redis;
  const connections: RedisConnection[] = [];
  const readers: ChangeFeedReader[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    server = await startRedis({ appendonly: true, appendfsync: 'always' });
    writer = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true });
    writer.on('error', () => {});
    await writer.connect();
  });

  afterAll(async () => {
    writer?.disconnect();
    await server?.cleanup();
  });

  afterEach(async () => {
    for (const reader of readers.splice(0)) await reader.stop();
    await Promise.all(connections.splice(0).map((c) => c.close()));
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    if (!server.running) await server.restart();
    await writerReady();
  });

  async function writerReady(): Promise<void> {
    await waitFor(() => writer.status === 'ready', 'the test writer to reconnect');
  }

  /** A fresh stream key, so tests sharing the server never see each other's entries. */
  const feedKey = (): string => `feed-test:${randomBytes(6).toString('hex')}:{store}:feed`;

  /** The store's version counter beside a feed stream (`<base>:feed`, `<base>:version`). */
  const versionKeyOf = (key: string): string => key.replace(/:feed$/, ':version');

  const headKeyOf = (key: string): string => key.replace(/:feed$/, ':head');

  /**
   * Commits one entry as the store's commit script does: the version counter, the last commit
   * id, and the stream entry naming its own id and the one before.
   */
  async function commitOn(client: Redis, key: string, version: number, changes: Array<[EntityType, string, 'put' | 'delete']>, at = Date.now()): Promise<void> {
    const prev = (await client.get(headKeyOf(key))) ?? '';
    const head = randomBytes(6).toString('hex');
    await client.multi()
      .set(versionKeyOf(key), String(version))
      .set(headKeyOf(key), head)
      .xadd(key, `${version}-1`, 'at', String(at), 'c', JSON.stringify(changes), 'h', head, 'p', prev)
      .exec();
  }

  const xadd = (key: string, version: number, changes: Array<[EntityType, string, 'put' | 'delete']>, at = Date.now()): Promise<void> =>
    commitOn(writer, key, version, changes, at);

  async function addVersions(key: string, from: number, to: number): Promise<void> {
    for (let v = from; v <= to; v++) await xadd(key, v, [['key', `key_${v}`, 'put']]);
  }

  /** A client that fails at once while disconnected and reconnects every 100 ms. */
  async function client(url: string): Promise<Redis> {
    const c = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100, lazyConnect: true });
    c.on('error', () => {});
    await c.connect();
    return c;
  }

  interface Recorded {
    reader: ChangeFeedReader;
    changes: Change[];
    /** Every delivered batch and reset, in order. */
    log: Array<number[] | 'reset'>;
    errors: unknown[];
  }

  async function startReader(key: string, startVersion = 0, opts: { url?: string; startedAt?: number; blockMs?: number } = {}): Promise<Recorded> {
    const conn = new RedisConnection({ url: opts.url ?? server.url, keyPrefix: 'feed-test:', logger });
    connections.push(conn);
    const rec: Recorded = { reader: null as unknown as ChangeFeedReader, changes: [], log: [], errors: [] };
    rec.reader = new ChangeFeedReader(conn, key, startVersion, opts.startedAt ?? Date.now(), {
      changes: (changes) => {
        rec.changes.push(...changes);
        rec.log.push([...new Set(changes.map((c) => c.version))]);
      },
      reset: () => { rec.log.push('reset'); },
      error: (err) => { rec.errors.push(err); },
    }, logger, opts.blockMs ?? BLOCK_MS);
    readers.push(rec.reader);
    await rec.reader.start();
    return rec;
  }

  const versions = (changes: readonly Change[]): number[] => changes.map((c) => c.version);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('delivers waiting and new entries in version order, each once, and appliedVersion follows', async () => {
    const key = feedKey();
    await xadd(key, 1, [['key', 'key_a', 'put']], 1111);
    await xadd(key, 2, [['group', 'grp_a', 'put'], ['key', 'key_a', 'delete']], 2222);
    const r = await startReader(key);
    await waitFor(() => r.reader.appliedVersion === 2, 'versions 1 and 2');
    expect(r.changes).toEqual([
      { version: 1, kind: 'key', id: 'key_a', op: 'put', at: 1111 },
      { version: 2, kind: 'group', id: 'grp_a', op: 'put', at: 2222 },
      { version: 2, kind: 'key', id: 'key_a', op: 'delete', at: 2222 },
    ]);

    await addVersions(key, 3, 6);
    await waitFor(() => r.reader.appliedVersion === 6, 'versions 3 to 6');
    await sleep(BLOCK_MS);
    expect(versions(r.changes)).toEqual([1, 2, 2, 3, 4, 5, 6]);
    expect(r.log).not.toContain('reset');
    expect(r.errors).toEqual([]);
  });

  it('starts after the version it is given, skipping what that version already covers', async () => {
    const key = feedKey();
    await addVersions(key, 1, 5);
    const r = await startReader(key, 3);
    expect(r.reader.appliedVersion).toBe(3);
    await waitFor(() => r.reader.appliedVersion === 5, 'versions 4 and 5');
    expect(versions(r.changes)).toEqual([4, 5]);
    expect(r.log).not.toContain('reset');
  });

  it('reports the start instant as confirmed until its first read answers', async () => {
    const key = feedKey();
    const r = await startReader(key, 0, { startedAt: 12345 });
    // The first blocking read has not timed out yet.
    expect(r.reader.confirmedAt).toBe(12345);
  });

  it('advances confirmedAt while the feed is idle, staying within about blockMs of now', async () => {
    const key = feedKey();
    const r = await startReader(key);
    await sleep(BLOCK_MS * 2 + 50);
    const first = r.reader.confirmedAt;
    expect(Date.now() - first).toBeLessThanOrEqual(IDLE_STALENESS_MS);
    await sleep(BLOCK_MS * 2);
    const second = r.reader.confirmedAt;
    expect(second).toBeGreaterThan(first);
    expect(second).toBeLessThanOrEqual(Date.now());
    expect(Date.now() - second).toBeLessThanOrEqual(IDLE_STALENESS_MS);
  });

  it('never confirms an instant after a change it has not applied', async () => {
    const key = feedKey();
    const r = await startReader(key);
    for (let v = 1; v <= 20; v++) {
      const committedAt = Date.now();
      await xadd(key, v, [['key', `key_${v}`, 'put']], committedAt);
      // Whenever confirmedAt has passed the commit, the change must already be applied.
      const deadline = Date.now() + 2_000;
      while (r.reader.appliedVersion < v) {
        expect(r.reader.confirmedAt).toBeLessThanOrEqual(committedAt);
        if (Date.now() > deadline) throw new Error(`version ${v} was not delivered`);
        await sleep(2);
      }
      if (v % 5 === 0) await sleep(BLOCK_MS + 50); // let some reads time out idle in between
    }
  });

  it('does not confirm a backlog larger than one read as applied before all of it is', async () => {
    const key = feedKey();
    // More entries than one read returns (1000), all committed before the reader starts.
    const pipeline = writer.pipeline();
    for (let v = 1; v <= 1_500; v++) pipeline.xadd(key, `${v}-1`, 'at', '1', 'c', JSON.stringify([['key', `key_${v}`, 'put']]));
    pipeline.set(versionKeyOf(key), '1500');
    await pipeline.exec();
    const allCommittedBy = Date.now();
    await sleep(5);

    const seen: Array<{ applied: number; confirmedAt: number }> = [];
    const conn = new RedisConnection({ url: server.url, keyPrefix: 'feed-test:', logger });
    connections.push(conn);
    const reader: ChangeFeedReader = new ChangeFeedReader(conn, key, 0, 0, {
      // Observe the reader's state right after each batch is handed over and the reader moved on.
      changes: () => { queueMicrotask(() => seen.push({ applied: reader.appliedVersion, confirmedAt: reader.confirmedAt })); },
      reset: () => {},
      error: () => {},
    }, logger, BLOCK_MS);
    readers.push(reader);
    await reader.start();
    await waitFor(() => reader.appliedVersion === 1_500, 'the whole backlog');
    await sleep(10);

    // While only part of the backlog is applied, confirmedAt must not claim a time after it was all committed.
    for (const s of seen) {
      if (s.applied < 1_500) expect(s.confirmedAt, `confirmedAt with ${s.applied} of 1500 applied`).toBeLessThan(allCommittedBy);
    }
  });

  it('stops advancing confirmedAt while Redis is down', async () => {
    const key = feedKey();
    const r = await startReader(key);
    await sleep(BLOCK_MS + 100);
    await server.kill();
    await waitFor(() => r.errors.length > 0, 'a failed read');
    const frozen = r.reader.confirmedAt;
    await sleep(BLOCK_MS * 3);
    expect(r.reader.confirmedAt).toBe(frozen);
    expect(Date.now() - frozen).toBeGreaterThanOrEqual(BLOCK_MS * 3);
  });

  it('after Redis restarts, resumes from the last applied version without losing a change', async () => {
    const key = feedKey();
    const r = await startReader(key);
    await addVersions(key, 1, 3);
    await waitFor(() => r.reader.appliedVersion === 3, 'versions 1 to 3');
    await server.kill();
    await waitFor(() => r.errors.length > 0, 'a failed read');
    await server.restart();
    await writerReady();
    await addVersions(key, 4, 6);
    await waitFor(() => r.reader.appliedVersion === 6, 'versions 4 to 6', 5_000);
    await sleep(BLOCK_MS);
    expect(versions(r.changes)).toEqual(range(1, 6));
    expect(r.log).not.toContain('reset');
    // Confirmed again once reads succeed.
    await sleep(BLOCK_MS + 100);
    expect(Date.now() - r.reader.confirmedAt).toBeLessThanOrEqual(IDLE_STALENESS_MS);
  });

  it('delivers every entry written while its connection was cut, once restored', async () => {
    const key = feedKey();
    const proxy = await startTcpProxy(server.port);
    proxies.push(proxy);
    const r = await startReader(key, 0, { url: proxy.url });
    await addVersions(key, 1, 2);
    await waitFor(() => r.reader.appliedVersion === 2, 'versions 1 and 2');

    proxy.cut();
    await waitFor(() => r.errors.length > 0, 'a failed read');
    const frozen = r.reader.confirmedAt;
    await addVersions(key, 3, 12);
    await sleep(BLOCK_MS * 2);
    expect(r.reader.appliedVersion).toBe(2);
    expect(r.reader.confirmedAt).toBe(frozen);

    proxy.restore();
    await waitFor(() => r.reader.appliedVersion === 12, 'versions 3 to 12', 5_000);
    await sleep(BLOCK_MS);
    expect(versions(r.changes)).toEqual(range(1, 12));
    expect(r.changes.map((c) => c.id)).toEqual(range(1, 12).map((v) => `key_${v}`));
    expect(r.log).not.toContain('reset');
    expect(r.reader.confirmedAt).toBeGreaterThan(frozen);
  });

  it('on a gap (the stream trimmed past the applied version) calls reset once, then delivers', async () => {
    const key = feedKey();
    await addVersions(key, 1, 6);
    await writer.xtrim(key, 'MAXLEN', 2);
    const r = await startReader(key, 2);
    await waitFor(() => r.reader.appliedVersion === 6, 'versions 5 and 6');
    await addVersions(key, 7, 7);
    await waitFor(() => r.reader.appliedVersion === 7, 'version 7');
    await sleep(BLOCK_MS);
    expect(r.log.filter((e) => e === 'reset')).toHaveLength(1);
    expect(r.log[0]).toBe('reset');
    expect(versions(r.changes)).toEqual([5, 6, 7]);
  });

  it('delivers the changes before a gap ahead of the reset, and the ones after it behind', async () => {
    const key = feedKey();
    // Versions 1, 2, then a hole (3 and 4 never reach this reader), then 5 and 6, in one read.
    for (const v of [1, 2, 5, 6]) await xadd(key, v, [['key', `key_${v}`, 'put']]);
    const r = await startReader(key, 0);
    await waitFor(() => r.reader.appliedVersion === 6, 'version 6');
    expect(r.log).toEqual([[1, 2], 'reset', [5, 6]]);
  });

  describe('a Redis that lost its data (no persistence) and numbers versions from 1 again', () => {
    let volatile: RedisServer;
    let direct: Redis;

    beforeAll(async () => {
      volatile = await startRedis();
      direct = await client(volatile.url);
    });
    afterAll(async () => {
      direct?.disconnect();
      await volatile?.cleanup();
    });
    afterEach(async () => {
      for (const reader of readers.splice(0)) await reader.stop();
      if (!volatile.running) await volatile.restart();
      await waitFor(() => direct.status === 'ready', 'the test client to reconnect');
    });

    async function loseData(r: Recorded): Promise<void> {
      await volatile.kill();
      await waitFor(() => r.errors.length > 0, 'a failed read');
      await volatile.restart();
      await waitFor(() => direct.status === 'ready', 'the test client to reconnect');
    }

    it('resets once a new commit shows the version below the applied one', async () => {
      const key = feedKey();
      for (let v = 1; v <= 3; v++) await commitOn(direct, key, v, [['key', `old_${v}`, 'put']]);
      const r = await startReader(key, 0, { url: volatile.url });
      await waitFor(() => r.reader.appliedVersion === 3, 'versions 1 to 3');

      await loseData(r);
      await commitOn(direct, key, 1, [['key', 'new_1', 'put']]);
      await waitFor(() => r.log.includes('reset'), 'a reset', 2_000);
      // Caches are dropped, and what comes next is delivered.
      await commitOn(direct, key, 2, [['key', 'new_2', 'put']]);
      await waitFor(() => r.changes.some((c) => c.id === 'new_2'), 'the change after the reset', 2_000);
      expect(r.log.filter((e) => e === 'reset')).toHaveLength(1);
      expect(r.reader.appliedVersion).toBe(2);
    });

    it('resets while idle: an empty store is behind the applied version too', async () => {
      const key = feedKey();
      for (let v = 1; v <= 3; v++) await commitOn(direct, key, v, [['key', `old_${v}`, 'put']]);
      const r = await startReader(key, 0, { url: volatile.url });
      await waitFor(() => r.reader.appliedVersion === 3, 'versions 1 to 3');
      await loseData(r);
      await waitFor(() => r.log.includes('reset'), 'a reset', 2_000);
      expect(r.reader.appliedVersion).toBe(0);
    });

    it('resets even when the new versions passed the applied one before the reader got back', async () => {
      const key = feedKey();
      for (let v = 1; v <= 3; v++) await commitOn(direct, key, v, [['key', `old_${v}`, 'put']]);
      const proxy = await startTcpProxy(volatile.port);
      proxies.push(proxy);
      const r = await startReader(key, 0, { url: proxy.url });
      await waitFor(() => r.reader.appliedVersion === 3, 'versions 1 to 3');

      // The reader is cut off while Redis loses its data and the store commits five new versions.
      proxy.cut();
      await loseData(r);
      for (let v = 1; v <= 5; v++) await commitOn(direct, key, v, [['key', `new_${v}`, 'put']]);
      proxy.restore();
      await waitFor(() => r.reader.appliedVersion === 5, 'version 5', 5_000);
      await sleep(BLOCK_MS * 2);

      // new_1 to new_3 were committed after the loss; the reader must deliver them or drop every cache.
      const missed = ['new_1', 'new_2', 'new_3'].filter((id) => !r.changes.some((c) => c.id === id));
      expect(missed.length === 0 || r.log.includes('reset'), `missed ${missed.join(', ')} without a reset; log ${JSON.stringify(r.log)}`).toBe(true);
    });
  });

  it('stop() ends the loop promptly, in the middle of a blocking read', async () => {
    const key = feedKey();
    const r = await startReader(key, 0, { blockMs: 5_000 });
    await sleep(100);
    const started = Date.now();
    await r.reader.stop();
    expect(Date.now() - started).toBeLessThan(200);
    await addVersions(key, 1, 1);
    await sleep(300);
    expect(r.changes).toEqual([]);
    expect(r.errors).toEqual([]);
  });

  it('stop() ends the loop promptly while Redis is down', async () => {
    const key = feedKey();
    const r = await startReader(key);
    await server.kill();
    await waitFor(() => r.errors.length > 0, 'a failed read');
    const started = Date.now();
    await r.reader.stop();
    expect(Date.now() - started).toBeLessThan(700);
  });
});
