import cluster from 'node:cluster';
import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import { createAdminServer } from './control-plane/admin-server.js';
import { DirectoryService } from './control-plane/directory-service.js';
import { KeyService } from './control-plane/key-service.js';
import { SigningKeyService } from './control-plane/signing-key-service.js';
import { storeKeySource } from './data-plane/key-resolver.js';
import { LocalRateLimiter } from './data-plane/rate-limiter.js';
import { PermissionCatalogue } from './domain/permissions.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { drainServer, drainState } from './runtime/drain.js';
import { createGatewayNode, listen } from './runtime/gateway-node.js';
import { startPrimary } from './runtime/primary.js';
import { onTermination, workerCount } from './runtime/process.js';
import { runWorker } from './runtime/worker.js';
import { EmbeddedStore } from './store/embedded/embedded-store.js';
import type { KeyStore } from './store/types.js';

const HEARTBEAT_MS = 5_000;

/** Everything the control plane runs on, built once here and handed down (no globals). */
export interface App {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: KeyStore;
  catalogue: PermissionCatalogue;
  keys: KeyService;
  directory: DirectoryService;
  signingKeys: SigningKeyService;
  /** Rate-limit and quota counters: the node's one shared set (workers ask the primary's). */
  limiter: LocalRateLimiter;
}

export async function buildApp(config: Config, logger: Logger): Promise<App> {
  if (config.store.driver !== 'embedded') {
    throw new Error('store.driver "redis" is not available in this version of keygate; use "embedded"');
  }
  const store = new EmbeddedStore({ path: config.store.path, logger });
  await store.open();
  const catalogue = new PermissionCatalogue(config.routes.map((r) => r.permission));
  const signingKeys = new SigningKeyService(store, config);
  await signingKeys.ensureActive();
  const limiter = new LocalRateLimiter();
  setInterval(() => limiter.prune(Date.now()), 60_000).unref();
  return {
    limiter,
    signingKeys,
    config,
    logger,
    metrics: new Metrics(),
    store,
    catalogue,
    keys: new KeyService({ store, config, catalogue }),
    directory: new DirectoryService(store, catalogue),
  };
}

/** `keygate serve`: open the store, start the ports, log the ready line, drain on SIGTERM. */
export async function serve(config: Config, logger: Logger): Promise<void> {
  if (cluster.isWorker) return runWorker(config, logger);
  const app = await buildApp(config, logger);
  if (workerCount(config) > 1) return startPrimary(app, workerCount(config));

  let ready = false;
  const adminDrain = drainState();
  const admin = createAdminServer({ ...app, ready: () => ready, drain: adminDrain });
  // In one process the store's change feed is synchronous, so the cache is never stale.
  const gateway = createGatewayNode({
    config,
    logger,
    metrics: app.metrics,
    source: storeKeySource(app.store),
    fresh: () => true,
    usageSink: (deltas) => app.store.recordUsage(deltas),
    limiter: app.limiter,
  });
  await gateway.setSigningKeys(await app.store.listSigningKeys());
  const unsubscribe = app.store.subscribe((changes) => {
    gateway.applyChanges(changes);
    if (changes.some((c) => c.kind === 'signing-key')) {
      void app.store.listSigningKeys().then((keys) => gateway.setSigningKeys(keys))
        .catch((err: unknown) => logger.error({ err }, 'could not load the new signing keys'));
    }
  });
  const adminUrl = await listen(admin, config.admin.listen.host, config.admin.listen.port);
  const gatewayUrl = await listen(gateway.server, config.gateway.listen.host, config.gateway.listen.port);

  const nodeId = `${hostname()}:${process.pid}`;
  const heartbeat = async (): Promise<void> => {
    try {
      await app.store.reportNode({ id: nodeId, role: 'gateway', appliedVersion: await app.store.currentVersion(), reportedAt: new Date().toISOString() });
    } catch (err) {
      app.metrics.storeErrors.inc({ operation: 'heartbeat' });
      logger.warn({ err }, 'node heartbeat failed');
    }
  };
  await heartbeat();
  const timer = setInterval(() => void heartbeat(), HEARTBEAT_MS);
  timer.unref();

  // Handlers go in before the ready line: whoever reads that line may signal at once, and a
  // signal that finds no handler kills the process without draining.
  onTermination(logger, config.gateway.requestTimeoutMs, async () => {
    ready = false;
    clearInterval(timer);
    // In-flight requests finish first; only then are usage counts flushed and the store closed.
    await Promise.all([drainServer(gateway.server, gateway.drain), drainServer(admin, adminDrain)]);
    unsubscribe();
    await gateway.close();
    await app.store.close();
  }, () => {
    gateway.server.closeAllConnections();
    admin.closeAllConnections();
  });
  ready = true;
  logger.info({ gateway: gatewayUrl, admin: adminUrl }, 'ready');
}
