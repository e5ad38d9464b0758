import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { EmbeddedStore } from '../store/embedded/embedded-store.js';
import { RedisConnection } from '../store/redis/connection.js';
import { RedisStore } from '../store/redis/redis-store.js';
import type { KeyStore } from '../store/types.js';

/**
 * The store `store.driver` names, not yet opened, with its Redis connection (null when
 * embedded) for what else runs on it (the rate limiter). `serve` and the export and import
 * commands build it here alike.
 */
export function storeFromConfig(config: Config, logger: Logger, opts: { feedBlockMs?: number; activityPerKey?: number } = {}): { store: KeyStore; connection: RedisConnection | null } {
  if (config.store.driver === 'embedded') return { store: new EmbeddedStore({ path: config.store.path, logger, activityPerKey: opts.activityPerKey ?? config.keys.activityPerKey }), connection: null };
  const connection = new RedisConnection({
    ...(config.store.url !== undefined ? { url: config.store.url } : {}),
    ...(config.store.cluster !== undefined ? { cluster: config.store.cluster } : {}),
    keyPrefix: config.store.keyPrefix,
    logger,
    fastTimeoutMs: config.store.timeoutMs,
  });
  const store = new RedisStore({ connection, logger, ...(opts.feedBlockMs !== undefined ? { feedBlockMs: opts.feedBlockMs } : {}) });
  return { store, connection };
}
