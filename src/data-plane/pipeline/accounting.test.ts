import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { newPeer } from '../request/peer.js';
import { Metrics } from '../../observability/metrics.js';
import { Accounting, type Accounted } from './accounting.js';
import { UsageRecorder } from './usage-recorder.js';

function setup(): { metrics: Metrics; accounting: Accounting } {
  const metrics = new Metrics();
  const accounting = new Accounting({ metrics, logger: pino({ level: 'silent' }), usage: new UsageRecorder(async () => undefined), accessLog: null });
  return { metrics, accounting };
}

/** A request's accounting view: arrived at `started`, with no key. */
function request(started: number): Accounted {
  const req = new IncomingMessage(new Socket());
  req.method = 'POST';
  return { req, requestId: 'req', trace: { traceId: '1'.repeat(32), flags: '01', tracestate: null }, started, policy: null, clientIp: null, peer: newPeer(null, '127.0.0.1', false) };
}

async function requestCounts(metrics: Metrics): Promise<Record<string, number>> {
  const json = await metrics.requests.get();
  return Object.fromEntries(json.values.map((v) => [`${v.labels.route} ${v.labels.outcome} ${v.labels.status_class}`, v.value]));
}

describe('Accounting', () => {
  it('counts by route, outcome and status class, each class apart; an upstream 5xx is UPSTREAM_ERROR', async () => {
    const { metrics, accounting } = setup();
    const started = performance.now();
    for (const [status, outcome] of [[200, 'OK'], [200, 'OK'], [404, 'OK'], [304, 'OK'], [503, 'OK'], [502, 'UPSTREAM_UNAVAILABLE'], [499, 'CLIENT_CLOSED'], [429, 'RATE_LIMITED']] as const) {
      accounting.finish(request(started), 'send-events', status, outcome, 0);
    }
    accounting.count('unmatched', 'BAD_REQUEST', 400);
    expect(await requestCounts(metrics)).toEqual({
      'send-events OK 2xx': 2,
      'send-events OK 4xx': 1,
      'send-events OK 3xx': 1,
      'send-events UPSTREAM_ERROR 5xx': 1,
      'send-events UPSTREAM_UNAVAILABLE 5xx': 1,
      'send-events CLIENT_CLOSED 4xx': 1,
      'send-events RATE_LIMITED 4xx': 1,
      'unmatched BAD_REQUEST 4xx': 1,
    });
  });

  it('times each route apart, total and overhead (without the upstream time)', async () => {
    const { metrics, accounting } = setup();
    const started = performance.now() - 50;
    accounting.finish(request(started), 'a', 200, 'OK', 40);
    accounting.finish(request(started), 'b', 200, 'OK', 0);
    const values = (await metrics.requestDuration.get()).values.filter((v) => v.metricName === 'keygate_request_duration_seconds_sum');
    const sum = (route: string, kind: string): number => values.find((v) => v.labels.route === route && v.labels.kind === kind)!.value;
    expect(sum('a', 'total')).toBeGreaterThanOrEqual(0.05);
    expect(sum('a', 'total') - sum('a', 'overhead')).toBeCloseTo(0.04, 6);
    expect(sum('b', 'total')).toBeCloseTo(sum('b', 'overhead'), 6);
  });
});
