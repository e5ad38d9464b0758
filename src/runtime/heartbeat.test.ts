import { describe, expect, it } from 'vitest';
import type { NodeReport } from '../store/types.js';
import { liveInstances } from './heartbeat.js';

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
