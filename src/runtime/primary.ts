import cluster, { type Worker } from 'node:cluster';
import { hostname } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import { createAdminServer } from '../control-plane/admin-server.js';
import type { App } from './app.js';
import { freshnessBeatMs, onTermination } from './process.js';
import { drainServer, drainState } from '../http/drain.js';
import { listen } from '../http/listen.js';
import { isMessage, type MetricsRequest, type MetricsResult, type ToPrimary, type ToWorker } from './ipc.js';
import { IpcRequests } from '../store/ipc-requests.js';
import { storeKeySource } from '../store/key-source.js';
import { UsageRecorder } from '../data-plane/pipeline/usage-recorder.js';
import { atMost, FORGET_ON_STOP_MS, startHeartbeat, storeActivitySink, storeUsageSink } from './heartbeat.js';
import { ActivityRecorder } from '../data-plane/pipeline/activity-recorder.js';
import { leakReporter } from '../control-plane/leak-reports.js';
import { followStore } from './follow-store.js';
import { Lifecycle } from './lifecycle.js';

const METRICS_TIMEOUT_MS = 2_000;

/**
 * `workers > 1`: this process keeps the admin port and the embedded store (single writer);
 * N workers share the gateway port. Workers look keys up and report usage over IPC, and
 * receive every change the moment it commits, plus a sync beat that bounds their staleness.
 */
