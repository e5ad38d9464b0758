import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

describe('HotCounter', () => {
  it('returns the same child for the same label set', () => {
    const c = new HotCounter('keygate_c_total', 'help');
    expect(c.labels({ a: '1', b: '2' })).toBe(c.labels({ a: '1', b: '2' }));
  });

  it('returns the same child whatever the order of the label names', () => {
    const c = new HotCounter('keygate_c_total', 'help');
    expect(c.labels({ a: '1', b: '2' })).toBe(c.labels({ b: '2', a: '1' }));
  });

  it('returns different children for different label values', () => {
    const c = new HotCounter('keygate_c_total', 'help');
    expect(c.labels({ a: '1' })).not.toBe(c.labels({ a: '2' }));
  });

  it('does not confuse label sets whose concatenated text is the same', () => {
    const c = new HotCounter('keygate_c_total', 'help');
    expect(c.labels({ a: 'bc' })).not.toBe(c.labels({ ab: 'c' }));
  });

  it('counts increments per label set', async () => {
    const c = new HotCounter('keygate_c_total', 'help');
    c.labels({ code: 'OK' }).inc();
    c.labels({ code: 'OK' }).inc(2);
    c.labels({ code: 'DENIED' }).inc();
    const json = await c.get();
    expect(json).toMatchObject({ name: 'keygate_c_total', help: 'help', type: 'counter', aggregator: 'sum' });
    expect(json.values).toEqual([
      { labels: { code: 'OK' }, value: 3 },
      { labels: { code: 'DENIED' }, value: 1 },
    ]);
  });

  it('does not let a caller mutate the labels of a child through the object it passed', async () => {
    const c = new HotCounter('keygate_c_total', 'help');
    const labels = { code: 'OK' };
    c.labels(labels).inc();
    labels.code = 'CHANGED';
    expect((await c.get()).values[0]?.labels).toEqual({ code: 'OK' });
  });

  it('supports a counter without labels', async () => {
    const c = new HotCounter('keygate_c_total', 'help');
    c.labels().inc(5);
    expect((await c.get()).values).toEqual([{ labels: {}, value: 5 }]);
  });
});

describe('HotHistogram', () => {
  const BOUNDS = [0.001, 0.01, 0.1];

  it('returns the same child for the same label set', () => {
    const h = new HotHistogram('keygate_h_seconds', 'help', BOUNDS);
    expect(h.labels({ kind: 'total' })).toBe(h.labels({ kind: 'total' }));
  });

  it('reports cumulative buckets, +Inf, sum and count', async () => {
    const h = new HotHistogram('keygate_h_seconds', 'help', BOUNDS);
    const child = h.labels({ kind: 'total' });
    child.observe(0.0005);
    child.observe(0.005);
    child.observe(0.005);
    child.observe(0.05);
    child.observe(5);
    const json = await h.get();
    expect(json).toMatchObject({ name: 'keygate_h_seconds', type: 'histogram', aggregator: 'sum' });
    expect(json.values).toEqual([
      { labels: { kind: 'total', le: '0.001' }, value: 1, metricName: 'keygate_h_seconds_bucket' },
      { labels: { kind: 'total', le: '0.01' }, value: 3, metricName: 'keygate_h_seconds_bucket' },
      { labels: { kind: 'total', le: '0.1' }, value: 4, metricName: 'keygate_h_seconds_bucket' },
      { labels: { kind: 'total', le: '+Inf' }, value: 5, metricName: 'keygate_h_seconds_bucket' },
      { labels: { kind: 'total' }, value: expect.closeTo(5.0605, 10) as number, metricName: 'keygate_h_seconds_sum' },
      { labels: { kind: 'total' }, value: 5, metricName: 'keygate_h_seconds_count' },
    ]);
  });

  it('counts an observation equal to a bound in that bucket', async () => {
    const h = new HotHistogram('keygate_h_seconds', 'help', BOUNDS);
    h.labels().observe(0.01);
    const buckets = (await h.get()).values.filter((v) => v.metricName === 'keygate_h_seconds_bucket').map((v) => v.value);
    expect(buckets).toEqual([0, 1, 1, 1]);
  });

  it('keeps the series of different label sets apart', async () => {
    const h = new HotHistogram('keygate_h_seconds', 'help', BOUNDS);
    h.labels({ kind: 'a' }).observe(0.0001);
    h.labels({ kind: 'b' }).observe(1);
    const counts = (await h.get()).values.filter((v) => v.metricName === 'keygate_h_seconds_count');
    expect(counts).toEqual([
      { labels: { kind: 'a' }, value: 1, metricName: 'keygate_h_seconds_count' },
      { labels: { kind: 'b' }, value: 1, metricName: 'keygate_h_seconds_count' },
    ]);
  });
});

describe('hot metrics in a prom-client registry', () => {
  it('prints a histogram as valid exposition text', async () => {
    const registry = new Registry();
    const h = new HotHistogram('keygate_x', 'A test histogram', [0.001, 0.01]);
    registry.registerMetric(h as any);
    h.labels({ kind: 'total' }).observe(0.0005);
    h.labels({ kind: 'total' }).observe(0.5);
    const text = await registry.metrics();
    expect(text).toContain('# HELP keygate_x A test histogram');
    expect(text).toContain('# TYPE keygate_x histogram');
    expect(text).toContain('keygate_x_bucket{kind="total",le="0.001"} 1');
    expect(text).toContain('keygate_x_bucket{kind="total",le="0.01"} 1');
    expect(text).toContain('keygate_x_bucket{kind="total",le="+Inf"} 2');
    expect(text).toContain('keygate_x_sum{kind="total"} 0.5005');
    expect(text).toContain('keygate_x_count{kind="total"} 2');
  });

  it('prints a counter as valid exposition text', async () => {
    const registry = new Registry();
    const c = new HotCounter('keygate_requests_total', 'Requests');
    registry.registerMetric(c as any);
    c.labels({ route: 'events', code: 'OK' }).inc(3);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE keygate_requests_total counter');
    expect(text).toMatch(/^keygate_requests_total\{(route="events",code="OK"|code="OK",route="events")\} 3$/m);
  });

  it('escapes label values in the exposition text', async () => {
    const registry = new Registry();
    const c = new HotCounter('keygate_esc_total', 'Escapes');
    registry.registerMetric(c as any);
    c.labels({ route: 'a"b\\c\nd' }).inc();
    expect(await registry.metrics()).toContain('keygate_esc_total{route="a\\"b\\\\c\\nd"} 1');
  });
});
