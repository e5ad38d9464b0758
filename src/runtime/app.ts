import type { Config } from '../config/schema.js';
import { ActivityService } from '../control-plane/activity-service.js';
import { DirectoryService } from '../control-plane/directory-service.js';
import { KeyHygiene } from '../control-plane/key-hygiene.js';
import { KeyService } from '../control-plane/key-service.js';
import { SigningKeyService } from '../control-plane/signing-key-service.js';
import { PermissionCatalogue } from '../domain/permissions.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { EmbeddedStore } from '../store/embedded/embedded-store.js';
import { LocalRateLimiter } from '../store/rate-limit/local.js';
import { RedisRateLimiter } from '../store/rate-limit/redis.js';
import type { CounterStore } from '../store/rate-limit/types.js';
import { RedisConnection } from '../store/redis/connection.js';
import { RedisStore } from '../store/redis/redis-store.js';
import type { KeyStore } from '../store/types.js';
import { freshnessBeatMs } from './process.js';
import { retryStartup, startupAdminServer } from './startup.js';

/** Everything the control plane runs on, built once here and handed down (no globals). */
export interface App {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: KeyStore;
  catalogue: PermissionCatalogue;
  keys: KeyService;
  directory: DirectoryService;
  activity: ActivityService;
  /** The minutely sweep: rotation-due gauge, inactivity expiry. Started by the process's roles. */
  hygiene: KeyHygiene;
  signingKeys: SigningKeyService;
  /**
   * Rate-limit and quota counters: in this process (embedded), or in Redis shared by every
   * node. Workers ask the primary's.
   */
  limiter: CounterStore;
  /** How many keygate processes share the limits (kept by the heartbeat; 1 when embedded). */
  instances: { count: number };
}

/** The store and the rate limiter the config asks for. */
function backend(config: Config, logger: Logger, metrics: Metrics, instances: { count: number }): { store: KeyStore; limiter: App['limiter'] } {
  if (config.store.driver === 'embedded') {
    return { store: new EmbeddedStore({ path: config.store.path, logger, activityPerKey: config.keys.activityPerKey }), limiter: new LocalRateLimiter() };
  }
  const connection = new RedisConnection({
    ...(config.store.url !== undefined ? { url: config.store.url } : {}),
    ...(config.store.cluster !== undefined ? { cluster: config.store.cluster } : {}),
    keyPrefix: config.store.keyPrefix,
    logger,
    fastTimeoutMs: config.store.timeoutMs,
  });
  const store = new RedisStore({ connection, logger, feedBlockMs: freshnessBeatMs(config) });
  const limiter = new RedisRateLimiter(connection, config.rateLimit.onStoreError, () => instances.count, () => metrics.rateLimitFallbacks.inc());
  return { store, limiter };
}

/**
 * The store opened. Redis still out of reach is tried again (backoff with jitter, each attempt
 * logged) for up to `store.startupTimeoutMs`, with a fresh connection each time; meanwhile the
 * admin port answers `/healthz` 200 and `/readyz` 503 "store not connected".
 */
async function openBackend(config: Config, logger: Logger, metrics: Metrics, instances: { count: number }): Promise<{ store: KeyStore; limiter: App['limiter'] }> {
  if (config.store.driver === 'embedded') {
    const opened = backend(config, logger, metrics, instances);
    await opened.store.open();
    return opened;
  }
  let waiting: { close(): Promise<void> } | null = null;
  // SIGTERM or SIGINT while waiting (a rollout giving up on this node): no further attempt,
  // the waiting admin port closed, exit 0. serve's own handlers take over once the store is open.
  const stopping = new AbortController();
  let exiting: Promise<never> | null = null;
  const stop = (signal: NodeJS.Signals): void => {
    if (exiting !== null) return;
    stopping.abort(new Error(`stopped by ${signal}`));
    logger.info({ signal }, 'stopped while waiting for the store');
    exiting = (async () => {
      await (waiting as { close(): Promise<void> } | null)?.close();
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    const opened = await retryStartup('connecting to Redis', async () => {
      const opened = backend(config, logger, metrics, instances);
      try {
        await opened.store.open();
        return opened;
      } catch (err) {
        await opened.store.close().catch(() => undefined);
        if (waiting === null && !stopping.signal.aborted) {
          waiting = await startupAdminServer(config.admin.listen.host, config.admin.listen.port).then((w) => {
            logger.info({ admin: w.url }, 'waiting for the store; the admin port answers /readyz 503 until it is connected');
            return w;
          }, (e: unknown) => {
            logger.warn({ err: { message: (e as Error).message } }, 'could not open the admin port while waiting for the store');
            return { close: async () => undefined };
          });
        }
        throw err;
      }
    }, { timeoutMs: config.store.startupTimeoutMs, logger, signal: stopping.signal }).catch((err: unknown) => {
      if (exiting !== null) return exiting;
      throw err;
    });
    // An attempt under way when the signal came may still have succeeded: the process exits all the same.
    if (exiting !== null) return await exiting;
    return opened;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    await (waiting as { close(): Promise<void> } | null)?.close();
  }
}

export async function buildApp(config: Config, logger: Logger): Promise<App> {
  const metrics = new Metrics();
  const instances = { count: 1 };
  const { store, limiter } = await openBackend(config, logger, metrics, instances);
  const catalogue = new PermissionCatalogue(config.routes.map((r) => r.permission));
  const signingKeys = new SigningKeyService(store, config);
  await signingKeys.ensureActive();
  setInterval(() => limiter.prune(Date.now()), 60_000).unref();
  const keys = new KeyService({ store, config, catalogue, logger });
  return {
    limiter,
    instances,
    signingKeys,
    config,
    logger,
    metrics,
    store,
    catalogue,
    keys,
    hygiene: new KeyHygiene({ store, keys, config, metrics, logger }),
    directory: new DirectoryService(store, catalogue),
    activity: new ActivityService(store, config),
  };
}
