// The metrics an SRE builds SLOs on, scraped from the status port of a real `keygate serve`
// after mixed traffic (2xx, 4xx, 5xx, 429, a token mint): requests by route, outcome and
// status class, latency per route, upstream errors by kind, build info, staleness, cache and
// mints; and the whole scrape passes `promtool check metrics`.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../src/domain/secret.js';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { gatewayConfig, gw, metricSamples, metricSum, pollUntil } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { promtool, requirePromtool } from './support/promtool.js';
import { startNode, uniquePrefix, useCleanup } from './support/redis-nodes.js';
import { requireRedis, startRedis } from './support/redis-server.js';
import { closedPort, useUpstreamPair } from './support/upstream.js';

const pair = useUpstreamPair();
let kg: Keygate;
let text: string;

beforeAll(async () => {
  kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest, downPort: await closedPort() }) });
  const ws = await createWorkspace(kg, 'metrics');
  const { secret } = await createKey(kg, { workspaceId: ws, name: 'open', permissions: ['*'] });
  const limited = await createKey(kg, { workspaceId: ws, name: 'limited', permissions: ['*'], rateLimit: { limit: 1, windowSeconds: 60 } });
  const key = { 'x-api-key': secret };
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await gw(kg, '/v1/events', { headers: key })).status);
  statuses.push((await gw(kg, '/v1/events', { headers: { ...key, 'x-upstream-status': '503' } })).status);
  statuses.push((await gw(kg, '/v1/events')).status);
  statuses.push((await gw(kg, '/v1/down', { headers: key })).status);
  statuses.push((await gw(kg, '/v1/slow', { headers: { ...key, 'x-upstream-delay': '1500' } })).status);
  statuses.push((await gw(kg, '/v1/events', { headers: { 'x-api-key': limited.secret } })).status);
  statuses.push((await gw(kg, '/v1/events', { headers: { 'x-api-key': limited.secret } })).status);
  statuses.push((await gw(kg, '/auth/token', { method: 'POST', headers: key })).status);
  expect(statuses).toEqual([200, 200, 200, 503, 401, 502, 504, 200, 429, 200]);
  const res = await fetch(`${kg.statusUrl}/metrics`);
  expect(res.status).toBe(200);
  text = await res.text();
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('metrics on the status port after mixed traffic', () => {
  it('pass `promtool check metrics` (exit 0, no lint)', () => {
    if (!requirePromtool()) return;
    const r = promtool(['check', 'metrics'], text);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('count requests by route, outcome and status class; an upstream 5xx is UPSTREAM_ERROR, not OK', () => {
    const count = (route: string, outcome: string, statusClass: string): number =>
      metricSum(text, 'keygate_requests_total', { route, outcome, status_class: statusClass });
    expect(count('list-events', 'OK', '2xx')).toBe(4);
    expect(count('list-events', 'UPSTREAM_ERROR', '5xx')).toBe(1);
    expect(count('list-events', 'OK', '5xx')).toBe(0);
    expect(count('list-events', 'UNAUTHENTICATED', '4xx')).toBe(1);
    expect(count('list-events', 'RATE_LIMITED', '4xx')).toBe(1);
    expect(count('down', 'UPSTREAM_UNAVAILABLE', '5xx')).toBe(1);
    expect(count('slow', 'UPSTREAM_TIMEOUT', '5xx')).toBe(1);
    expect(count('auth-token', 'OK', '2xx')).toBe(1);
    for (const s of metricSamples(text).filter((x) => x.name === 'keygate_requests_total')) {
      expect(Object.keys(s.labels).sort()).toEqual(['outcome', 'route', 'status_class']);
      expect(s.labels.status_class).toMatch(/^[1-5]xx$/);
    }
  });

  it('time requests per route (total and overhead) and upstreams, and count upstream errors by kind', () => {
    expect(metricSum(text, 'keygate_request_duration_seconds_count', { route: 'list-events', kind: 'total' })).toBe(7);
    expect(metricSum(text, 'keygate_request_duration_seconds_count', { route: 'slow', kind: 'overhead' })).toBe(1);
    expect(metricSum(text, 'keygate_request_duration_seconds_sum', { route: 'slow', kind: 'total' })).toBeGreaterThan(0.2);
    expect(metricSum(text, 'keygate_upstream_duration_seconds_count', { upstream: 'events' })).toBe(5);
    expect(metricSum(text, 'keygate_upstream_errors_total', { upstream: 'events', kind: '5xx' })).toBe(1);
    expect(metricSum(text, 'keygate_upstream_errors_total', { upstream: 'down', kind: 'unavailable' })).toBe(1);
    expect(metricSum(text, 'keygate_upstream_errors_total', { upstream: 'slow', kind: 'timeout' })).toBe(1);
    expect(metricSum(text, 'keygate_upstream_errors_total', { upstream: 'events', kind: 'timeout' })).toBe(0);
  });

  it('export build info, propagation staleness against its bound, the key cache and token mints', () => {
    const version = (JSON.parse(readFileSync(resolve(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
    expect(metricSum(text, 'keygate_build_info', { version, node: process.version })).toBe(1);
    const staleness = metricSum(text, 'keygate_propagation_staleness_seconds');
    expect(staleness).toBeGreaterThanOrEqual(0);
    expect(staleness).toBeLessThan(5);
    expect(metricSum(text, 'keygate_propagation_max_staleness_seconds')).toBe(30);
    expect(metricSum(text, 'keygate_key_cache_entries')).toBe(2);
    expect(metricSum(text, 'keygate_key_cache_misses_total')).toBeGreaterThanOrEqual(2);
    expect(metricSum(text, 'keygate_tokens_minted_total', { auth: 'key' })).toBe(1);
    expect(metricSum(text, 'keygate_rate_limited_total')).toBe(1);
  });

  it('name no gauge `_total`, and carry no key id or secret in any label', () => {
    expect(text).not.toMatch(/^# TYPE \S+_total gauge$/m);
    expect(text).not.toMatch(/key_[A-Za-z0-9]{6,}/);
    expect(text).not.toMatch(/kg_(live|test)_/);
  });
});

describe.skipIf(!requireRedis())('metrics of a node on Redis', () => {
  const defer = useCleanup();

  it('show each Redis circuit breaker closed, then the request path\'s open while Redis hangs, and staleness growing; promtool passes', async () => {
    const redis = await startRedis();
    defer(() => redis.cleanup());
    const node = await startNode(defer, { events: pair.events, eventsTest: pair.eventsTest, url: redis.url, keyPrefix: uniquePrefix('metrics') });
    const scrapeStatus = async (): Promise<string> => (await fetch(`${node.statusUrl}/metrics`)).text();
    let text = await scrapeStatus();
    expect(metricSum(text, 'keygate_circuit_breaker_open', { breaker: 'requests' })).toBe(0);
    expect(metricSum(text, 'keygate_circuit_breaker_open', { breaker: 'admin' })).toBe(0);
    expect(metricSamples(text).filter((s) => s.name === 'keygate_circuit_breaker_open')).toHaveLength(2);
    if (requirePromtool()) expect(promtool(['check', 'metrics'], text)).toMatchObject({ code: 0, stdout: '', stderr: '' });

    redis.pause();
    defer(() => { if (redis.running) redis.resume(); });
    // Unknown keys must be looked up in Redis: each lookup times out, and three in a row open the breaker.
    for (let i = 0; i < 4; i++) expect((await gw(node, '/v1/events', { headers: { 'x-api-key': generateSecret('live').secret } })).status).toBeGreaterThanOrEqual(400);
    const open = await pollUntil(scrapeStatus, (t) => metricSum(t, 'keygate_circuit_breaker_open', { breaker: 'requests' }) === 1, 5_000, 100);
    expect(open.ok).toBe(true);
    text = open.value;
    expect(metricSum(text, 'keygate_propagation_staleness_seconds')).toBeGreaterThan(0.1);
    redis.resume();
    const closed = await pollUntil(scrapeStatus, (t) => metricSum(t, 'keygate_circuit_breaker_open', { breaker: 'requests' }) === 0
      && metricSum(t, 'keygate_propagation_staleness_seconds') < 2, 10_000, 100);
    expect(closed.ok).toBe(true);
  });
});
