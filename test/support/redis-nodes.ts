import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach } from 'vitest';
import { gatewayConfig, gw, metricSum, scrape, type GatewayResponse } from './gateway.js';
import { startKeygate, type Keygate } from './keygate.js';
import type { RecordingUpstream } from './upstream.js';

export interface RedisNodeOptions {
  events: RecordingUpstream;
  eventsTest: RecordingUpstream;
  /** redis://host:port of the shared Redis (or of a proxy in front of it). */
  url: string;
  /** Nodes with the same prefix on the same Redis share every key. */
  keyPrefix: string;
  /** Extra `store` fields (timeoutMs). */
  store?: Record<string, unknown>;
  propagation?: { maxStalenessMs: number };
  rateLimit?: { onStoreError: 'local' | 'allow' | 'deny' };
  gateway?: Record<string, unknown>;
}

/** The gateway suites' config (routes, recording upstreams) on the Redis store. */
export function redisNodeConfig(opts: RedisNodeOptions): (dataDir: string) => Record<string, unknown> {
  const base = gatewayConfig({
    events: opts.events,
    eventsTest: opts.eventsTest,
    ...(opts.gateway ? { gateway: opts.gateway } : {}),
    ...(opts.propagation ? { propagation: opts.propagation } : {}),
  });
  return (dataDir) => ({
    ...base(dataDir),
    store: { driver: 'redis', url: opts.url, keyPrefix: opts.keyPrefix, ...opts.store },
    ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
  });
}

/** A key prefix no other test uses, so each test starts from an empty store. */
export function uniquePrefix(name: string): string {
  return `kg-${name}-${randomUUID().slice(0, 8)}:`;
}

/**
 * Stops keygate: SIGTERM, and SIGKILL if it has not exited within `graceMs` (a node whose
 * Redis is gone may take a moment to give up on it). Removes its config and data dirs.
 */
export async function stopNode(kg: Keygate, graceMs = 5_000): Promise<void> {
  const exited = kg.stop('SIGTERM');
  const timer = setTimeout(() => { if (kg.proc.exitCode === null && kg.proc.signalCode === null) kg.proc.kill('SIGKILL'); }, graceMs);
  await exited;
  clearTimeout(timer);
  rmSync(dirname(kg.configFile), { recursive: true, force: true });
  rmSync(kg.dataDir, { recursive: true, force: true });
}

/**
 * Cleanups registered during a test, run after it in reverse order (even when it failed):
 * every keygate, proxy and Redis a test starts is stopped.
 */
export function useCleanup(): (fn: () => unknown) => void {
  const fns: Array<() => unknown> = [];
  afterEach(async () => {
    const errors: unknown[] = [];
    for (const fn of fns.splice(0).reverse()) {
      try { await fn(); } catch (err) { errors.push(err); }
    }
    if (errors.length > 0) throw errors[0];
  });
  return (fn) => { fns.push(fn); };
}

/** Starts a keygate node on Redis and registers its stop. */
export async function startNode(defer: (fn: () => unknown) => void, opts: RedisNodeOptions): Promise<Keygate> {
  const kg = await startKeygate({ config: redisNodeConfig(opts) });
  defer(() => stopNode(kg));
  return kg;
}

/** Whether the keygate process is still running. */
export function alive(kg: Keygate): boolean {
  return kg.proc.exitCode === null && kg.proc.signalCode === null;
}

/** A gateway request with the key, timed. */
export async function timedGet(kg: Keygate, secret: string, path = '/v1/events'): Promise<GatewayResponse & { startedAt: number; ms: number }> {
  const startedAt = Date.now();
  const res = await gw(kg, path, { headers: { 'x-api-key': secret } });
  return { ...res, startedAt, ms: Date.now() - startedAt };
}

/**
 * Polls `kg` with `secret` every `everyMs` until it answers `status`; `ms` is from `since` to
 * the start of the request that first got it (so the request's own time is not counted).
 */
export async function untilStatus(kg: Keygate, secret: string, status: number, since: number, timeoutMs: number, everyMs = 5): Promise<{ res: GatewayResponse; ms: number; ok: boolean }> {
  for (;;) {
    const res = await timedGet(kg, secret);
    if (res.status === status) return { res, ms: res.startedAt - since, ok: true };
    if (Date.now() - since > timeoutMs) return { res, ms: Date.now() - since, ok: false };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A counter summed over its samples on the admin `/metrics`. */
export async function metricOf(kg: Keygate, name: string, match: Record<string, string> = {}): Promise<number> {
  return metricSum(await scrape(kg), name, match);
}

/** Status counts of a list of responses, for messages. */
export function statusCounts(statuses: readonly number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

