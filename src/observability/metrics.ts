import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

/** Every Prometheus metric keygate exports, defined in one place. No label ever carries a key id. */
export class Metrics {
  readonly registry = new Registry();

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
  readonly requests = this.hot(new HotCounter('keygate_requests_total', 'Gateway requests by route and outcome (OK or an error code).'));
  readonly requestDuration = this.hot(new HotHistogram('keygate_request_duration_seconds',
    'Gateway request latency: "total" as the client sees it, "overhead" without the upstream time.',
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]));
  readonly upstreamDuration = this.hot(new HotHistogram('keygate_upstream_duration_seconds',
    'Time from dispatch to the end of the upstream response.',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]));
  readonly rateLimited = this.hot(new HotCounter('keygate_rate_limited_total', 'Requests refused by a rate limit or quota.')).labels();
  readonly rateLimitFallbacks = this.hot(new HotCounter('keygate_rate_limit_fallbacks_total',
    'Rate-limit decisions made without the shared counters, as rateLimit.onStoreError says.')).labels();
  readonly keyCacheHits = this.hot(new HotCounter('keygate_key_cache_hits_total', 'Key lookups answered from the in-process cache (positive or negative entries).')).labels();
  readonly keyCacheMisses = this.hot(new HotCounter('keygate_key_cache_misses_total', 'Key lookups that went to the store.')).labels();
  readonly propagationLag = this.hot(new HotHistogram('keygate_propagation_lag_seconds',
    'Time from a committed store change to this node applying it.',
    [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])).labels();

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

  private hot<M extends HotCounter | HotHistogram>(metric: M): M {
    this.registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
    return metric;
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keygate_' });
  }
}
