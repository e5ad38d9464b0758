import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

/** keygate's version, from its package.json (beside dist/ and src/ alike). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The status class of an HTTP status: `2xx` … `5xx` (a bounded label). */
export function statusClass(status: number): '1xx' | '2xx' | '3xx' | '4xx' | '5xx' {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  if (status >= 200) return '2xx';
  return '1xx';
}

/**
 * Why a forwarded request failed at its upstream: `timeout` (no answer, or a stalled body,
 * within `timeoutMs`), `unavailable` (refused or dropped before answering), `reset` (dropped
 * in the middle of its answer), `5xx` (it answered with a 5xx status).
 */
export type UpstreamErrorKind = 'timeout' | 'unavailable' | 'reset' | '5xx';

/** prom-client's default gauges named `_total` (which `promtool check metrics` refuses); their `{type}` gauges stay. */
const DEFAULT_GAUGES_NAMED_TOTAL = ['keygate_nodejs_active_handles_total', 'keygate_nodejs_active_requests_total', 'keygate_nodejs_active_resources_total'];

/** Every Prometheus metric keygate exports, defined in one place. No label ever carries a key id. */
export class Metrics {
  readonly registry = new Registry();

  /**
   * What the collect-time gauges read, set by whoever owns the thing measured: when this
   * process last confirmed its view of the store current (ms since the epoch, 0 = never), the
   * key cache's size, and each Redis circuit breaker.
   */
  readonly probes: {
    viewConfirmedAt: (() => number) | null;
    keyCacheEntries: (() => number) | null;
    readonly breakers: Map<string, () => boolean>;
  } = { viewConfirmedAt: null, keyCacheEntries: null, breakers: new Map() };

  private readonly startedAt = Date.now();

  readonly adminRequests = new Counter({
    name: 'keygate_admin_requests_total',
    help: 'Admin API requests by route template, method and status.',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly adminRequestDuration = new Histogram({
    name: 'keygate_admin_request_duration_seconds',
    help: 'Admin API request latency.',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly storeErrors = new Counter({
    name: 'keygate_store_errors_total',
    help: 'Store operations that failed.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  // The request path's metrics: bound once per label set, updated without label hashing.
  readonly requests = this.hot(new HotCounter('keygate_requests_total',
    'Gateway requests by route, outcome (OK, a catalogued error code, UPSTREAM_ERROR for an upstream 5xx, CLIENT_CLOSED) and status class.'));
  readonly requestDuration = this.hot(new HotHistogram('keygate_request_duration_seconds',
    'Gateway request latency by route: kind "total" as the client sees it, "overhead" without the upstream time.',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]));
  readonly upstreamDuration = this.hot(new HotHistogram('keygate_upstream_duration_seconds',
    'Time from dispatch to the end of the upstream response, by upstream.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]));
  readonly upstreamErrors = this.hot(new HotCounter('keygate_upstream_errors_total',
    'Forwarded requests that failed at the upstream, by upstream and kind: timeout, unavailable (refused or dropped before answering), reset (dropped mid-answer), 5xx.'));
  readonly rateLimited = this.hot(new HotCounter('keygate_rate_limited_total', 'Requests refused by a rate limit or quota.')).labels();
  readonly rateLimitFallbacks = this.hot(new HotCounter('keygate_rate_limit_fallbacks_total',
    'Rate-limit decisions made without the shared counters, as rateLimit.onStoreError says.')).labels();
  readonly keyCacheHits = this.hot(new HotCounter('keygate_key_cache_hits_total', 'Key lookups answered from the in-process cache (positive or negative entries).')).labels();
  readonly keyCacheMisses = this.hot(new HotCounter('keygate_key_cache_misses_total', 'Key lookups that went to the store.')).labels();
  readonly tokensMinted = this.hot(new HotCounter('keygate_tokens_minted_total',
    'Tokens minted by POST /auth/token, by auth: "key" (an API key) or "simple" (simple authentication, a profile token).'));
  readonly propagationLag = this.hot(new HotHistogram('keygate_propagation_lag_seconds',
    'Time from a committed store change to this node applying it.',
    [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])).labels();
  readonly accessLogDropped = this.hot(new HotCounter('keygate_access_log_dropped_total',
    'Access log lines dropped because stdout did not take them fast enough (or failed).')).labels();

  readonly storeVersion = new Gauge({
    name: 'keygate_store_version',
    help: 'The latest store version this process has applied.',
    registers: [this.registry],
  });

  readonly keysRotationDue = new Gauge({
    name: 'keygate_keys_rotation_due',
    help: 'Keys whose secret is older than keys.rotationReminderDays (since creation or the last rotation), as of the last hygiene sweep (every minute).',
    registers: [this.registry],
  });

  readonly buildInfo = new Gauge({
    name: 'keygate_build_info',
    help: 'Always 1: the keygate version and the Node.js version running it.',
    labelNames: ['version', 'node'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly propagationStaleness: Gauge;
  readonly maxStaleness = new Gauge({
    name: 'keygate_propagation_max_staleness_seconds',
    help: 'propagation.maxStalenessMs in seconds: the bound keygate_propagation_staleness_seconds must stay under.',
    aggregator: 'max',
    registers: [this.registry],
  });
  readonly keyCacheEntries: Gauge;
  readonly circuitBreakerOpen: Gauge<'breaker'>;

  private hot<M extends HotCounter | HotHistogram>(metric: M): M {
    this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    return metric;
  }

  constructor() {
    const probes = this.probes;
    const startedAt = this.startedAt;
    this.buildInfo.set({ version: packageVersion(), node: process.version }, 1);
    // Summed over a cluster's processes these would mislead: the worst process is the answer.
    this.propagationStaleness = new Gauge({
      name: 'keygate_propagation_staleness_seconds',
      help: 'Seconds since this process last confirmed its view of the store current (the worst process, summed over workers); since start when never.',
      aggregator: 'max',
      registers: [this.registry],
      collect() {
        if (probes.viewConfirmedAt === null) return;
        const at = probes.viewConfirmedAt();
        this.set((Date.now() - (at > 0 ? at : startedAt)) / 1000);
      },
    });
    this.keyCacheEntries = new Gauge({
      name: 'keygate_key_cache_entries',
      help: 'Keys held in the in-process key cache (summed over workers).',
      registers: [this.registry],
      collect() {
        if (probes.keyCacheEntries !== null) this.set(probes.keyCacheEntries());
      },
    });
    this.circuitBreakerOpen = new Gauge({
      name: 'keygate_circuit_breaker_open',
      help: 'Whether a Redis circuit breaker is open (1) or closed (0): "requests" guards the request path, "admin" admin writes and housekeeping.',
      labelNames: ['breaker'] as const,
      aggregator: 'max',
      registers: [this.registry],
      collect() {
        for (const [breaker, open] of probes.breakers) this.set({ breaker }, open() ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'keygate_' });
    for (const name of DEFAULT_GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
  }
}
