import type { Logger } from 'pino';
import type { CounterChild, HistogramChild } from '../../observability/hot-metrics.js';
import { statusClass, type Metrics } from '../../observability/metrics.js';
import type { UsageRecorder } from './usage-recorder.js';

export interface AccountingDeps {
  metrics: Metrics;
  logger: Logger;
  usage: UsageRecorder;
  /** `gateway.accessLog`: one `request` line per request at info level. */
  accessLog: boolean;
}

/**
 * Every request's end, counted once: its total time and the gateway's own share of it per
 * route, the route × outcome × status class counter, the key's usage and the access log line.
 */
export class Accounting {
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly usage: UsageRecorder;
  private readonly logRequests: boolean;
  /** Route → its latency children (total, overhead), bound on first use: one map lookup per request. */
  private readonly durations = new Map<string, { total: HistogramChild; overhead: HistogramChild }>();
  /** Route → outcome → status class → counter child: no key string built per request. */
  private readonly counters = new Map<string, Map<string, Array<CounterChild | undefined>>>();

  constructor({ metrics, logger, usage, accessLog }: AccountingDeps) {
    this.metrics = metrics;
    this.logger = logger;
    this.usage = usage;
    this.logRequests = accessLog && logger.isLevelEnabled('info');
  }

  /**
   * One request counted under `route`, `outcome` and the class of `status` (a parser-refused
   * one has no more than this). A forwarded answer with a 5xx status counts as
   * `UPSTREAM_ERROR`, not `OK`.
   */
  count(route: string, outcome: string, status: number): void {
    if (outcome === 'OK' && status >= 500) outcome = 'UPSTREAM_ERROR';
    let byOutcome = this.counters.get(route);
    if (!byOutcome) this.counters.set(route, (byOutcome = new Map()));
    let byClass = byOutcome.get(outcome);
    if (!byClass) byOutcome.set(outcome, (byClass = []));
    const i = status < 100 ? 1 : status >= 600 ? 5 : Math.floor(status / 100);
    let c = byClass[i];
    if (!c) c = byClass[i] = this.metrics.requests.labels({ route, outcome, status_class: statusClass(status) });
    c.inc();
  }

  private durationsOf(route: string): { total: HistogramChild; overhead: HistogramChild } {
    let d = this.durations.get(route);
    if (!d) {
      d = { total: this.metrics.requestDuration.labels({ route, kind: 'total' }), overhead: this.metrics.requestDuration.labels({ route, kind: 'overhead' }) };
      this.durations.set(route, d);
    }
    return d;
  }

  finish(requestId: string, route: string, status: number, outcome: string, keyId: string | null, started: number, upstreamMs: number): void {
    const ms = performance.now() - started;
    const d = this.durationsOf(route);
    d.total.observe(ms / 1000);
    d.overhead.observe((ms - upstreamMs) / 1000);
    this.count(route, outcome, status);
    if (keyId !== null) this.usage.record(keyId, outcome, Date.now());
    if (this.logRequests) this.logger.info({ requestId, route, status, outcome, keyId, ms: Math.round(ms * 100) / 100 }, 'request');
  }
}
