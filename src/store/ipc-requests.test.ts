import { describe, expect, it, vi } from 'vitest';
import { IpcRequests } from './ipc-requests.js';

interface Ask { t: 'ask'; id: number; q: string }
interface Tell { t: 'tell'; id: number; a: string }

const outcome = {
  answer: (m: Tell): string => {
    if (m.a === 'bad') throw new Error('the other side failed');
    return m.a;
  },
  failed: (m: Ask, err: Error): string => `failed ${m.q}: ${err.message}`,
};

describe('IpcRequests', () => {
  it('settles each request with the reply that carries its id, in whatever order replies come', async () => {
    const sent: Ask[] = [];
    const r = new IpcRequests<Ask, Tell, string>((m) => sent.push(m), 1_000, 'timed out', outcome);
    const a = r.request({ t: 'ask', id: r.id(), q: 'a' });
    const b = r.request({ t: 'ask', id: r.id(), q: 'b' });
    expect(sent.map((m) => m.id)).toEqual([0, 1]);
    r.reply({ t: 'tell', id: 1, a: 'B' });
    r.reply({ t: 'tell', id: 0, a: 'A' });
    await expect(Promise.all([a, b])).resolves.toEqual(['A', 'B']);
  });

  it('comes to the failure outcome with the timeout message when no reply comes in time, and drops a late reply', async () => {
    vi.useFakeTimers();
    try {
      const r = new IpcRequests<Ask, Tell, string>(() => undefined, 250, 'timed out', outcome);
      const a = r.request({ t: 'ask', id: r.id(), q: 'a' });
      vi.advanceTimersByTime(250);
      await expect(a).resolves.toBe('failed a: timed out');
      expect(() => r.reply({ t: 'tell', id: 0, a: 'late' })).not.toThrow();
    } finally {
      vi.useRealTimers();
    }
  });

  it('comes to the failure outcome with the error of a send that throws, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    try {
      const r = new IpcRequests<Ask, Tell, string>(() => { throw new Error('channel closed'); }, 250, 'timed out', outcome);
      await expect(r.request({ t: 'ask', id: r.id(), q: 'a' })).resolves.toBe('failed a: channel closed');
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rejects when the outcome throws, for a reply or for a failure', async () => {
    const rejecting = { answer: outcome.answer, failed: (_m: Ask, err: Error): string => { throw err; } };
    const r = new IpcRequests<Ask, Tell, string>(() => undefined, 20, 'timed out', rejecting);
    const a = r.request({ t: 'ask', id: r.id(), q: 'a' });
    r.reply({ t: 'tell', id: 0, a: 'bad' });
    await expect(a).rejects.toThrow('the other side failed');
    await expect(r.request({ t: 'ask', id: r.id(), q: 'b' })).rejects.toThrow('timed out');
  });
});
