import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  readonly requests = new Counter({
    name: 'keygate_requests_total',
    help: 'Gateway requests by route and outcome (OK or an error code).',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'keygate_request_duration_seconds',
    help: 'Gateway request latency: "total" as the client sees it, "overhead" without the upstream time.',
    labelNames: ['kind'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'keygate_upstream_duration_seconds',
    help: 'Time from dispatch to the end of the upstream response.',
    labelNames: ['upstream'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly keyCacheHits = new Counter({
    name: 'keygate_key_cache_hits_total',
    help: 'Key lookups answered from the in-process cache (positive or negative entries).',
    registers: [this.registry],
  });

  readonly keyCacheMisses = new Counter({
    name: 'keygate_key_cache_misses_total',
    help: 'Key lookups that went to the store.',
    registers: [this.registry],
  });

  readonly propagationLag = new Histogram({
    name: 'keygate_propagation_lag_seconds',
    help: 'Time from a committed store change to this node applying it.',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly storeVersion = new Gauge({
    name: 'keygate_store_version',
    help: 'The latest store version this process has applied.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keygate_' });
  }
}
