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

  readonly storeVersion = new Gauge({
    name: 'keygate_store_version',
    help: 'The latest store version this process has applied.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'keygate_' });
  }
}
