import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  redisCommand,
  requireRedis,
  startRedis,
  startRedisCluster,
  startTcpProxy,
  type RedisClusterHandle,
  type RedisServer,
  type TcpProxy,
} from './redis-server.js';

// The helpers that start real Redis servers for the Redis store tests.

const clients: Array<Redis | Cluster> = [];

/** A client that fails commands at once while disconnected and retries the connection every 100 ms. */
function client(url: string, over: RedisOptions = {}): Redis {
  const c = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100, ...over });
  c.on('error', () => {}); // connection errors are expected in these tests
  clients.push(c);
  return c;
}

async function ready(c: Redis): Promise<void> {
  if (c.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client not ready (status ${c.status})`)), 5_000);
    c.once('ready', () => { clearTimeout(timer); resolve(); });
  });
}

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

describe.skipIf(!requireRedis())('test Redis servers', () => {
  describe('a standalone server', () => {
    let server: RedisServer;
    beforeAll(async () => { server = await startRedis(); });
    afterAll(async () => { await server?.cleanup(); });

    it('answers PING on its own port and URL', async () => {
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(server.pid).toBeGreaterThan(0);
      const c = client(server.url);
      await ready(c);
      expect(await c.ping()).toBe('PONG');
      expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
      expect(await c.config('GET', 'save')).toEqual(['save', '']);
      expect(await c.config('GET', 'dir')).toEqual(['dir', server.dir]);
    });

    it('hangs while paused and answers again once resumed', async () => {
      const c = client(server.url, { commandTimeout: 300 });
      await ready(c);
      server.pause();
      try {
        await expect(c.ping()).rejects.toThrow(/timed out/i);
      } finally {
        server.resume();
      }
      expect(await c.ping()).toBe('PONG');
    });
  });

  describe('an append-only server', () => {
    let server: RedisServer;
    beforeAll(async () => { server = await startRedis({ appendonly: true, appendfsync: 'always' }); });
    afterAll(async () => { await server?.cleanup(); });

    it('keeps its data across stop and restart on the same port and directory', async () => {
      const { port, dir } = server;
      const before = client(server.url);
      await ready(before);
      await before.set('survives-stop', 'yes');
      before.disconnect();

      await server.stop();
      expect(server.running).toBe(false);
      await server.restart();
      expect(server.running).toBe(true);
      expect([server.port, server.dir]).toEqual([port, dir]);

      const after = client(server.url);
      await ready(after);
      expect(await after.get('survives-stop')).toBe('yes');
    });

    it('comes back after a SIGKILL with every acknowledged write (appendfsync always)', async () => {
      const c = client(server.url);
      await ready(c);
      await c.set('survives-kill', '1');
      const oldPid = server.pid;
      c.disconnect();

      await server.kill();
      expect(server.running).toBe(false);
      await expect(redisCommand(server.port, ['PING'])).rejects.toThrow();
      await server.restart();
      expect(server.pid).not.toBe(oldPid);

      const again = client(server.url);
      await ready(again);
      expect(await again.get('survives-kill')).toBe('1');
      expect(await again.get('survives-stop')).toBe('yes');
    });
  });

  describe('a three-master cluster', () => {
    let cluster: RedisClusterHandle;
    beforeAll(async () => { cluster = await startRedisCluster(3); });
    afterAll(async () => { await cluster?.cleanup(); });

    it('reports cluster_state:ok on every node', async () => {
      expect(cluster.urls).toHaveLength(3);
      for (const node of cluster.nodes) {
        expect(await redisCommand(node.port, ['CLUSTER', 'INFO'])).toMatch(/^cluster_state:ok\r?$/m);
      }
    });

    it('serves keys from every master to a cluster client', async () => {
      const c = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
      c.on('error', () => {});
      clients.push(c);
      const keys = ['{a}x', '{b}x', '{c}x'];
      for (const key of keys) await c.set(key, `value of ${key}`);
      for (const key of keys) expect(await c.get(key)).toBe(`value of ${key}`);

      // The three hash tags fall in the three masters' slot ranges: one key on each node.
      const sizes = await Promise.all(cluster.nodes.map((n) => redisCommand(n.port, ['DBSIZE'])));
      expect(sizes).toEqual(['1', '1', '1']);
    });
  });

  describe('a TCP proxy in front of a server', () => {
    let server: RedisServer;
    let proxy: TcpProxy;
    beforeAll(async () => {
      server = await startRedis();
      proxy = await startTcpProxy(server.port);
    });
    afterAll(async () => {
      await proxy?.close();
      await server?.cleanup();
    });

    it('forwards, cuts only the proxied connection, and lets the client reconnect once restored', async () => {
      expect(proxy.url).toBe(`redis://127.0.0.1:${proxy.port}`);
      const proxied = client(proxy.url);
      const direct = client(server.url);
      await Promise.all([ready(proxied), ready(direct)]);
      await proxied.set('through-proxy', 'ok');
      expect(await direct.get('through-proxy')).toBe('ok');

      proxy.cut();
      await expect(proxied.get('through-proxy')).rejects.toThrow();
      await sleep(300); // several reconnect attempts, each dropped on arrival
      expect(proxied.status).not.toBe('ready');
      await expect(proxied.get('through-proxy')).rejects.toThrow();
      expect(await direct.ping()).toBe('PONG');

      proxy.restore();
      await ready(proxied);
      expect(await proxied.get('through-proxy')).toBe('ok');
    });
  });
});
