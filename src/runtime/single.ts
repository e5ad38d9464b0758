import { hostname } from 'node:os';
import { createAdminServer } from '../control-plane/admin-server.js';
import { drainServer, drainState } from '../http/drain.js';
import { listen } from '../http/listen.js';
import { storeKeySource } from '../store/key-source.js';
import type { App } from './app.js';
import { followStore } from './follow-store.js';
import { createGatewayNode } from './gateway-node.js';
import { atMost, FORGET_ON_STOP_MS, startHeartbeat, storeUsageSink } from './heartbeat.js';
import { onTermination } from './process.js';

/** One process serves both ports on the store it opened: start them, log the ready line, drain on SIGTERM. */
export async function startSingle(app: App): Promise<void> {
  const { config, logger } = app;
  let ready = false;
  const adminDrain = drainState();
  const admin = createAdminServer({ ...app, ready: () => ready, drain: adminDrain });
  // The embedded store's feed is synchronous, so it is always confirmed current; the Redis
  // store's is confirmed by each read of its stream.
  const { store } = app;
  const maxStaleness = config.propagation.maxStalenessMs;
  const gateway = createGatewayNode({
    config,
    logger,
    metrics: app.metrics,
    source: storeKeySource(store),
    fresh: () => Date.now() - store.feedConfirmedAt() <= maxStaleness,
    usageSink: storeUsageSink(store, app.metrics),
    limiter: app.limiter,
  });
  const initialSigningKeys = await app.store.listSigningKeys();
  await gateway.setSigningKeys(initialSigningKeys);
  const { signingKeys: signingKeySync, unsubscribe } = followStore({
    store,
    signingKeyService: app.signingKeys,
    logger,
    initial: initialSigningKeys,
    applySigningKeys: (keys) => gateway.setSigningKeys(keys),
    applyChanges: (changes) => gateway.applyChanges(changes),
    reset: () => gateway.reset(),
  });
  const adminUrl = await listen(admin, config.admin.listen.host, config.admin.listen.port);
  const gatewayUrl = await listen(gateway.server, config.gateway.listen.host, config.gateway.listen.port);

  const nodeId = `${hostname()}:${process.pid}`;
  const heartbeat = startHeartbeat({
    store,
    metrics: app.metrics,
    logger,
    reports: () => [{ id: nodeId, instance: nodeId, role: 'gateway', appliedVersion: store.appliedVersion(), reportedAt: new Date().toISOString() }],
    onInstances: (n) => { app.instances.count = n; },
  });
  await heartbeat.beat();

  // Handlers go in before the ready line: whoever reads that line may signal at once, and a
  // signal that finds no handler kills the process without draining.
  onTermination(logger, config.gateway.requestTimeoutMs, async () => {
    ready = false;
    heartbeat.stop();
    signingKeySync.stop();
    // In-flight requests finish first; only then are usage counts flushed and the store closed.
    await Promise.all([drainServer(gateway.server, gateway.drain), drainServer(admin, adminDrain)]);
    await atMost(heartbeat.forget(nodeId), FORGET_ON_STOP_MS);
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
