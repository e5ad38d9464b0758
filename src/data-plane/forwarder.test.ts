import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientResponseHeaders, UpstreamClocks, type Clocked } from './forwarder.js';

const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));

describe('clientResponseHeaders', () => {
  it('keeps end-to-end fields in order with their case, repeated fields included, and adds the request id', () => {
    const out = clientResponseHeaders(raw('Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'ETag', '"x"'), 'req1');
    expect(out).toEqual(['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'ETag', '"x"', 'x-request-id', 'req1']);
  });

  it('drops hop-by-hop fields and every field a Connection header names, in any case', () => {
    const out = clientResponseHeaders(raw(
      'Connection', 'keep-alive, X-Hop', 'connection', 'x-other', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked',
      'X-Hop', '1', 'X-OTHER', '2', 'X-Kept', '3', 'Upgrade', 'h2c', 'Trailer', 'x-t',
    ), 'req2');
    expect(out).toEqual(['X-Kept', '3', 'x-request-id', 'req2']);
  });

  it("adds the gateway's RateLimit-* fields after the request id, replacing any the upstream sent under those names in any case", () => {
    const limits = { 'ratelimit-limit': '10', 'ratelimit-remaining': '9', 'ratelimit-reset': '60' };
    const out = clientResponseHeaders(raw('RateLimit-Limit', '1000', 'Content-Type', 'text/plain', 'ratelimit-remaining', '999', 'RateLimit-Policy', '"p";q=1000'), 'r', limits);
    expect(out).toEqual([
      'Content-Type', 'text/plain', 'RateLimit-Policy', '"p";q=1000', 'x-request-id', 'r',
      'ratelimit-limit', '10', 'ratelimit-remaining', '9', 'ratelimit-reset', '60',
    ]);
  });

  it("replaces the upstream's own X-Request-Id with the gateway's", () => {
    const out = clientResponseHeaders(raw('X-Request-Id', 'upstream-id', 'x-request-id', 'again', 'Content-Length', '2'), 'gw-id');
    expect(out).toEqual(['Content-Length', '2', 'x-request-id', 'gw-id']);
  });

  it('passes header values byte for byte (latin1), as the upstream sent them', () => {
    const value = Buffer.from([0x63, 0xe9, 0x20, 0x7e]); // "cé ~" in latin1
    const out = clientResponseHeaders([Buffer.from('X-Name'), value], 'r');
    expect(Buffer.from(out[1]!, 'latin1')).toEqual(value);
  });
});

describe('UpstreamClocks', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A clock list whose sweep suits `timeoutMs`. */
  const clocksFor = (timeoutMs: number): UpstreamClocks => {
    const clocks = new UpstreamClocks();
    clocks.register(timeoutMs);
    return clocks;
  };

  /** Like the gateway's exchanges, one that times out settles and leaves the list at once. */
  const exchange = (clocks: UpstreamClocks, timeoutMs: number): Clocked & { fired: number } => {
    const x: Clocked & { fired: number } = {
      progressAt: performance.now(), timeoutMs, prev: null, next: null, fired: 0,
      timedOut: () => {
        x.fired++;
        clocks.remove(x);
      },
    };
    return x;
  };

  it('times an exchange out once it has made no progress for its timeoutMs, within a tenth of it, and never before', () => {
    const clocks = clocksFor(1_000);
    const x = exchange(clocks, 1_000);
    clocks.add(x);
    vi.advanceTimersByTime(900);
    expect(x.fired).toBe(0);
    // Progress starts its clock again.
    x.progressAt = performance.now();
    vi.advanceTimersByTime(999);
    expect(x.fired).toBe(0);
    vi.advanceTimersByTime(100);
    expect(x.fired).toBe(1);
  });

  it('keeps each exchange to its own timeoutMs, sweeping finely enough for the shortest one registered', () => {
    const clocks = clocksFor(10_000);
    const slow = exchange(clocks, 10_000);
    clocks.add(slow);
    clocks.register(200);
    const fast = exchange(clocks, 200);
    clocks.add(fast);
    vi.advanceTimersByTime(220);
    expect(fast.fired).toBe(1);
    expect(slow.fired).toBe(0);
  });

  it('forgets a removed exchange, keeps the others, and stops sweeping once none is in flight', () => {
    const clocks = clocksFor(100);
    const [a, b, c] = [exchange(clocks, 100), exchange(clocks, 100), exchange(clocks, 100)];
    clocks.add(a);
    clocks.add(b);
    clocks.add(c);
    expect(clocks.running).toBe(true);
    clocks.remove(b);
    vi.advanceTimersByTime(110);
    expect([a.fired, b.fired, c.fired]).toEqual([1, 0, 1]);
    vi.advanceTimersByTime(20);
    expect(clocks.running).toBe(false);
    clocks.add(b);
    expect(clocks.running).toBe(true);
  });

  it('times out every idle exchange in one sweep though each leaves the list as it goes', () => {
    const clocks = clocksFor(100);
    const all = Array.from({ length: 5 }, () => exchange(clocks, 100));
    for (const x of all) clocks.add(x);
    vi.advanceTimersByTime(100);
    expect(all.map((x) => x.fired)).toEqual([1, 1, 1, 1, 1]);
  });

  it('ignores an exchange added twice or removed when it is not on the list', () => {
    const clocks = clocksFor(100);
    const [a, b] = [exchange(clocks, 100), exchange(clocks, 100)];
    clocks.add(a);
    clocks.add(a);
    clocks.remove(b);
    clocks.add(b);
    vi.advanceTimersByTime(100);
    expect([a.fired, b.fired]).toEqual([1, 1]);
    vi.advanceTimersByTime(20);
    expect(clocks.running).toBe(false);
  });
});