export async function startPrimary(app: App, workers: number): Promise<void> {
  const { config, logger, store, metrics } = app;
  // Roles start in order (store → usage → store follower → sync beat → heartbeat → workers and
  // admin port → readiness) and stop in the reverse order on SIGTERM.
  const life = new Lifecycle(logger);
  // The status port stops last: probes see "draining" until the process is gone.
  life.add('status port', async () => { await app.status?.close(); });
  life.add('store', () => store.close());
  let ready = false;
  let stopping = false;
  const send = (w: Worker, m: ToWorker): void => {
    if (w.isConnected()) w.send(m);
  };
  const broadcast = (m: ToWorker): void => {
    for (const w of Object.values(cluster.workers ?? {})) if (w) send(w, m);
  };

  // Workers' metrics are gathered on scrape and summed with this process's own; a worker that
  // does not answer in time is left out of that scrape.
  type MetricsJson = Parameters<typeof AggregatorRegistry.aggregate>[0][number];
  const metricsOf = new Map<number, IpcRequests<MetricsRequest, MetricsResult, MetricsJson | null>>();
  const metricsOutcome = { answer: (m: MetricsResult) => m.metrics as MetricsJson, failed: () => null };
  const collectMetrics = async (): Promise<string> => {
    const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
    metrics.storeVersion.set(store.appliedVersion());
    const own = (await metrics.registry.getMetricsAsJSON()) as MetricsJson;
    const replies = await Promise.all(live.map((w) => {
      const requests = metricsOf.get(w.id);
      return requests ? requests.request({ t: 'metrics-req', id: requests.id() }) : null;
    }));
    return AggregatorRegistry.aggregate([own, ...replies.filter((r): r is MetricsJson => r !== null)]).metrics();
  };

  // This process's own view; each worker reports its own, and the scrape keeps the worst.
  metrics.probes.viewConfirmedAt = () => store.feedConfirmedAt();
  const { limiter } = app;
  const keys = storeKeySource(store);
  // Workers' usage counts are gathered here and written in batches, kept across store faults.
  const usage = new UsageRecorder(storeUsageSink(store, metrics));
  usage.start();
  life.add('usage', () => usage.stop());
  // And their activity records, written the same way.
  const activity = new ActivityRecorder(storeActivitySink(store, metrics, config.keys.activityPerKey), { keepPerKey: Math.max(1, config.keys.activityPerKey) });
  activity.start();
  life.add('activity', () => activity.stop());
  const reportLeaks = leakReporter(app.keys, config.leaks.action);
  const workerVersions = new Map<number, { pid: number; appliedVersion: number }>();
  const syncMessage = (): ToWorker => ({ t: 'sync', version: store.appliedVersion(), confirmedAt: store.feedConfirmedAt() });
  const readyWorkers = new Set<number>();
  // Workers get the keys this process holds, never an empty set from a store that lost them.
  const { signingKeys: signingKeySync, unsubscribe } = followStore({
    store,
    signingKeyService: app.signingKeys,
    logger,
    initial: await store.listSigningKeys(),
    applySigningKeys: (keys) => broadcast({ t: 'signing-keys', keys }),
    applyChanges: (changes) => broadcast({ t: 'changes', changes: [...changes] }),
    reset: () => broadcast({ t: 'reset' }),
  });
  life.add('store follower', () => {
    signingKeySync.stop();
    unsubscribe();
  });
  let gatewayUrl = '';
  let onAllReady: (() => void) | null = null;

  const handle = (w: Worker, m: unknown): void => {
    if (!isMessage<ToPrimary>(m)) return;
    switch (m.t) {
      case 'ready':
        send(w, syncMessage());
        gatewayUrl = m.url;
        readyWorkers.add(w.id);
        if (readyWorkers.size >= workers && onAllReady) onAllReady();
        break;
      case 'lookup':
        (m.by === 'hash' ? keys.lookup(m.value) : keys.lookupById(m.value))
          .then((found) => send(w, { t: 'lookup-result', id: m.id, record: found?.record ?? null, owner: found?.owner ?? null }))
          .catch((err: unknown) => send(w, { t: 'lookup-result', id: m.id, record: null, owner: null, error: String(err) }));
        break;
      case 'signing-keys-req':
        send(w, { t: 'signing-keys', keys: signingKeySync.held() });
        break;
      case 'limit':
        void Promise.resolve(limiter.take(m.keyId, m.rate, m.quota, m.now))
          .then((decision) => send(w, { t: 'limit-result', id: m.id, decision }));
        break;
      case 'usage':
        usage.merge(m.deltas);
        break;
      case 'activity':
        activity.merge(m.records);
        break;
      case 'leaks':
        reportLeaks(m.reports)
          .then((verdicts) => send(w, { t: 'leaks-result', id: m.id, verdicts }))
          .catch((err: unknown) => send(w, { t: 'leaks-result', id: m.id, verdicts: null, error: String(err) }));
        break;
      case 'report':
        if (w.isDead()) break; // a last message read after its exit: its node is already dropped
        workerVersions.set(w.id, { pid: w.process.pid ?? w.id, appliedVersion: m.appliedVersion });
        break;
      case 'metrics-res':
        metricsOf.get(w.id)?.reply(m);
        break;
    }
  };

  const sync = setInterval(() => broadcast(syncMessage()), freshnessBeatMs(config));
  sync.unref();
  life.add('sync beat', () => clearInterval(sync));

  // Each worker is a gateway node with its own cache; this process reports them all.
  const instance = `${hostname()}:${process.pid}`;
  const nodeId = (pid: number): string => `${hostname()}:${pid}`;
  const heartbeat = startHeartbeat({
    store,
    metrics,
    logger,
    reports: () => [...workerVersions.values()].map((v) => ({
      id: nodeId(v.pid), instance, role: 'gateway' as const, appliedVersion: v.appliedVersion, reportedAt: new Date().toISOString(),
    })),
    onInstances: (n) => { app.instances.count = n; },
  });
  life.add('heartbeat', () => heartbeat.stop());

  // The kernel spreads connections over the workers' shared socket; round-robin in this
  // process would put every accept on the primary's one core.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const fork = (): Worker => {
    const w = cluster.fork();
    metricsOf.set(w.id, new IpcRequests((m) => send(w, m), METRICS_TIMEOUT_MS, 'metrics over IPC timed out', metricsOutcome));
    w.on('message', (m: unknown) => handle(w, m));
    return w;
  };
  // Forgets run in order, so the latest one settles after all before it.
  let forgotten: Promise<void> = Promise.resolve();
  cluster.on('exit', (w, code, signal) => {
    readyWorkers.delete(w.id);
    metricsOf.delete(w.id);
    // Its node is gone with it: drop the report now rather than let it age out.
    const reported = workerVersions.get(w.id);
    workerVersions.delete(w.id);
    if (reported) forgotten = heartbeat.forget(nodeId(reported.pid));
    if (stopping) return;
    if (!ready) {
      // A worker that cannot start (the port is taken, say) would fail again: stop, don't loop.
      logger.fatal({ pid: w.process.pid, code, signal }, 'a gateway worker failed to start');
      for (const other of Object.values(cluster.workers ?? {})) other?.kill('SIGKILL');
      logger.flush(() => process.exit(1));
      return;
    }
    logger.error({ pid: w.process.pid, code, signal }, 'gateway worker exited; starting another in 1 s');
    setTimeout(() => { if (!stopping) fork(); }, 1_000).unref();
  });

  const allReady = new Promise<void>((resolve) => { onAllReady = resolve; });
  for (let i = 0; i < workers; i++) fork();
  const adminDrain = drainState();
  // Both ports serve the same sum over the workers.
  if (app.status) app.status.source = { ...app.status.source, metricsText: collectMetrics };
  const admin = createAdminServer({ ...app, notReady: () => app.readiness.reason(), metricsText: collectMetrics, drain: adminDrain });
  const adminUrl = await listen(admin, config.admin.listen.host, config.admin.listen.port);
  await allReady;
  app.hygiene.start();
  life.add('key hygiene', () => app.hygiene.stop());
  await heartbeat.beat();

  // Workers finish their in-flight requests and exit; their nodes are forgotten as they go.
  life.add('workers and admin port', async () => {
    const exits = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w)
      .map((w) => new Promise<void>((resolve) => { w.once('exit', () => resolve()); send(w, { t: 'shutdown' }); }));
    await Promise.all([...exits, drainServer(admin, adminDrain)]);
    await atMost(forgotten, FORGET_ON_STOP_MS);
  });
  life.add('readiness', () => {
    ready = false;
    app.readiness.phase = 'draining';
    stopping = true;
  });

  // Before the ready line: a signal that finds no handler kills the process without draining.
  onTermination(logger, config.gateway.requestTimeoutMs, () => life.stop(), () => {
    admin.closeAllConnections();
    app.status?.server.closeAllConnections();
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
  });
  ready = true;
  app.readiness.phase = 'ready';
  logger.info({ gateway: gatewayUrl, admin: adminUrl, status: app.statusUrl, workers }, 'ready');
}
