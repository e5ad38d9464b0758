import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { retryStartup } from './startup.js';

const silent = pino({ level: 'silent' });

describe('retryStartup', () => {
  it('waits between attempts with an exponential backoff, capped, each wait between half and all of it', async () => {
    const waits: number[] = [];
    const logger = { ...silent, warn: (o: { retryInMs: number }) => { waits.push(o.retryInMs); }, info: () => undefined } as unknown as typeof silent;
    let n = 0;
    const value = await retryStartup('opening', async () => {
      if (++n < 6) throw new Error('down');
      return 'open';
    }, { timeoutMs: 10_000, logger, baseMs: 10, capMs: 40, random: () => 0.999 });
    expect(value).toBe('open');
    expect(n).toBe(6);
    expect(waits).toEqual([10, 20, 40, 40, 40]);

    const low: number[] = [];
    n = 0;
    await retryStartup('opening', async () => {
      if (++n < 4) throw new Error('down');
    }, { timeoutMs: 10_000, logger: { ...logger, warn: (o: { retryInMs: number }) => { low.push(o.retryInMs); } } as unknown as typeof silent, baseMs: 10, capMs: 40, random: () => 0 });
    expect(low).toEqual([5, 10, 20]);
  });

  it('makes its last attempt at the bound and then throws, naming the attempts and the last error', async () => {
    let n = 0;
    const started = Date.now();
    const err = await retryStartup('connecting to Redis', async () => {
      n++;
      throw new Error(`refused ${n}`);
    }, { timeoutMs: 300, logger: silent, baseMs: 100, capMs: 1_000, random: () => 0.999 }).catch((e: Error) => e);
    const ms = Date.now() - started;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`^connecting to Redis: gave up after ${n} attempts in \\d+ ms \\(store\\.startupTimeoutMs 300\\): refused ${n}$`));
    expect(n).toBe(3); // at 0, 100 and 300 ms (the wait of 200 cut to the bound)
    expect(ms).toBeGreaterThanOrEqual(295);
    expect(ms).toBeLessThan(600);
  });

  it('stops retrying once its signal is aborted: the wait is cut short, no further attempt is made, and the reason is thrown', async () => {
    let n = 0;
    const stop = new AbortController();
    const started = Date.now();
    setTimeout(() => stop.abort(new Error('stopped by SIGTERM')), 50);
    const err = await retryStartup('connecting to Redis', async () => {
      n++;
      throw new Error('refused');
    }, { timeoutMs: 60_000, logger: silent, baseMs: 5_000, capMs: 5_000, random: () => 0.999, signal: stop.signal }).catch((e: Error) => e);
    expect((err as Error).message).toBe('stopped by SIGTERM');
    expect(n).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(retryStartup('connecting to Redis', async () => { n++; }, { timeoutMs: 1_000, logger: silent, signal: stop.signal })).rejects.toThrow('stopped by SIGTERM');
    expect(n).toBe(1);
  });
});
