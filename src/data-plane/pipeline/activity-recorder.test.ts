import { describe, expect, it } from 'vitest';
import { parseIp } from '../../domain/cidr.js';
import type { ActivityRecord } from '../../store/types.js';
import { ActivityRecorder } from './activity-recorder.js';
import type { RequestContext } from './context.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const peerIp = parseIp('10.0.0.1');

/** As much of a request as the recorder reads. */
function ctx(requestId: string, clientIp: string | null = '10.0.0.1', method = 'GET'): RequestContext {
  return {
    requestId,
    req: { method },
    route: { name: 'list-events' },
    clientIp: clientIp === null ? null : clientIp === '10.0.0.1' ? peerIp : parseIp(clientIp),
    peer: { ip: peerIp, text: '10.0.0.1' },
  } as unknown as RequestContext;
}

function sink() {
  const s = {
    failing: false,
    batches: [] as ActivityRecord[][],
    fn: async (records: ActivityRecord[]) => {
      if (s.failing) throw new Error('store down');
      s.batches.push(records);
    },
  };
  return s;
}

describe('ActivityRecorder', () => {
  it('hands over each request as a record: method, route name, status, outcome, client IP, request id, time', async () => {
    const s = sink();
    const rec = new ActivityRecorder(s.fn, { keepPerKey: 100 });
    rec.record(ctx('r1'), 'key_a', 200, 'OK', T0);
    rec.record(ctx('r2', '2001:db8::7', 'POST'), 'key_b', 403, 'PERMISSION_DENIED', T0 + 5);
    rec.record(ctx('r3', null), 'key_a', 499, 'CLIENT_CLOSED', T0 + 9);
    await rec.flush();
    expect(s.batches).toEqual([[
      { keyId: 'key_a', at: new Date(T0).toISOString(), requestId: 'r1', method: 'GET', route: 'list-events', status: 200, outcome: 'OK', clientIp: '10.0.0.1' },
      { keyId: 'key_b', at: new Date(T0 + 5).toISOString(), requestId: 'r2', method: 'POST', route: 'list-events', status: 403, outcome: 'PERMISSION_DENIED', clientIp: '2001:db8::7' },
      { keyId: 'key_a', at: new Date(T0 + 9).toISOString(), requestId: 'r3', method: 'GET', route: 'list-events', status: 499, outcome: 'CLIENT_CLOSED', clientIp: null },
    ]]);
    await rec.flush();
    expect(s.batches).toHaveLength(1);
  });

  it('sends no more of one key than the store keeps: its newest', async () => {
    const s = sink();
    const rec = new ActivityRecorder(s.fn, { keepPerKey: 2 });
    for (let i = 0; i < 5; i++) rec.record(ctx(`a${i}`), 'key_a', 200, 'OK', T0 + i);
    rec.record(ctx('b0'), 'key_b', 200, 'OK', T0);
    await rec.flush();
    expect(s.batches[0]!.map((r) => r.requestId)).toEqual(['a3', 'a4', 'b0']);
  });

  it('keeps a batch the store refused for the next flush, and bounds what waits', async () => {
    const s = sink();
    const rec = new ActivityRecorder(s.fn, { keepPerKey: 100, maxPending: 3 });
    s.failing = true;
    rec.record(ctx('r1'), 'key_a', 200, 'OK', T0);
    rec.record(ctx('r2'), 'key_a', 200, 'OK', T0 + 1);
    await rec.flush();
    rec.record(ctx('r3'), 'key_a', 200, 'OK', T0 + 2);
    rec.record(ctx('r4'), 'key_a', 200, 'OK', T0 + 3);
    expect(rec.dropped).toBe(1);
    s.failing = false;
    await rec.flush();
    expect(s.batches.map((b) => b.map((r) => r.requestId))).toEqual([['r1', 'r2', 'r3']]);
  });

  it('merges a worker\'s records with its own', async () => {
    const s = sink();
    const rec = new ActivityRecorder(s.fn, { keepPerKey: 100 });
    const fromWorker: ActivityRecord = { keyId: 'key_w', at: new Date(T0).toISOString(), requestId: 'w1', method: 'GET', route: 'r', status: 200, outcome: 'OK', clientIp: '192.0.2.1' };
    rec.merge([fromWorker]);
    await rec.stop();
    expect(s.batches).toEqual([[fromWorker]]);
  });
});
