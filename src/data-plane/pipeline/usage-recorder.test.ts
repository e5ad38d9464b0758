import { afterEach, describe, expect, it, vi } from 'vitest';
import type { UsageDelta } from '../../store/types.js';
import { UsageRecorder } from './usage-recorder.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');

/** A sink that records every batch and fails while `failing` is set. */
function recordingSink() {
  const batches: UsageDelta[][] = [];
  const sink = {
    failing: false,
    batches,
    fn: async (deltas: UsageDelta[]) => {
      if (sink.failing) throw new Error('store down');
      batches.push(deltas);
    },
  };
  return sink;
}

const byKey = (deltas: UsageDelta[]) => Object.fromEntries(deltas.map((d) => [d.keyId, d]));

afterEach(() => {
  vi.useRealTimers();
});

describe('UsageRecorder', () => {
  it('sends one delta per key with counts by outcome and the latest use', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    rec.record('key_a', 'ok', T0 + 2000);
    rec.record('key_a', 'ok', T0 + 1000);
    rec.record('key_a', 'RATE_LIMITED', T0 + 3000);
    rec.record('key_b', 'ok', T0);
    await rec.flush();
    expect(sink.batches).toHaveLength(1);
    expect(sink.batches[0]).toHaveLength(2);
    expect(byKey(sink.batches[0]!)).toEqual({
      key_a: { keyId: 'key_a', byOutcome: { ok: 2, RATE_LIMITED: 1 }, lastUsedAt: new Date(T0 + 3000).toISOString() },
      key_b: { keyId: 'key_b', byOutcome: { ok: 1 }, lastUsedAt: new Date(T0).toISOString() },
    });
  });

  it('does not call the sink when nothing was recorded', async () => {
    const sink = recordingSink();
    await new UsageRecorder(sink.fn).flush();
    expect(sink.batches).toHaveLength(0);
  });

  it('does not send the same counts twice', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    rec.record('key_a', 'ok', T0);
    await rec.flush();
    await rec.flush();
    expect(sink.batches).toHaveLength(1);
  });

  it('keeps the counts of a failed flush and merges them with new ones', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    rec.record('key_a', 'ok', T0 + 5000);
    rec.record('key_a', 'KEY_DISABLED', T0);
    sink.failing = true;
    await rec.flush();
    expect(sink.batches).toHaveLength(0);
    sink.failing = false;
    rec.record('key_a', 'ok', T0 + 1000);
    rec.record('key_b', 'ok', T0 + 2000);
    await rec.flush();
    expect(sink.batches).toHaveLength(1);
    expect(byKey(sink.batches[0]!)).toEqual({
      key_a: { keyId: 'key_a', byOutcome: { ok: 2, KEY_DISABLED: 1 }, lastUsedAt: new Date(T0 + 5000).toISOString() },
      key_b: { keyId: 'key_b', byOutcome: { ok: 1 }, lastUsedAt: new Date(T0 + 2000).toISOString() },
    });
  });

  it('keeps counts recorded while a flush is in flight for the next flush', async () => {
    let release!: () => void;
    const batches: UsageDelta[][] = [];
    const rec = new UsageRecorder(async (deltas) => {
      batches.push(deltas);
      if (batches.length === 1) await new Promise<void>((r) => { release = r; });
    });
    rec.record('key_a', 'ok', T0);
    const first = rec.flush();
    rec.record('key_a', 'ok', T0 + 1);
    const second = rec.flush();
    release();
    await Promise.all([first, second]);
    expect(batches).toHaveLength(1);
    await rec.flush();
    expect(batches).toHaveLength(2);
    expect(batches[1]).toEqual([{ keyId: 'key_a', byOutcome: { ok: 1 }, lastUsedAt: new Date(T0 + 1).toISOString() }]);
  });

  it('flushes on stop()', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    rec.record('key_a', 'ok', T0);
    await rec.stop();
    expect(sink.batches).toEqual([[{ keyId: 'key_a', byOutcome: { ok: 1 }, lastUsedAt: new Date(T0).toISOString() }]]);
  });

  it('on stop(), waits for a flush in flight and then sends what came after it', async () => {
    let release!: () => void;
    const batches: UsageDelta[][] = [];
    const rec = new UsageRecorder(async (deltas) => {
      batches.push(deltas);
      if (batches.length === 1) await new Promise<void>((r) => { release = r; });
    });
    rec.record('key_a', 'ok', T0);
    const inFlight = rec.flush();
    rec.record('key_b', 'ok', T0);
    const stopped = rec.stop();
    release();
    await Promise.all([inFlight, stopped]);
    expect(batches.map((b) => b.map((d) => d.keyId))).toEqual([['key_a'], ['key_b']]);
  });

  it('on stop(), resends the counts of a flush in flight that fails', async () => {
    let calls = 0;
    let fail!: () => void;
    const sent: UsageDelta[][] = [];
    const rec = new UsageRecorder(async (deltas) => {
      calls++;
      if (calls === 1) return new Promise<void>((_, reject) => { fail = () => reject(new Error('store down')); });
      sent.push(deltas);
    });
    rec.record('key_a', 'ok', T0);
    const inFlight = rec.flush();
    const stopped = rec.stop();
    fail();
    await Promise.all([inFlight, stopped]);
    expect(sent).toEqual([[{ keyId: 'key_a', byOutcome: { ok: 1 }, lastUsedAt: new Date(T0).toISOString() }]]);
  });

  it('flushes on its interval once started, and no more after stop()', async () => {
    vi.useFakeTimers();
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn, 1000);
    rec.start();
    rec.record('key_a', 'ok', T0);
    await vi.advanceTimersByTimeAsync(999);
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.batches).toHaveLength(1);
    await rec.stop();
    rec.record('key_a', 'ok', T0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(sink.batches).toHaveLength(1);
  });
});

