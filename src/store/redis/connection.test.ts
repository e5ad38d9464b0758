import net from 'node:net';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeygateError } from '../../errors/catalogue.js';
import { requireRedis, startRedis, type RedisServer } from '../../../test/support/redis-server.js';
import { RedisConnection, Script, type RedisClient, type RedisConnectionOptions } from './connection.js';

const logger = pino({ level: 'silent' });

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('RedisConnection', () => {
  it('needs exactly one of url and cluster', () => {
    expect(() => new RedisConnection({ keyPrefix: 'kg:', logger })).toThrow(/store\.url and store\.cluster/);
    expect(() => new RedisConnection({ url: 'redis://127.0.0.1:1', cluster: ['redis://127.0.0.1:2'], keyPrefix: 'kg:', logger }))
      .toThrow(/store\.url and store\.cluster/);
  });

  it('fails to connect to a closed port with a message naming the URL without its password', async () => {
    const port = await closedPort();
    const conn = new RedisConnection({ url: `redis://user:secret@127.0.0.1:${port}`, keyPrefix: 'kg:', logger });
    const started = Date.now();
    const err = await rejection(conn.connect());
    expect(Date.now() - started).toBeLessThan(5_000);
    const message = (err as Error).message;
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).toContain('could not connect to Redis');
    expect(message).not.toContain('secret');
    // A failed connection is closed: it answers nothing afterwards.
    await expect(conn.fastCall((c) => c.ping())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});

describe('Script', () => {
  it("keeps a script call within the command timeout counted from the call when the script must be loaded first (the load's own timer starts only at the NOSCRIPT answer)", async () => {
    // A Redis that answers NOSCRIPT after 150 ms and then does not answer the load: the eval
    // fails at its own 200 ms command timeout, as ioredis's would.
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const client = {
      options: { commandTimeout: 200 },
      evalsha: async () => { await sleep(150); throw new Error('NOSCRIPT No matching script. Please use EVAL.'); },
      eval: async () => { await sleep(200); throw new Error('Command timed out'); },
    } as unknown as RedisClient;
    const started = Date.now();
    const err = await rejection(new Script('return 1').run(client, [], []));
    const ms = Date.now() - started;
    expect((err as Error).message).toBe('Command timed out');
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThanOrEqual(200 + 40);

    // The load answered in time: its answer.
    const answering = { ...client, eval: async () => 'loaded' } as unknown as RedisClient;
    expect(await new Script('return 1').run(answering, [], [])).toBe('loaded');
  });
});

describe.skipIf(!requireRedis())('RedisConnection against a real Redis', () => {
  let server: RedisServer;
  const open: RedisConnection[] = [];

  async function connect(over: Partial<RedisConnectionOptions> = {}): Promise<RedisConnection> {
    const conn = new RedisConnection({ url: server.url, keyPrefix: 'conn-test:', logger, ...over });
    open.push(conn);
    await conn.connect();
    return conn;
  }

  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server?.cleanup(); });
  afterEach(async () => {
    if (server.running) server.resume();
    await Promise.all(open.splice(0).map((c) => c.close()));
    if (!server.running) await server.restart();
  });

  it('runs calls on the fast and slow clients', async () => {
    const conn = await connect();
    expect(await conn.fastCall((c) => c.ping())).toBe('PONG');
    expect(await conn.slowCall((c) => c.ping())).toBe('PONG');
    expect(conn.fastTimeoutMs).toBe(250);
    expect(conn.slowTimeoutMs).toBe(2_000);
  });

  it('maps a KG_CONFLICT error reply of a script to CONFLICT without tripping the breaker', async () => {
    const conn = await connect();
    for (let i = 0; i < 5; i++) {
      const err = await rejection(conn.fastCall((c) => c.eval("return redis.error_reply('KG_CONFLICT')", 0)));
      expect(err).toBeInstanceOf(KeygateError);
      expect((err as KeygateError).code).toBe('CONFLICT');
      expect((err as KeygateError).status).toBe(409);
    }
    expect(conn.breaker.open).toBe(false);
    expect(await conn.fastCall((c) => c.ping())).toBe('PONG');
  });

  it('maps a KG_GROUP_IN_USE refusal to GROUP_IN_USE', async () => {
    const conn = await connect();
    await expect(conn.slowCall((c) => c.eval("return redis.error_reply('KG_GROUP_IN_USE')", 0))).rejects.toMatchObject({ code: 'GROUP_IN_USE' });
  });

  it('maps any other fault to STORE_UNAVAILABLE, and three in a row open the breaker', async () => {
    const conn = await connect();
    for (let i = 0; i < 3; i++) {
      const err = await rejection(conn.fastCall((c) => c.eval("return redis.error_reply('ERR something broke')", 0)));
      expect(err).toBeInstanceOf(KeygateError);
      expect((err as KeygateError).code).toBe('STORE_UNAVAILABLE');
      expect((err as Error).message).toContain('something broke');
    }
    expect(conn.breaker.open).toBe(true);
    let called = false;
    const err = await rejection(conn.fastCall(async (c) => { called = true; return c.ping(); }));
    expect((err as KeygateError).code).toBe('STORE_UNAVAILABLE');
    expect((err as Error).message).toMatch(/circuit open/);
    expect(called).toBe(false);
  });

  it('does not refuse admin calls because request-path calls failed, and any answer closes both breakers', async () => {
    const conn = await connect();
    for (let i = 0; i < 3; i++) await rejection(conn.fastCall((c) => c.eval("return redis.error_reply('ERR counters unreachable')", 0)));
    expect(conn.breaker.open).toBe(true);
    expect(conn.slowBreaker.open).toBe(false);
    expect(await conn.slowCall((c) => c.ping())).toBe('PONG');
    expect(conn.breaker.open).toBe(false);
    expect(await conn.fastCall((c) => c.ping())).toBe('PONG');
  });

  it('maps an exception thrown by the call itself to STORE_UNAVAILABLE', async () => {
    const conn = await connect();
    await expect(conn.fastCall(() => Promise.reject(new Error('socket gone')))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('fails a call to a paused Redis within about its timeout', async () => {
    const conn = await connect({ fastTimeoutMs: 200, slowTimeoutMs: 300 });
    expect(await conn.fastCall((c) => c.ping())).toBe('PONG');
    server.pause();
    let started = Date.now();
    let err = await rejection(conn.fastCall((c) => c.get('conn-test:x')));
    expect((err as KeygateError).code).toBe('STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(200 + 100);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);

    started = Date.now();
    err = await rejection(conn.slowCall((c) => c.get('conn-test:x')));
    expect((err as KeygateError).code).toBe('STORE_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(300 + 100);
  });

  it('fails each request-path call to a paused Redis within its timeout of being made, also calls made while earlier ones wait (regression: they waited behind the stuck batch, up to twice the timeout)', async () => {
    const conn = await connect({ fastTimeoutMs: 200 });
    expect(await conn.fastCall((c) => c.ping())).toBe('PONG');
    server.pause();
    const timed = async (delayMs: number): Promise<{ ms: number; err: unknown }> => {
      await new Promise((r) => setTimeout(r, delayMs));
      const started = Date.now();
      const err = await rejection(conn.fastCall((c) => c.get('conn-test:x')));
      return { ms: Date.now() - started, err };
    };
    // All made before the first fails (so before the breaker can open).
    const calls = await Promise.all([0, 1, 50, 100, 150].map(timed));
    console.log(`paused: calls failed after ${calls.map((c) => c.ms).join(', ')} ms`);
    for (const { ms, err } of calls) {
      expect((err as KeygateError).code).toBe('STORE_UNAVAILABLE');
      expect(ms).toBeGreaterThanOrEqual(190);
      expect(ms).toBeLessThanOrEqual(200 + 60);
    }
  });

  it('fails at once while Redis is down, and refuses without calling once the breaker is open', async () => {
    const conn = await connect();
    await server.kill();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      await expect(conn.fastCall((c) => c.ping())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(300);
    }
    expect(conn.breaker.open).toBe(true);
    const started = Date.now();
    await expect(conn.fastCall((c) => c.ping())).rejects.toThrow(/circuit open/);
    expect(Date.now() - started).toBeLessThan(20);
  });

  it('answers again once Redis is back and the breaker has let a trial through', async () => {
    const conn = await connect();
    await server.kill();
    for (let i = 0; i < 3; i++) await conn.fastCall((c) => c.ping()).catch(() => undefined);
    expect(conn.breaker.open).toBe(true);
    await server.restart();
    const deadline = Date.now() + 5_000;
    let answer: string | null = null;
    while (answer === null && Date.now() < deadline) {
      answer = await conn.fastCall((c) => c.ping()).catch(() => null);
      if (answer === null) await new Promise((r) => setTimeout(r, 50));
    }
    expect(answer).toBe('PONG');
    expect(conn.breaker.open).toBe(false);
  });

  it('refuses calls after close', async () => {
    const conn = await connect();
    await conn.close();
    await expect(conn.fastCall((c) => c.ping())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(conn.slowCall((c) => c.ping())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });
});
