import type { Config } from '../config/schema.js';
import { ActivityService } from '../control-plane/activity-service.js';
import { AdminTokenService } from '../control-plane/admin-token-service.js';
import { DirectoryService } from '../control-plane/directory-service.js';
import { KeyHygiene } from '../control-plane/key-hygiene.js';
import { KeyService } from '../control-plane/key-service.js';
import { SigningKeyService } from '../control-plane/signing-key-service.js';
import { PermissionCatalogue } from '../domain/permissions.js';
import type { Logger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { LocalRateLimiter } from '../store/rate-limit/local.js';
import { RedisRateLimiter } from '../store/rate-limit/redis.js';
import type { CounterStore } from '../store/rate-limit/types.js';
import type { KeyStore } from '../store/types.js';
import { createStatusServer, type StatusServer } from '../observability/status-server.js';
import { listen } from '../http/listen.js';
import { freshnessBeatMs } from './process.js';
import { Readiness } from './readiness.js';
import { retryStartup, startupAdminServer } from './startup.js';
import { storeFromConfig } from './store-factory.js';

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
  adminTokens: AdminTokenService;
  signingKeys: SigningKeyService;
  /**
   * Rate-limit and quota counters: in this process (embedded), or in Redis shared by every
   * node. Workers ask the primary's.
   */
  limiter: CounterStore;
  /** How many keygate processes share the limits (kept by the heartbeat; 1 when embedded). */
  instances: { count: number };
  /** `/readyz` on both ports: the phase the runtime sets, and the store's freshness. */
  readiness: Readiness;
  /** This process's metrics as Prometheus text (a cluster primary serves its workers' summed with them instead). */
  metricsText: () => Promise<string>;
  /** The status listener (`status.enabled`), open from before the store opens until the process ends. */
  status: StatusServer | null;
  statusUrl: string | null;
}

/** The store and the rate limiter the config asks for. */
function backend(config: Config, logger: Logger, metrics: Metrics, instances: { count: number }): { store: KeyStore; limiter: App['limiter'] } {
  const { store, connection } = storeFromConfig(config, logger, { feedBlockMs: freshnessBeatMs(config), activityPerKey: config.keys.activityPerKey });
  if (connection === null) return { store, limiter: new LocalRateLimiter() };
  metrics.probes.breakers.set('requests', () => connection.breaker.open);
  metrics.probes.breakers.set('admin', () => connection.slowBreaker.open);
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

/**
 * The status port first, so probes get their answer (alive, not ready: store not loaded or not
 * connected) while the store opens; then the store and everything on it.
 */
export async function buildApp(config: Config, logger: Logger): Promise<App> {
  const metrics = new Metrics();
  metrics.maxStaleness.set(config.propagation.maxStalenessMs / 1000);
  const instances = { count: 1 };
  const readiness = new Readiness(config.store.driver, config.propagation.maxStalenessMs);
  const metricsText = async (): Promise<string> => {
    if (readiness.store !== null) metrics.storeVersion.set(readiness.store.appliedVersion());
    return metrics.registry.metrics();
  };
  const status = config.status.enabled ? createStatusServer({ notReady: () => readiness.reason(), metricsText }, logger) : null;
  let statusUrl: string | null = null;
  let opened: { store: KeyStore; limiter: App['limiter'] };
  try {
    if (status) {
      statusUrl = await listen(status.server, config.status.listen.host, config.status.listen.port);
      logger.info({ status: statusUrl }, 'status port listening: /healthz, /readyz, /metrics');
    }
    opened = await openBackend(config, logger, metrics, instances);
  } catch (err) {
    await status?.close();
    throw err;
  }
  const { store, limiter } = opened;
  readiness.store = store;
  const catalogue = new PermissionCatalogue(config.routes.map((r) => r.permission));
  const signingKeys = new SigningKeyService(store, config);
  await signingKeys.ensureActive();
  setInterval(() => limiter.prune(Date.now()), 60_000).unref();
  const keys = new KeyService({ store, config, catalogue, logger });
  return {
    limiter,
    instances,
    readiness,
    metricsText,
    status,
    statusUrl,
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
    adminTokens: new AdminTokenService(store, config),
  };
}
