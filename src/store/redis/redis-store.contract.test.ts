import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe } from 'vitest';
import { requireRedis, startRedis, startRedisCluster, type RedisClusterHandle, type RedisServer } from '../../../test/support/redis-server.js';
import { storeContract } from '../../../test/support/store-contract/index.js';
import type { KeyStore } from '../types.js';
import { RedisConnection } from './connection.js';
import { RedisStore } from './redis-store.js';

const logger = pino({ level: 'silent' });

/** A factory over one Redis deployment: every created store gets a fresh key prefix, so it starts empty. */
function factoryFor(target: () => { url: string } | { cluster: string[] }) {
  const prefixes = new WeakMap<KeyStore, string>();
  const open = async (prefix: string): Promise<KeyStore> => {
    const connection = new RedisConnection({ ...target(), keyPrefix: prefix, logger, fastTimeoutMs: 2_000 });
    const store = new RedisStore({ connection, logger, feedBlockMs: 200 });
    await store.open();
    prefixes.set(store, prefix);
    return store;
  };
  return {
    create: () => open(`contract-${randomBytes(6).toString('hex')}:`),
    reopen: (store: KeyStore) => {
      const prefix = prefixes.get(store);
      if (prefix === undefined) throw new Error('reopen: not a store this factory made');
      return open(prefix);
    },
  };
}

describe.skipIf(!requireRedis())('Redis store', () => {
  let server: RedisServer;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server?.cleanup(); });
  storeContract('redis', factoryFor(() => ({ url: server.url })));
});

describe.skipIf(!requireRedis())('Redis Cluster store (3 masters)', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => { cluster = await startRedisCluster(3); });
  afterAll(async () => { await cluster?.cleanup(); });
  storeContract('redis cluster', factoryFor(() => ({ cluster: cluster.urls })));
});
