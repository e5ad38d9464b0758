import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../observability/metrics.js';
import type { KeyStore, NodeReport } from '../store/types.js';
import { atMost, liveInstances, startHeartbeat } from './heartbeat.js';

const NOW = Date.parse('2030-01-01T12:00:00.000Z');

function report(id: string, ageMs: number, over: Partial<NodeReport> = {}): NodeReport {
  return { id, role: 'gateway', appliedVersion: 1, reportedAt: new Date(NOW - ageMs).toISOString(), ...over };
}

describe('liveInstances', () => {
  it('is 1 when no node reports, counting this process', () => {
    expect(liveInstances([], NOW)).toBe(1);
  });

  it('counts distinct instances, not nodes: the workers of one process count once', () => {
    const nodes = [
      report('a/worker-1', 0, { instance: 'a' }),
      report('a/worker-2', 1_000, { instance: 'a' }),
      report('b/worker-1', 2_000, { instance: 'b' }),
      report('c/worker-1', 3_000, { instance: 'c' }),
      report('c/worker-2', 3_000, { instance: 'c' }),
    ];
    expect(liveInstances(nodes, NOW)).toBe(3);
  });

  it('falls back to the node id when a report names no instance', () => {
    expect(liveInstances([report('n1', 0), report('n2', 0), report('n2', 10)], NOW)).toBe(2);
    expect(liveInstances([report('n1', 0), report('x', 0, { instance: 'n1' })], NOW)).toBe(1);
  });

  it('counts only reports of the last 15 s', () => {
    const nodes = [
      report('fresh', 0, { instance: 'fresh' }),
      report('edge', 15_000, { instance: 'edge' }),
      report('gone', 15_001, { instance: 'gone' }),
      report('long-gone', 3_600_000, { instance: 'long-gone' }),
    ];
    expect(liveInstances(nodes, NOW)).toBe(2);
  });

  it('counts an instance live when any of its nodes reported recently', () => {
    expect(liveInstances([report('p/1', 60_000, { instance: 'p' }), report('p/2', 1_000, { instance: 'p' }), report('q/1', 60_000, { instance: 'q' })], NOW)).toBe(1);
  });

  it('ignores admin nodes', () => {
    expect(liveInstances([report('g', 0), report('adm1', 0, { role: 'admin' }), report('adm2', 0, { role: 'admin' })], NOW)).toBe(1);
  });

  it('is at least 1 when every report is stale or from an admin node', () => {
    expect(liveInstances([report('old', 20_000), report('adm', 0, { role: 'admin' })], NOW)).toBe(1);
  });
});

describe('startHeartbeat', () => {
  it('drops an exited node only after a beat already under way, so that beat cannot list it again', async () => {
    const calls: string[] = [];
    let release: () => void = () => undefined;
    const slowReport = new Promise<void>((resolve) => { release = resolve; });
    const store = {
      reportNode: async (r: NodeReport) => { calls.push(`report ${r.id}`); await slowReport; },
      forgetNode: async (id: string) => { calls.push(`forget ${id}`); },
      listNodes: async () => [],
    } as unknown as KeyStore;
    const heartbeat = startHeartbeat({ store, metrics: new Metrics(), logger: pino({ level: 'silent' }), reports: () => [report('w1', 0)], onInstances: () => undefined });
    try {
      const beat = heartbeat.beat();
      await new Promise((r) => setImmediate(r));
      const forgotten = heartbeat.forget('w1');
      await new Promise((r) => setImmediate(r));
      expect(calls).toEqual(['report w1']);
      release();
      await Promise.all([beat, forgotten]);
      expect(calls).toEqual(['report w1', 'forget w1']);
    } finally {
      heartbeat.stop();
    }
  });

  it('counts a failed forget as a store error and goes on beating', async () => {
    const metrics = new Metrics();
    const store = {
      reportNode: async () => undefined,
      forgetNode: async () => { throw new Error('store down'); },
      listNodes: async () => [report('w2', 0, { instance: 'a' }), report('w3', 0, { instance: 'b' })],
    } as unknown as KeyStore;
    let instances = 0;
    const heartbeat = startHeartbeat({ store, metrics, logger: pino({ level: 'silent' }), reports: () => [], onInstances: (n) => { instances = n; } });
    try {
      await heartbeat.forget('w1');
      await heartbeat.beat();
      expect(instances).toBe(2);
      expect((await metrics.storeErrors.get()).values.find((v) => v.labels.operation === 'heartbeat')?.value).toBe(1);
    } finally {
      heartbeat.stop();
    }
  });
});

describe('atMost', () => {
  it('stops waiting for a promise that never settles (a hung store) after the bound', async () => {
    const started = Date.now();
    await atMost(new Promise<void>(() => undefined), 50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('returns as soon as the promise settles, and passes its rejection on', async () => {
    const started = Date.now();
    await atMost(Promise.resolve(), 10_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(atMost(Promise.reject(new Error('boom')), 10_000)).rejects.toThrow('boom');
  });
});