describe('UsageRecorder.merge', () => {
  const delta = (keyId: string, byOutcome: Record<string, number>, at: number): UsageDelta => ({ keyId, byOutcome, lastUsedAt: new Date(at).toISOString() });

  it('sums merged counts with this process\'s own, keeping the latest use', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    rec.record('key_a', 'ok', T0 + 1000);
    rec.record('key_a', 'ok', T0 + 1000);
    rec.merge([delta('key_a', { ok: 3, RATE_LIMITED: 2 }, T0 + 4000), delta('key_b', { ok: 1 }, T0)]);
    rec.merge([delta('key_a', { ok: 1 }, T0 + 2000)]);
    rec.record('key_b', 'KEY_DISABLED', T0 + 500);
    await rec.flush();
    expect(sink.batches).toHaveLength(1);
    expect(byKey(sink.batches[0]!)).toEqual({
      key_a: { keyId: 'key_a', byOutcome: { ok: 6, RATE_LIMITED: 2 }, lastUsedAt: new Date(T0 + 4000).toISOString() },
      key_b: { keyId: 'key_b', byOutcome: { ok: 1, KEY_DISABLED: 1 }, lastUsedAt: new Date(T0 + 500).toISOString() },
    });
  });

  it('keeps merged counts across a failed flush and sends them, summed with later ones, on the next', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    rec.merge([delta('key_a', { ok: 2 }, T0 + 3000)]);
    rec.record('key_a', 'ok', T0);
    sink.failing = true;
    await rec.flush();
    expect(sink.batches).toHaveLength(0);
    rec.merge([delta('key_a', { ok: 4, QUOTA_EXCEEDED: 1 }, T0 + 1000), delta('key_c', { ok: 1 }, T0 + 7000)]);
    await rec.flush(); // fails again: still nothing lost
    sink.failing = false;
    rec.record('key_a', 'ok', T0 + 2000);
    await rec.flush();
    expect(sink.batches).toHaveLength(1);
    expect(byKey(sink.batches[0]!)).toEqual({
      key_a: { keyId: 'key_a', byOutcome: { ok: 8, QUOTA_EXCEEDED: 1 }, lastUsedAt: new Date(T0 + 3000).toISOString() },
      key_c: { keyId: 'key_c', byOutcome: { ok: 1 }, lastUsedAt: new Date(T0 + 7000).toISOString() },
    });
    await rec.flush();
    expect(sink.batches).toHaveLength(1);
  });

  it('does not change the deltas it was given', async () => {
    const sink = recordingSink();
    const rec = new UsageRecorder(sink.fn);
    const given = [delta('key_a', { ok: 1 }, T0)];
    rec.merge(given);
    rec.record('key_a', 'ok', T0 + 1);
    rec.merge(given);
    await rec.flush();
    expect(given).toEqual([delta('key_a', { ok: 1 }, T0)]);
    expect(sink.batches[0]).toEqual([delta('key_a', { ok: 3 }, T0 + 1)]);
  });

  it('keeps counts merged while a flush is in flight for the next flush', async () => {
    let release!: () => void;
    const batches: UsageDelta[][] = [];
    const rec = new UsageRecorder(async (deltas) => {
      batches.push(deltas);
      if (batches.length === 1) await new Promise<void>((r) => { release = r; });
    });
    rec.record('key_a', 'ok', T0);
    const first = rec.flush();
    rec.merge([delta('key_a', { ok: 5 }, T0 + 1)]);
    release();
    await first;
    await rec.flush();
    expect(batches).toEqual([[delta('key_a', { ok: 1 }, T0)], [delta('key_a', { ok: 5 }, T0 + 1)]]);
  });
});
