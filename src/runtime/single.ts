import { hostname } from 'node:os';
import { createAdminServer } from '../control-plane/admin-server.js';
import { leakReporter } from '../control-plane/leak-reports.js';
import { drainServer, drainState } from '../http/drain.js';
import { listen } from '../http/listen.js';
import { storeKeySource } from '../store/key-source.js';
import type { App } from './app.js';
import { followStore } from './follow-store.js';
import { createGatewayNode } from './gateway-node.js';
import { atMost, FORGET_ON_STOP_MS, startHeartbeat, storeActivitySink, storeUsageSink } from './heartbeat.js';
import { Lifecycle } from './lifecycle.js';
import { onTermination } from './process.js';

/**
 * One process serves both ports on the store it opened: its roles start in order (store →
 * gateway node → store follower → ports → heartbeat → readiness) and stop in the reverse
 * order on SIGTERM, so in-flight requests finish before usage is flushed and the store closes.
 */
export async function startSingle(app: App): Promise<void> {
  const { config, logger, store } = app;
  const life = new Lifecycle(logger);
  // The status port stops last: probes see "draining" until the process is gone.
  life.add('status port', async () => { await app.status?.close(); });
  life.add('store', () => store.close());
  try {
    // The embedded store's feed is synchronous, so it is always confirmed current; the Redis
    // store's is confirmed by each read of its stream.
    const maxStaleness = config.propagation.maxStalenessMs;
    app.metrics.probes.viewConfirmedAt = () => store.feedConfirmedAt();
    const gateway = createGatewayNode({
      config,
      logger,
      metrics: app.metrics,
      source: storeKeySource(store),
      fresh: () => Date.now() - store.feedConfirmedAt() <= maxStaleness,
      usageSink: storeUsageSink(store, app.metrics),
      activitySink: storeActivitySink(store, app.metrics, config.keys.activityPerKey),
      limiter: app.limiter,
      reportLeaks: leakReporter(app.keys, config.leaks.action),
    });
    // Closing the node flushes its usage counts, while the store is still open.
    life.add('gateway node', () => gateway.close());
    const initialSigningKeys = await store.listSigningKeys();
    await gateway.setSigningKeys(initialSigningKeys);
    const follower = followStore({
      store,
      signingKeyService: app.signingKeys,
      logger,
      initial: initialSigningKeys,
      applySigningKeys: (keys) => gateway.setSigningKeys(keys),
      applyChanges: (changes) => gateway.applyChanges(changes),
      reset: () => gateway.reset(),
    });
    life.add('store follower', () => {
      follower.signingKeys.stop();
      follower.unsubscribe();
    });

    const adminDrain = drainState();
    const admin = createAdminServer({ ...app, notReady: () => app.readiness.reason(), drain: adminDrain });
    const adminUrl = await listen(admin, config.admin.listen.host, config.admin.listen.port);
    const gatewayUrl = await listen(gateway.server, config.gateway.listen.host, config.gateway.listen.port);
    // Both ports drain together: in-flight requests finish before anything under them stops.
    life.add('ports', async () => {
      await Promise.all([drainServer(gateway.server, gateway.drain), drainServer(admin, adminDrain)]);
    });

    const nodeId = `${hostname()}:${process.pid}`;
    const heartbeat = startHeartbeat({
      store,
      metrics: app.metrics,
      logger,
      reports: () => [{ id: nodeId, instance: nodeId, role: 'gateway', appliedVersion: store.appliedVersion(), reportedAt: new Date().toISOString() }],
      onInstances: (n) => { app.instances.count = n; },
    });
    life.add('heartbeat', async () => {
      heartbeat.stop();
      await atMost(heartbeat.forget(nodeId), FORGET_ON_STOP_MS);
    });
    app.hygiene.start();
    life.add('key hygiene', () => app.hygiene.stop());
    await heartbeat.beat();
    life.add('readiness', () => { app.readiness.phase = 'draining'; });

    // Handlers go in before the ready line: whoever reads that line may signal at once, and a
    // signal that finds no handler kills the process without draining.
    onTermination(logger, config.gateway.requestTimeoutMs, () => life.stop(), () => {
      gateway.server.closeAllConnections();
      admin.closeAllConnections();
      app.status?.server.closeAllConnections();
    });
    app.readiness.phase = 'ready';
    logger.info({ gateway: gatewayUrl, admin: adminUrl, status: app.statusUrl }, 'ready');
  } catch (err) {
    // A start that failed half-way (a port taken, say) releases what it had, last first.
    await life.stop();
    throw err;
  }
}
