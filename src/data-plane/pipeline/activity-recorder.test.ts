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
    // Key by key, each key's in the order they came.
    expect(s.batches).toEqual([[
      { keyId: 'key_a', at: new Date(T0).toISOString(), requestId: 'r1', method: 'GET', route: 'list-events', status: 200, outcome: 'OK', clientIp: '10.0.0.1' },
      { keyId: 'key_a', at: new Date(T0 + 9).toISOString(), requestId: 'r3', method: 'GET', route: 'list-events', status: 499, outcome: 'CLIENT_CLOSED', clientIp: null },
      { keyId: 'key_b', at: new Date(T0 + 5).toISOString(), requestId: 'r2', method: 'POST', route: 'list-events', status: 403, outcome: 'PERMISSION_DENIED', clientIp: '2001:db8::7' },
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

  it('keeps a batch the store refused for the next flush, ahead of newer requests, and bounds what waits', async () => {
    const s = sink();
    const rec = new ActivityRecorder(s.fn, { keepPerKey: 100, maxPending: 3 });
    s.failing = true;
    for (let i = 1; i <= 4; i++) rec.record(ctx(`r${i}`), 'key_a', 200, 'OK', T0 + i);
    await rec.flush();
    expect(rec.dropped).toBe(1);
    rec.record(ctx('r5'), 'key_a', 200, 'OK', T0 + 5);
    s.failing = false;
    await rec.flush();
    expect(s.batches.map((b) => b.map((r) => r.requestId))).toEqual([['r2', 'r3', 'r4', 'r5']]);
  });

  it('reuses a busy key\'s slots round after round, and lets an idle key go', async () => {
    const s = sink();
    const rec = new ActivityRecorder(s.fn, { keepPerKey: 3 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) rec.record(ctx(`k${round}-${i}`), 'key_a', 200, 'OK', T0 + round * 100 + i);
      await rec.flush();
    }
    expect(s.batches.map((b) => b.map((r) => r.requestId))).toEqual([['k0-7', 'k0-8', 'k0-9'], ['k1-7', 'k1-8', 'k1-9'], ['k2-7', 'k2-8', 'k2-9']]);
    rec.record(ctx('once'), 'key_b', 200, 'OK', T0);
    await rec.flush();
    await rec.flush();
    await rec.flush();
    expect((rec as unknown as { rings: Map<string, unknown> }).rings.size).toBe(0);
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
