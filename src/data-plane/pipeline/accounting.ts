import type { Logger } from 'pino';
import type { Metrics } from '../../observability/metrics.js';
import type { UsageRecorder } from './usage-recorder.js';

export interface AccountingDeps {
  metrics: Metrics;
  logger: Logger;
  usage: UsageRecorder;
  /** `gateway.accessLog`: one `request` line per request at info level. */
  accessLog: boolean;
}

/**
 * Every request's end, counted once: its total time and the gateway's own share of it, the
 * route × outcome counter, the key's usage and the access log line.
 */
export class Accounting {
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly usage: UsageRecorder;
  private readonly logRequests: boolean;
  // Pre-bound metric children: no label lookup per request.
  private readonly total: ReturnType<Metrics['requestDuration']['labels']>;
  private readonly overhead: ReturnType<Metrics['requestDuration']['labels']>;
  /** Route → outcome → counter child: two map lookups per request, no key string built. */
  private readonly counters = new Map<string, Map<string, ReturnType<Metrics['requests']['labels']>>>();

  constructor({ metrics, logger, usage, accessLog }: AccountingDeps) {
    this.metrics = metrics;
    this.logger = logger;
    this.usage = usage;
    this.logRequests = accessLog && logger.isLevelEnabled('info');
    this.total = metrics.requestDuration.labels({ kind: 'total' });
    this.overhead = metrics.requestDuration.labels({ kind: 'overhead' });
  }

  /** One request counted under `route` and `outcome` (a parser-refused one has no more than this). */
  count(route: string, outcome: string): void {
    let byOutcome = this.counters.get(route);
    if (!byOutcome) this.counters.set(route, (byOutcome = new Map()));
    let c = byOutcome.get(outcome);
    if (!c) byOutcome.set(outcome, (c = this.metrics.requests.labels({ route, outcome })));
    c.inc();
  }

  finish(requestId: string, route: string, status: number, outcome: string, keyId: string | null, started: number, upstreamMs: number): void {
    const ms = performance.now() - started;
    this.total.observe(ms / 1000);
    this.overhead.observe((ms - upstreamMs) / 1000);
    this.count(route, outcome);
    if (keyId !== null) this.usage.record(keyId, outcome, Date.now());
    if (this.logRequests) this.logger.info({ requestId, route, status, outcome, keyId, ms: Math.round(ms * 100) / 100 }, 'request');
  }
}
