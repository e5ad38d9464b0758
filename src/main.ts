import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import { createAdminServer } from './control-plane/admin-server.js';
import { DirectoryService } from './control-plane/directory-service.js';
import { KeyService } from './control-plane/key-service.js';
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

/** `keygate serve`: open the store, start the ports, log the ready line, drain on SIGTERM. */
export async function serve(config: Config, logger: Logger): Promise<void> {
  const app = await buildApp(config, logger);
  let ready = false;
  const admin = createAdminServer({ ...app, ready: () => ready });
  const adminUrl = await listen(admin, config.admin.listen.host, config.admin.listen.port);

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
  // The gateway port arrives with the data plane; until then nothing pretends to proxy.
  logger.info({ gateway: null, admin: adminUrl }, 'ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    ready = false;
    logger.info({ signal }, 'draining');
    clearInterval(timer);
    const force = setTimeout(() => {
      logger.warn('drain timed out; closing remaining connections');
      admin.closeAllConnections();
    }, config.gateway.requestTimeoutMs);
    force.unref();
    admin.close(() => {
      clearTimeout(force);
      app.store.close()
        .then(() => logger.info('stopped'))
        .catch((err: unknown) => logger.error({ err }, 'store close failed'))
        .finally(() => logger.flush(() => process.exit(0)));
    });
    admin.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
