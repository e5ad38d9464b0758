import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import { NODE_REPORT_MAX_AGE_MS, type ActivityRecord, type KeyStore, type NodeReport, type UsageDelta } from '../store/types.js';

export const HEARTBEAT_MS = 5_000;
/** A process whose last report is older than this no longer counts as sharing the limits. */
const LIVE_WINDOW_MS = NODE_REPORT_MAX_AGE_MS;

/** How many keygate processes report to the store now; at least this one. */
export function liveInstances(nodes: readonly NodeReport[], now: number): number {
  const live = new Set<string>();
  for (const n of nodes) {
    if (n.role === 'gateway' && now - Date.parse(n.reportedAt) <= LIVE_WINDOW_MS) live.add(n.instance ?? n.id);
  }
  return Math.max(1, live.size);
}

export interface Heartbeat {
  beat(): Promise<void>;
  /**
   * Drops a node's report from the store: its process exited. Runs after any beat under way,
   * so a beat that read the node before it exited cannot report it again afterwards.
   */
  forget(id: string): Promise<void>;
  stop(): void;
}

/**
 * Every few seconds: report this process's gateway nodes (their applied store versions) to
 * the store, and count the processes that report, for the rate limiter's local fallback.
 */
export function startHeartbeat(opts: {
  store: KeyStore;
  metrics: Metrics;
  logger: Logger;
  reports: () => NodeReport[];
  /** Told how many processes share the store's limits, after each count. */
  onInstances: (n: number) => void;
}): Heartbeat {
  // Beats and forgets run one at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  const serial = (task: () => Promise<void>): Promise<void> => (chain = chain.then(task));
  const beatOnce = async (): Promise<void> => {
    try {
      for (const report of opts.reports()) await opts.store.reportNode(report);
      opts.onInstances(liveInstances(await opts.store.listNodes(), Date.now()));
    } catch (err) {
      opts.metrics.storeErrors.inc({ operation: 'heartbeat' });
      opts.logger.warn({ err: { message: (err as Error).message } }, 'node heartbeat failed');
    }
  };
  const beat = (): Promise<void> => serial(beatOnce);
  const forget = (id: string): Promise<void> => serial(async () => {
    try {
      await opts.store.forgetNode(id);
    } catch (err) {
      // Its report ages out of the listing anyway.
      opts.metrics.storeErrors.inc({ operation: 'heartbeat' });
      opts.logger.warn({ err: { message: (err as Error).message }, node: id }, 'could not drop the report of a node that exited');
    }
  });
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  timer.unref();
  return { beat, forget, stop: () => clearInterval(timer) };
}

/** How long a stopping process waits for its nodes' reports to be dropped (a hung store must not hold up the exit). */
export const FORGET_ON_STOP_MS = 1_000;

/** Waits for `p`, but no longer than `ms`. */
export async function atMost(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Usage batches written to the store; a failure is counted and rethrown, so the batch is kept for the next flush. */
export function storeUsageSink(store: KeyStore, metrics: Metrics): (deltas: UsageDelta[]) => Promise<void> {
  return async (deltas) => {
    try {
      await store.recordUsage(deltas);
    } catch (err) {
      metrics.storeErrors.inc({ operation: 'usage' });
      throw err;
    }
  };
}

/** Activity batches written to the store, each key kept to `keepPerKey`; a failure is counted and rethrown (kept for the next flush). */
export function storeActivitySink(store: KeyStore, metrics: Metrics, keepPerKey: number): (records: ActivityRecord[]) => Promise<void> {
  return async (records) => {
    try {
      await store.recordActivity(records, keepPerKey);
    } catch (err) {
      metrics.storeErrors.inc({ operation: 'activity' });
      throw err;
    }
  };
}
