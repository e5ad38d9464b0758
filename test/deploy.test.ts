// deploy/: the Prometheus alert rules (`promtool check rules`, and `promtool test rules` on
// their unit tests) and the Grafana dashboard (valid JSON, every query valid PromQL, the
// topics an operator looks for), and every metric either names is one a real keygate exports.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { stopAndClean } from './support/admin.js';
import { gatewayConfig } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { promtool, requirePromtool } from './support/promtool.js';
import { useUpstreamPair } from './support/upstream.js';

const DEPLOY = resolve(import.meta.dirname, '..', 'deploy');
const RULES = join(DEPLOY, 'prometheus', 'keygate-alerts.yml');
const RULES_TEST = join(DEPLOY, 'prometheus', 'keygate-alerts.test.yml');
const DASHBOARD = join(DEPLOY, 'grafana', 'keygate-dashboard.json');

interface Panel { type: string; title: string; panels?: Panel[]; targets?: Array<{ expr: string }> }
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ name: string }> } };
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const exprs = allPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

/** A dashboard query as plain PromQL: Grafana's variables replaced by what they stand for. */
const asPromql = (expr: string): string => expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*').replaceAll('$instance', '.*');

describe('alert rules', () => {
  it('pass `promtool check rules`', () => {
    if (!requirePromtool()) return;
    const r = promtool(['check', 'rules', RULES]);
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: 5 rules found/);
    expect(r.code).toBe(0);
  });

  it('pass their unit tests (`promtool test rules`): each alert fires when it should and not before', () => {
    if (!requirePromtool()) return;
    const r = promtool(['test', 'rules', RULES_TEST], undefined, join(DEPLOY, 'prometheus'));
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.code).toBe(0);
  });

  it('include high 5xx ratio, propagation stale, Redis fallback and upstream timeouts, each unit-tested', () => {
    const rules = readFileSync(RULES, 'utf8');
    const tests = readFileSync(RULES_TEST, 'utf8');
    for (const alert of ['KeygateHigh5xxRatio', 'KeygatePropagationStale', 'KeygateRedisFallbackActive', 'KeygateRedisCircuitOpen', 'KeygateUpstreamTimeouts']) {
      expect(rules).toContain(`alert: ${alert}`);
      expect(tests).toContain(`alertname: ${alert}`);
    }
  });
});

describe('Grafana dashboard', () => {
  it('has a panel for traffic, errors by code, latency per route, upstream health, propagation freshness, Redis fallbacks and the cache', () => {
    expect(dashboard.uid).toBe('keygate-overview');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'instance']);
    const titles = allPanels.map((p) => p.title).join('\n');
    for (const topic of [/Requests per second by route/, /Errors by code/, /p99 latency per route/, /Upstream errors by kind/, /Upstream p99 latency/,
      /Propagation staleness/, /Rate-limit fallbacks/, /Redis circuit breakers/, /Key cache hit ratio/, /Key cache entries/]) {
      expect(titles).toMatch(topic);
    }
    expect(exprs.length).toBeGreaterThan(20);
  });

  it('queries only valid PromQL (checked by promtool as recording rules)', () => {
    if (!requirePromtool()) return;
    const dir = mkdtempSync(join(tmpdir(), 'keygate-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((e, i) => ({ record: `keygate:dashboard_query_${i}`, expr: asPromql(e) })) }] }));
      const r = promtool(['check', 'rules', file]);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metric names in deploy/', () => {
  const pair = useUpstreamPair();
  let kg: Keygate;
  let families: Set<string>;
  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest }) });
    const text = await (await fetch(`${kg.statusUrl}/metrics`)).text();
    families = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
      type === 'histogram' ? [name!, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!]));
  });
  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('are all exported by keygate (rules, their tests and the dashboard)', () => {
    const used = new Set<string>();
    for (const text of [readFileSync(RULES, 'utf8'), readFileSync(RULES_TEST, 'utf8'), exprs.join('\n')]) {
      for (const [name] of text.matchAll(/\bkeygate_[a-z0-9_]+/g)) used.add(name);
    }
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter((n) => !families.has(n));
    expect(missing).toEqual([]);
  });
});
