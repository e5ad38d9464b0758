import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import { createAdminServer } from './control-plane/admin-server.js';
import { DirectoryService } from './control-plane/directory-service.js';
import { KeyService } from './control-plane/key-service.js';
import { createGatewayServer } from './data-plane/gateway-server.js';
import { KeyResolver } from './data-plane/key-resolver.js';
import { compileRoutes } from './data-plane/pipeline.js';
import { UsageRecorder } from './data-plane/usage-recorder.js';
import { PermissionCatalogue } from './domain/permissions.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { EmbeddedStore } from './store/embedded/embedded-store.js';
import type { KeyStore } from './store/types.js';

const HEARTBEAT_MS = 5_000;

/** Everything the process runs on, built once here and handed down (no globals). */
export interface App {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: KeyStore;
  catalogue: PermissionCatalogue;
  keys: KeyService;
  directory: DirectoryService;
}

export async function buildApp(config: Config, logger: Logger): Promise<App> {
  if (config.store.driver !== 'embedded') {
    throw new Error('store.driver "redis" is not available in this version of keygate; use "embedded"');
  }
  const store = new EmbeddedStore({ path: config.store.path, logger });
  await store.open();
  const catalogue = new PermissionCatalogue(config.routes.map((r) => r.permission));
  return {
    config,
    logger,
    metrics: new Metrics(),
    store,
    catalogue,
    keys: new KeyService({ store, config, catalogue }),
    directory: new DirectoryService(store, catalogue),
  };
}

function listen(server: Server, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve(`http://${h}:${addr.port}`);
    });
  });
}

/** The data plane over an in-process store: the change feed arrives synchronously, so the cache is always fresh. */
function buildGateway(app: App) {
  const { config, metrics, store } = app;
  const resolver = new KeyResolver({
    source: store,
    pepper: config.secrets.pepper,
    fresh: () => true,
    stats: {
      hit: () => metrics.keyCacheHits.inc(),
      miss: () => metrics.keyCacheMisses.inc(),
      storeError: () => metrics.storeErrors.inc({ operation: 'key_lookup' }),
    },
  });
  const unsubscribe = store.subscribe((changes) => {
    resolver.apply(changes);
    const now = Date.now();
    for (const c of changes) metrics.propagationLag.observe(Math.max(0, now - c.at) / 1000);
  });
  const usage = new UsageRecorder((deltas) => store.recordUsage(deltas));
  usage.start();
  const { routes, upstreams } = compileRoutes({ config, resolver });
  const server = createGatewayServer({ config, routes, metrics, logger: app.logger, usage });
  return {
    server,
    async close(): Promise<void> {
      unsubscribe();
      await usage.stop();
      await Promise.all(upstreams.map((u) => u.close()));
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

/** `keygate serve`: open the store, start the ports, log the ready line, drain on SIGTERM. */
export async function serve(config: Config, logger: Logger): Promise<void> {
  const app = await buildApp(config, logger);
  let ready = false;
  const admin = createAdminServer({ ...app, ready: () => ready });
  const gateway = buildGateway(app);
  const adminUrl = await listen(admin, config.admin.listen.host, config.admin.listen.port);
  const gatewayUrl = await listen(gateway.server, config.gateway.listen.host, config.gateway.listen.port);

  const nodeId = `${hostname()}:${process.pid}`;
  const heartbeat = async (): Promise<void> => {
    try {
      await app.store.reportNode({ id: nodeId, role: 'admin', appliedVersion: await app.store.currentVersion(), reportedAt: new Date().toISOString() });
    } catch (err) {
      app.metrics.storeErrors.inc({ operation: 'heartbeat' });
      logger.warn({ err }, 'node heartbeat failed');
    }
  };
  await heartbeat();
  const timer = setInterval(() => void heartbeat(), HEARTBEAT_MS);
  timer.unref();

  ready = true;
  logger.info({ gateway: gatewayUrl, admin: adminUrl }, 'ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    ready = false;
    logger.info({ signal }, 'draining');
    clearInterval(timer);
    const force = setTimeout(() => {
      logger.warn('drain timed out; closing remaining connections');
      gateway.server.closeAllConnections();
      admin.closeAllConnections();
    }, config.gateway.requestTimeoutMs);
    force.unref();
    // In-flight requests finish first; only then are usage counts flushed and the store closed.
    Promise.all([closeServer(gateway.server), closeServer(admin)])
      .then(() => clearTimeout(force))
      .then(() => gateway.close())
      .then(() => app.store.close())
      .then(() => logger.info('stopped'))
      .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
      .finally(() => logger.flush(() => process.exit(0)));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
