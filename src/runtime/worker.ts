import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { Metrics } from '../observability/metrics.js';
import { drainServer } from '../http/drain.js';
import { listen } from '../http/listen.js';
import { createGatewayNode } from './gateway-node.js';
import { IpcRateLimiter } from '../store/rate-limit/ipc.js';
import { IpcKeySource } from '../store/key-source-ipc.js';
import { isMessage, type LeaksRequest, type LeaksResult, type ToPrimary, type ToWorker } from './ipc.js';
import { IpcRequests } from '../store/ipc-requests.js';
import type { LeakVerdict } from '../domain/leak.js';
import { Lifecycle } from './lifecycle.js';
import { workerCount } from './process.js';

const REPORT_MS = 5_000;

/** A gateway worker: serves the shared port; the store is the primary's, reached over IPC. */
export async function runWorker(config: Config, logger: Logger): Promise<void> {
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send!(m);
  };
  const metrics = new Metrics();
  const source = new IpcKeySource(send);
  const limiter = new IpcRateLimiter(send, config.rateLimit.onStoreError, workerCount(config), () => metrics.rateLimitFallbacks.inc());
  // Nothing is trusted from the cache until the primary first confirms how current it is.
  const leaks = new IpcRequests<LeaksRequest, LeaksResult, LeakVerdict[]>(send, 10_000, 'the primary did not apply the leak report in time', {
    answer: (m) => {
      if (m.verdicts === null) throw new Error(m.error ?? 'the primary could not apply the leak report');
      return m.verdicts;
    },
    failed: (_req, err) => { throw err; },
  });
  let confirmedAt = 0;
  let appliedVersion = 0;
  metrics.maxStaleness.set(config.propagation.maxStalenessMs / 1000);
  metrics.probes.viewConfirmedAt = () => confirmedAt;
  const node = createGatewayNode({
    config,
    logger,
    metrics,
    source,
    // Changes arrive over IPC as the primary applies them; the sync beat says how current the
    // primary is. Without a recent one this worker cannot tell what it missed, so it stops
    // trusting its cache.
    fresh: () => Date.now() - confirmedAt <= config.propagation.maxStalenessMs,
    usageSink: async (deltas) => send({ t: 'usage', deltas }),
    activitySink: async (records) => send({ t: 'activity', records }),
    limiter,
    reportLeaks: (reports) => leaks.request({ t: 'leaks', id: leaks.id(), reports: [...reports] }),
  });
  // Roles: the node (closing it flushes usage to the primary), the report beat, the port.
  const life = new Lifecycle(logger);
  life.add('gateway node', () => node.close());

  let keysLoaded: (() => void) | null = null;
  const firstKeys = new Promise<void>((resolve) => { keysLoaded = resolve; });

  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => node.server.closeAllConnections(), config.gateway.requestTimeoutMs);
    force.unref();
    await life.stop();
    clearTimeout(force);
    logger.flush(() => process.exit(0));
  };

  process.on('message', (m: unknown) => {
    if (!isMessage<ToWorker>(m)) return;
    switch (m.t) {
      case 'lookup-result':
        source.onResult(m);
        break;
      case 'limit-result':
        limiter.onResult(m);
        break;
      case 'leaks-result':
        leaks.reply(m);
        break;
      case 'changes':
        node.applyChanges(m.changes);
        for (const c of m.changes) appliedVersion = Math.max(appliedVersion, c.version);
        break;
      case 'sync':
        appliedVersion = Math.max(appliedVersion, m.version);
        confirmedAt = Math.max(confirmedAt, m.confirmedAt);
        break;
      case 'reset':
        node.reset();
        appliedVersion = 0; // the next sync says where the primary stands now
        break;
      case 'metrics-req':
        void metrics.registry.getMetricsAsJSON().then((json) => send({ t: 'metrics-res', id: m.id, metrics: json }));
        break;
      case 'signing-keys':
        void node.setSigningKeys(m.keys).then(() => keysLoaded?.())
          .catch((err: unknown) => logger.error({ err }, 'could not load the signing keys'));
        break;
      case 'shutdown':
        void shutdown();
        break;
    }
  });
  // The primary owns signals; a worker orphaned by its primary's death must not linger.
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => void shutdown());

  const report = setInterval(() => send({ t: 'report', appliedVersion }), REPORT_MS);
  report.unref();
  life.add('report beat', () => clearInterval(report));
  send({ t: 'signing-keys-req' });
  await firstKeys;
  const url = await listen(node.server, config.gateway.listen.host, config.gateway.listen.port);
  life.add('gateway port', () => drainServer(node.server, node.drain));
  send({ t: 'report', appliedVersion });
  send({ t: 'ready', url });
}
