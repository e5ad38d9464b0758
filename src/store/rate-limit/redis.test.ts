import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Quota, RateLimit } from '../../domain/api-key.js';
import { LocalRateLimiter } from './local.js';
import type { LimitDecision } from './types.js';
import { periodEnd, periodStart } from './window.js';
import { redisCommand, requireRedis, startRedis, startRedisCluster, type RedisClusterHandle, type RedisServer } from '../../../test/support/redis-server.js';
import { RedisConnection, type RedisConnectionOptions } from '../redis/connection.js';
import { RedisRateLimiter } from './redis.js';

const logger = pino({ level: 'silent' });

const keyId = (): string => `key_${randomBytes(6).toString('hex')}`;
const admitted = (decisions: LimitDecision[]): number => decisions.filter((d) => d.ok).length;

/** The start of a fixed window of `size` ms, `windows` windows from now (quota and expiry stay real). */
const windowStart = (size: number, windows = 1): number => Math.floor(Date.now() / size) * size + windows * size;

describe.skipIf(!requireRedis())('RedisRateLimiter', () => {
  let server: RedisServer;
  const connections: RedisConnection[] = [];

  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server?.cleanup(); });
  afterEach(async () => {
    await Promise.all(connections.splice(0).map((c) => c.close()));
    if (!server.running) await server.restart();
  });

  async function connection(over: Partial<RedisConnectionOptions> = {}): Promise<RedisConnection> {
    const conn = new RedisConnection({ url: server.url, keyPrefix: 'rl-test:', logger, ...over });
    connections.push(conn);
    await conn.connect();
    return conn;
  }

  interface Made { limiter: RedisRateLimiter; conn: RedisConnection; fallbacks: { n: number } }

  async function limiter(opts: {
    onStoreError?: 'local' | 'allow' | 'deny';
    liveInstances?: () => number;
    conn?: Partial<RedisConnectionOptions>;
  } = {}): Promise<Made> {
    const conn = await connection(opts.conn);
    const fallbacks = { n: 0 };
    const l = new RedisRateLimiter(conn, opts.onStoreError ?? 'local', opts.liveInstances ?? (() => 1), () => { fallbacks.n++; });
    return { limiter: l, conn, fallbacks };
  }

  async function takeN(l: RedisRateLimiter, id: string, n: number, rate: RateLimit | null, quota: Quota | null, now: number): Promise<LimitDecision[]> {
    const out: LimitDecision[] = [];
    for (let i = 0; i < n; i++) out.push(await l.take(id, rate, quota, now));
    return out;
  }

  describe('rate limits', () => {
    it('admits exactly `limit` requests in a window', async () => {
      const { limiter: l, fallbacks } = await limiter();
      const id = keyId();
      const rate = { limit: 5, windowSeconds: 10 };
      const now = windowStart(10_000) + 1_000;
      const decisions = await takeN(l, id, 8, rate, null, now);
      expect(decisions.map((d) => d.ok)).toEqual([true, true, true, true, true, false, false, false]);
      expect(decisions[5]!.code).toBe('RATE_LIMITED');
      expect(fallbacks.n).toBe(0);
    });

    it('refuses with Retry-After and the RateLimit-* headers', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const rate = { limit: 10, windowSeconds: 10 };
      const start = windowStart(10_000);
      await takeN(l, id, 10, rate, null, start + 9_000);
      const refused = await l.take(id, rate, null, start + 9_000);
      // The window ends in 1 s; then 9 of its 10 requests weigh on the next window until 10% of it has passed.
      expect(refused).toEqual({
        ok: false,
        code: 'RATE_LIMITED',
        headers: { 'retry-after': '2', 'ratelimit-limit': '10', 'ratelimit-remaining': '0', 'ratelimit-reset': '2' },
      });
    });

    it('gives every admitted request the RateLimit-* trio, remaining counting down, decided in Redis or on headroom (regression)', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const rate = { limit: 3, windowSeconds: 60 };
      const now = windowStart(60_000, 0) + 1_000;
      const decisions = await takeN(l, id, 3, rate, null, now);
      expect(decisions.map((d) => d.headers)).toEqual([2, 1, 0].map((left) => ({ 'ratelimit-limit': '3', 'ratelimit-remaining': String(left), 'ratelimit-reset': '59' })));
      // Far from the limits the answer comes at once (headroom), with the headers all the same.
      const big = { limit: 100_000, windowSeconds: 60 };
      const quota = { limit: 5_000, period: 'day' as const };
      const other = keyId();
      const at = Date.now();
      expect((await l.take(other, big, quota, at)).headers).toMatchObject({ 'ratelimit-limit': '5000', 'ratelimit-remaining': '4999' });
      const fast = l.take(other, big, quota, at);
      expect(fast).not.toBeInstanceOf(Promise);
      expect((fast as LimitDecision).headers).toMatchObject({ 'ratelimit-limit': '5000', 'ratelimit-remaining': '4998' });
    });

    it('refuses every request under a limit of 0', async () => {
      const { limiter: l } = await limiter();
      const decision = await l.take(keyId(), { limit: 0, windowSeconds: 5 }, null, Date.now());
      expect(decision).toMatchObject({ ok: false, code: 'RATE_LIMITED', headers: { 'ratelimit-limit': '0', 'retry-after': '5' } });
    });

    it('does not consume anything for a refused request', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const rate = { limit: 3, windowSeconds: 60 };
      const quota = { limit: 100, period: 'day' as const };
      const now = Date.now();
      await takeN(l, id, 3, rate, quota, now);
      const before = await l.peek(id, rate, quota, now);
      const refusals = await takeN(l, id, 20, rate, quota, now);
      expect(admitted(refusals)).toBe(0);
      const after = await l.peek(id, rate, quota, now);
      expect(after).toEqual(before);
      expect(after.quota!.used).toBe(3);
      expect(after.rateLimit!.remaining).toBe(0);
    });

    it('weighs the previous window by how much of it still overlaps the sliding window', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const rate = { limit: 10, windowSeconds: 10 };
      const start = windowStart(10_000);
      // All 10 in the last second of one window.
      expect(admitted(await takeN(l, id, 12, rate, null, start + 9_000))).toBe(10);
      // A quarter into the next: 10 × 0.75 = 7.5 still count, room for 2.
      expect(admitted(await takeN(l, id, 5, rate, null, start + 12_500))).toBe(2);
      // Halfway: 10 × 0.5 + 2 = 7, room for 3 more.
      expect(admitted(await takeN(l, id, 5, rate, null, start + 15_000))).toBe(3);
      // Two windows on, the first no longer weighs, only the second's 5 do (× 0.9 at 10%).
      expect(admitted(await takeN(l, id, 10, rate, null, start + 21_000))).toBe(5);
      // Much later, a full window again.
      expect(admitted(await takeN(l, id, 12, rate, null, start + 40_000))).toBe(10);
    });

    it('decides as the in-process limiter does on the same requests', async () => {
      const { limiter: l } = await limiter();
      const local = new LocalRateLimiter();
      const id = keyId();
      const rate = { limit: 7, windowSeconds: 2 };
      const start = windowStart(2_000);
      const times = [0, 100, 500, 900, 1_500, 1_900, 1_999, 2_000, 2_100, 2_600, 3_000, 3_500, 3_999, 4_200, 5_000, 6_100, 8_500];
      for (const t of times) {
        for (let i = 0; i < 3; i++) {
          const remote = await l.take(id, rate, null, start + t);
          expect(remote, `request ${i} at +${t} ms`).toEqual(local.take(id, rate, null, start + t));
        }
      }
    });

    it('keeps the counters of different keys apart', async () => {
      const { limiter: l } = await limiter();
      const [a, b] = [keyId(), keyId()];
      const rate = { limit: 2, windowSeconds: 60 };
      const now = Date.now();
      expect(admitted(await takeN(l, a, 4, rate, null, now))).toBe(2);
      expect(admitted(await takeN(l, b, 4, rate, null, now))).toBe(2);
      expect((await l.peek(a, rate, null, now)).rateLimit!.remaining).toBe(0);
      expect((await l.peek(keyId(), rate, null, now)).rateLimit!.remaining).toBe(2);
    });

    it('shares one key\'s counters between two limiters on two connections', async () => {
      const first = await limiter();
      const second = await limiter();
      const id = keyId();
      const rate = { limit: 10, windowSeconds: 60 };
      const quota = { limit: 1_000, period: 'month' as const };
      const now = Date.now();
      expect(admitted(await takeN(first.limiter, id, 6, rate, quota, now))).toBe(6);
      expect(admitted(await takeN(second.limiter, id, 6, rate, quota, now))).toBe(4);
      expect((await first.limiter.take(id, rate, quota, now)).ok).toBe(false);
      expect((await first.limiter.peek(id, rate, quota, now)).quota!.used).toBe(10);
      expect((await second.limiter.peek(id, rate, quota, now)).rateLimit!.remaining).toBe(0);
    });

    it('admits exactly the limit out of 200 concurrent requests, also across two limiters', async () => {
      const first = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const second = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const rate = { limit: 50, windowSeconds: 60 };
      const quota = { limit: 10_000, period: 'day' as const };
      const now = Date.now();
      const decisions = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? first : second).limiter.take(id, rate, quota, now)));
      expect(admitted(decisions)).toBe(50);
      expect(first.fallbacks.n + second.fallbacks.n).toBe(0);
      expect((await first.limiter.peek(id, rate, quota, now)).quota!.used).toBe(50);
    });
  });

  describe('requests of many keys arriving together', () => {
    const scriptCalls = async (): Promise<number> => {
      const m = /cmdstat_evalsha:calls=(\d+)/.exec(await redisCommand(server.port, ['INFO', 'commandstats']));
      return m ? Number(m[1]) : 0;
    };

    it('decide each key exactly as alone, in one script call for the whole turn', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const ids = Array.from({ length: 40 }, keyId);
      const rate = { limit: 3, windowSeconds: 60 };
      const quota = { limit: 2, period: 'day' as const };
      const now = Date.now();
      await l.take(keyId(), rate, null, now); // loads the script
      const before = await scriptCalls();
      // Five requests per key, in one turn: even keys have a rate limit of 3, odd ones a quota of 2.
      const decisions = await Promise.all(ids.flatMap((id, k) => Array.from({ length: 5 }, () => l.take(id, k % 2 === 0 ? rate : null, k % 2 === 0 ? null : quota, now))));
      expect(await scriptCalls() - before).toBe(1);
      ids.forEach((id, k) => {
        const mine = decisions.slice(k * 5, k * 5 + 5);
        expect(mine.map((d) => d.ok), id).toEqual(k % 2 === 0 ? [true, true, true, false, false] : [true, true, false, false, false]);
        expect(mine[4]!.ok ? null : mine[4]!.code).toBe(k % 2 === 0 ? 'RATE_LIMITED' : 'QUOTA_EXCEEDED');
      });
      expect((await l.peek(ids[0]!, rate, null, now)).rateLimit!.remaining).toBe(0);
      expect((await l.peek(ids[1]!, null, quota, now)).quota!.used).toBe(2);
    });

    it('decides a key whose limits change within one turn under each set of limits', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const now = Date.now();
      // The same key in one turn, first under a limit of 2, then (its policy reloaded) of 5.
      const decisions = await Promise.all([
        ...Array.from({ length: 3 }, () => l.take(id, { limit: 2, windowSeconds: 60 }, null, now)),
        ...Array.from({ length: 3 }, () => l.take(id, { limit: 5, windowSeconds: 60 }, null, now)),
      ]);
      // 2 of the first 3 fit under 2; the window then holds 2, so all 3 of the rest fit under 5.
      expect(decisions.map((d) => d.ok)).toEqual([true, true, false, true, true, true]);
    });

    it('splits a turn of more than 64 keys over several calls', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const rate = { limit: 1, windowSeconds: 60 };
      const now = Date.now();
      await l.take(keyId(), rate, null, now);
      const before = await scriptCalls();
      const decisions = await Promise.all(Array.from({ length: 150 }, () => l.take(keyId(), rate, null, now)));
      expect(admitted(decisions)).toBe(150);
      expect(await scriptCalls() - before).toBe(3);
    });
  });

  describe('headroom: far from its limits a request does not wait for Redis', () => {
    const scriptCalls = async (): Promise<number> => {
      const m = /cmdstat_evalsha:calls=(\d+)/.exec(await redisCommand(server.port, ['INFO', 'commandstats']));
      return m ? Number(m[1]) : 0;
    };
    /** Takes `n` requests one after another, awaiting only the ones Redis decides; how many were decided at once. */
    async function takeCounting(l: RedisRateLimiter, id: string, n: number, rate: RateLimit | null, quota: Quota | null, now: () => number) {
      let atOnce = 0;
      const decisions: LimitDecision[] = [];
      for (let i = 0; i < n; i++) {
        const d = l.take(id, rate, quota, now());
        if (d instanceof Promise) decisions.push(await d);
        else { atOnce++; decisions.push(d); }
      }
      return { atOnce, admitted: admitted(decisions), decisions };
    }

    it('admits at once after the first decision, and counts what it admitted in Redis within 10 ms', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const rate = { limit: 100_000, windowSeconds: 60 };
      const quota = { limit: 1_000_000, period: 'day' as const };
      const now = Date.now();
      const first = l.take(id, rate, quota, now);
      expect(first).toBeInstanceOf(Promise);
      expect((await first).ok).toBe(true);
      await l.take(keyId(), rate, null, now); // loads the script
      const before = await scriptCalls();
      const { atOnce, admitted: n } = await takeCounting(l, id, 2_000, rate, quota, () => now);
      expect(atOnce).toBe(2_000);
      expect(n).toBe(2_000);
      await sleep(40);
      const b = await l.peek(id, rate, quota, now);
      expect(b.rateLimit!.remaining).toBe(100_000 - 2_001);
      expect(b.quota!.used).toBe(2_001);
      // Counted in one call, not one per request.
      expect(await scriptCalls() - before).toBe(1);
    });

    it('never for a limit of 1 000 or less: every request goes to Redis', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const now = Date.now();
      const { atOnce, admitted: n } = await takeCounting(l, id, 300, { limit: 1_000, windowSeconds: 60 }, null, () => now);
      expect(atOnce).toBe(0);
      expect(n).toBe(300);
      const q = await takeCounting(l, keyId(), 50, { limit: 100_000, windowSeconds: 60 }, { limit: 20, period: 'day' }, () => now);
      expect(q.atOnce).toBe(0);
      expect(q.admitted).toBe(20);
    });

    it('decides near the limit in Redis: one node admits exactly its limit', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const rate = { limit: 4_000, windowSeconds: 60 };
      const now = windowStart(60_000) + 1_000;
      const { atOnce, admitted: n, decisions } = await takeCounting(l, id, 4_500, rate, null, () => now);
      expect(n).toBe(4_000);
      // With one node, half the limit is its headroom (less the first decision).
      expect(atOnce).toBe(1_999);
      expect(decisions.slice(4_000).every((d) => !d.ok && d.code === 'RATE_LIMITED')).toBe(true);
    });

    it('two nodes together admit exactly the limit, each taking at most a third of it on headroom', async () => {
      const a = await limiter({ conn: { fastTimeoutMs: 5_000 }, liveInstances: () => 2 });
      const b = await limiter({ conn: { fastTimeoutMs: 5_000 }, liveInstances: () => 2 });
      const id = keyId();
      const rate = { limit: 6_000, windowSeconds: 60 };
      const quota = { limit: 5_000, period: 'day' as const };
      const now = windowStart(60_000) + 1_000;
      // Both learn the budget from Redis before either spends any of it.
      await Promise.all([a.limiter.take(id, rate, quota, now), b.limiter.take(id, rate, quota, now)]);
      const [ra, rb] = await Promise.all([
        takeCounting(a.limiter, id, 4_000, rate, quota, () => now),
        takeCounting(b.limiter, id, 4_000, rate, quota, () => now),
      ]);
      expect(ra.admitted + rb.admitted + 2).toBe(5_000);
      // The quota's headroom with two nodes: above two thirds of 5 000 left.
      expect(ra.atOnce).toBeLessThanOrEqual(5_000 / 3);
      expect(rb.atOnce).toBeLessThanOrEqual(5_000 / 3);
      expect(ra.atOnce).toBeGreaterThan(0);
      await sleep(40);
      expect((await a.limiter.peek(id, rate, quota, now)).quota!.used).toBe(5_000);
    });

    it('starts again from Redis in a new window', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const rate = { limit: 100_000, windowSeconds: 10 };
      const start = windowStart(10_000);
      await l.take(id, rate, null, start + 9_000);
      expect(l.take(id, rate, null, start + 9_100)).not.toBeInstanceOf(Promise);
      expect(l.take(id, rate, null, start + 10_000)).toBeInstanceOf(Promise);
    });

    it('counts a request that reaches the limiter late in the window it was admitted in', async () => {
      const { limiter: l } = await limiter({ conn: { fastTimeoutMs: 5_000 } });
      const id = keyId();
      const rate = { limit: 100_000, windowSeconds: 10 };
      const start = windowStart(10_000);
      await l.take(id, rate, null, start + 9_990); // learns the headroom of this window
      const early = l.take(id, rate, null, start + 10_001); // the next window: decided by Redis
      expect(early).toBeInstanceOf(Promise);
      // A request that arrived before the window ended, whose authentication took longer.
      expect(l.take(id, rate, null, start + 9_995)).not.toBeInstanceOf(Promise);
      expect((await early).ok).toBe(true);
      await sleep(40);
      const count = async (s: number) => Number(await redisCommand(server.port, ['GET', `rl-test:rl:{${id}}:w:10000:${s}`]) || 0);
      expect(await count(start)).toBe(2);
      expect(await count(start + 10_000)).toBe(1);
    });

    it('lets go of the headroom when Redis fails: the next requests go to the fallback', async () => {
      const { limiter: l, fallbacks } = await limiter({ onStoreError: 'deny', conn: { fastTimeoutMs: 200 } });
      const id = keyId();
      const rate = { limit: 100_000, windowSeconds: 60 };
      await l.take(id, rate, null, Date.now());
      expect(l.take(id, rate, null, Date.now())).not.toBeInstanceOf(Promise);
      await server.stop();
      // The counts admitted on headroom are sent within 10 ms and fail; so does the headroom.
      await sleep(400);
      const d = await l.take(id, rate, null, Date.now());
      expect(d.ok).toBe(false);
      expect(fallbacks.n).toBeGreaterThan(0);
    });
  });

  describe('quotas', () => {
    it('refuses with QUOTA_EXCEEDED once a day\'s quota is used, until the day ends', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const quota = { limit: 3, period: 'day' as const };
      const now = Date.now();
      const decisions = await takeN(l, id, 5, null, quota, now);
      expect(decisions.map((d) => d.ok)).toEqual([true, true, true, false, false]);
      const reset = String(Math.max(1, Math.ceil((periodEnd('day', periodStart('day', now)) - now) / 1000)));
      expect(decisions[3]).toEqual({
        ok: false,
        code: 'QUOTA_EXCEEDED',
        headers: { 'retry-after': reset, 'ratelimit-limit': '3', 'ratelimit-remaining': '0', 'ratelimit-reset': reset },
      });
    });

    it('refuses with QUOTA_EXCEEDED once a month\'s quota is used, until the month ends', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const quota = { limit: 2, period: 'month' as const };
      const now = Date.now();
      const decisions = await takeN(l, id, 3, null, quota, now);
      expect(decisions.map((d) => d.ok)).toEqual([true, true, false]);
      expect(decisions[2]!.code).toBe('QUOTA_EXCEEDED');
      const reset = Math.ceil((periodEnd('month', periodStart('month', now)) - now) / 1000);
      expect(Number(decisions[2]!.headers!['retry-after'])).toBe(Math.max(1, reset));
    });

    it('does not count a request the quota refuses against the rate limit, nor one the rate limit refuses against the quota', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const rate = { limit: 3, windowSeconds: 60 };
      const now = Date.now();
      // The quota refuses first: the window stays at 2.
      expect(admitted(await takeN(l, id, 5, rate, { limit: 2, period: 'day' }, now))).toBe(2);
      expect((await l.peek(id, rate, null, now)).rateLimit!.remaining).toBe(1);

      const other = keyId();
      expect(admitted(await takeN(l, other, 5, rate, { limit: 100, period: 'day' }, now))).toBe(3);
      expect((await l.peek(other, rate, { limit: 100, period: 'day' }, now)).quota!.used).toBe(3);
    });

    it('keeps a key\'s day and month counters apart', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const now = Date.now();
      expect(admitted(await takeN(l, id, 3, null, { limit: 2, period: 'day' }, now))).toBe(2);
      expect(admitted(await takeN(l, id, 3, null, { limit: 3, period: 'month' }, now))).toBe(3);
    });
  });

  describe('peek', () => {
    it('shows the remaining rate budget and the quota used, without consuming any', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const rate = { limit: 10, windowSeconds: 60 };
      const quota = { limit: 100, period: 'day' as const };
      const now = Date.now();
      const fresh = await l.peek(id, rate, quota, now);
      expect(fresh.rateLimit).toMatchObject({ limit: 10, windowSeconds: 60, remaining: 10 });
      expect(fresh.quota).toMatchObject({ limit: 100, period: 'day', used: 0, remaining: 100 });
      await takeN(l, id, 4, rate, quota, now);
      const after = await l.peek(id, rate, quota, now);
      expect(after.rateLimit).toMatchObject({ remaining: 6 });
      expect(after.rateLimit!.resetSeconds).toBe(Math.ceil((Math.floor(now / 60_000) * 60_000 + 60_000 - now) / 1000));
      expect(after.quota).toMatchObject({ used: 4, remaining: 96, resetsAt: new Date(periodEnd('day', periodStart('day', now))).toISOString() });
      expect(await l.peek(id, rate, quota, now)).toEqual(after);
    });

    it('shows no budgets for a key without limits', async () => {
      const { limiter: l } = await limiter();
      expect(await l.peek(keyId(), null, null, Date.now())).toEqual({ rateLimit: null, quota: null });
      expect(await l.take(keyId(), null, null, Date.now())).toEqual({ ok: true });
    });

    it('counts the previous window, weighted, in what remains', async () => {
      const { limiter: l } = await limiter();
      const id = keyId();
      const rate = { limit: 10, windowSeconds: 10 };
      const start = windowStart(10_000);
      await takeN(l, id, 8, rate, null, start + 5_000);
      // 8 × (1 − 0.25) = 6 still count a quarter into the next window.
      expect((await l.peek(id, rate, null, start + 12_500)).rateLimit!.remaining).toBe(4);
    });
  });

  describe('when Redis cannot answer', () => {
    const rate = { limit: 10, windowSeconds: 60 };

    it('admits every request under onStoreError "allow", counting each fallback decision', async () => {
      const { limiter: l, fallbacks } = await limiter({ onStoreError: 'allow' });
      await server.kill();
      const decisions = await takeN(l, keyId(), 15, rate, { limit: 1, period: 'day' }, Date.now());
      expect(decisions.every((d) => d.ok)).toBe(true);
      expect(fallbacks.n).toBe(15);
    });

    it('refuses every request with 429 RATE_LIMITED under onStoreError "deny"', async () => {
      const { limiter: l, fallbacks } = await limiter({ onStoreError: 'deny' });
      await server.kill();
      const decisions = await takeN(l, keyId(), 5, rate, null, Date.now());
      for (const d of decisions) {
        expect(d).toMatchObject({ ok: false, code: 'RATE_LIMITED', headers: { 'retry-after': '1', 'ratelimit-limit': '10', 'ratelimit-remaining': '0' } });
      }
      expect(fallbacks.n).toBe(5);
    });

    it('enforces this process\'s share of the limit under onStoreError "local"', async () => {
      const { limiter: l, fallbacks } = await limiter({ onStoreError: 'local', liveInstances: () => 2 });
      await server.kill();
      const id = keyId();
      const now = Date.now();
      expect(admitted(await takeN(l, id, 12, rate, null, now))).toBe(5);
      expect(admitted(await takeN(l, keyId(), 12, null, { limit: 6, period: 'day' }, now))).toBe(3);
      expect(fallbacks.n).toBe(24);
    });

    it('keeps refusing a key whose limit is 0 under onStoreError "local"', async () => {
      const { limiter: l } = await limiter({ onStoreError: 'local', liveInstances: () => 2 });
      await server.kill();
      const now = Date.now();
      expect(admitted(await takeN(l, keyId(), 3, { limit: 0, windowSeconds: 60 }, null, now))).toBe(0);
      expect(admitted(await takeN(l, keyId(), 3, null, { limit: 0, period: 'day' }, now))).toBe(0);
    });

    it('answers within about the fast timeout when Redis is down, and at once once the breaker is open', async () => {
      const { limiter: l, conn } = await limiter({ onStoreError: 'allow' });
      await server.kill();
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        expect((await l.take(keyId(), rate, null, Date.now())).ok).toBe(true);
        expect(Date.now() - started).toBeLessThan(300);
      }
      expect(conn.breaker.open).toBe(true);
      const started = Date.now();
      for (let i = 0; i < 10; i++) await l.take(keyId(), rate, null, Date.now());
      expect(Date.now() - started).toBeLessThan(20);
    });

    it('answers within about the fast timeout when Redis hangs, and at once once the breaker is open', async () => {
      const { limiter: l, conn, fallbacks } = await limiter({ onStoreError: 'deny' });
      expect(conn.fastTimeoutMs).toBe(250);
      expect((await l.take(keyId(), rate, null, Date.now())).ok).toBe(true);
      server.pause();
      try {
        for (let i = 0; i < 3; i++) {
          const started = Date.now();
          expect((await l.take(keyId(), rate, null, Date.now())).code).toBe('RATE_LIMITED');
          // Bounded by the fast timeout, with room for a loaded machine: never seconds.
          expect(Date.now() - started).toBeLessThan(250 + 350);
        }
        expect(conn.breaker.open).toBe(true);
        const started = Date.now();
        expect((await l.take(keyId(), rate, null, Date.now())).code).toBe('RATE_LIMITED');
        expect(Date.now() - started).toBeLessThan(20);
        expect(fallbacks.n).toBe(4);
      } finally {
        server.resume();
      }
    });

    it('goes back to the shared counters once Redis is back', async () => {
      const { limiter: l, fallbacks } = await limiter({ onStoreError: 'deny' });
      await server.kill();
      await takeN(l, keyId(), 3, rate, null, Date.now());
      expect(fallbacks.n).toBe(3);
      await server.restart();
      const id = keyId();
      const deadline = Date.now() + 5_000;
      let decision: LimitDecision = { ok: false };
      while (!decision.ok && Date.now() < deadline) {
        decision = await l.take(id, rate, null, Date.now());
        if (!decision.ok) await new Promise((r) => setTimeout(r, 50));
      }
      expect(decision.ok).toBe(true);
      const used = fallbacks.n;
      expect(admitted(await takeN(l, id, 12, rate, null, Date.now()))).toBe(9);
      expect(fallbacks.n).toBe(used);
    });
  });
});

describe.skipIf(!requireRedis())('RedisRateLimiter on a Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => { cluster = await startRedisCluster(3); });
  afterAll(async () => { await cluster?.cleanup(); });

  it('decides the requests of many keys arriving together, whose counters live in different slots', async () => {
    const conn = new RedisConnection({ cluster: cluster.urls, keyPrefix: 'rl-cluster:', logger, fastTimeoutMs: 5_000 });
    await conn.connect();
    try {
      const fallbacks = { n: 0 };
      const l = new RedisRateLimiter(conn, 'deny', () => 1, () => { fallbacks.n++; });
      const rate = { limit: 2, windowSeconds: 60 };
      const now = Date.now();
      const ids = Array.from({ length: 30 }, keyId);
      const decisions = await Promise.all(ids.flatMap((id) => [0, 1, 2].map(() => l.take(id, rate, null, now))));
      expect(fallbacks.n).toBe(0);
      ids.forEach((id, k) => expect(decisions.slice(k * 3, k * 3 + 3).map((d) => d.ok), id).toEqual([true, true, false]));
    } finally {
      await conn.close();
    }
  });
});
