import { createHash } from 'node:crypto';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { KeygateError } from '../../errors/catalogue.js';
import { CircuitBreaker } from './circuit-breaker.js';

export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions {
  /** `redis://host:port` of a single server; or `cluster`, the seed nodes of a Redis Cluster. */
  url?: string;
  cluster?: string[];
  keyPrefix: string;
  logger: Logger;
  /** Bound on each request-path call (key lookups, rate limits). */
  fastTimeoutMs?: number;
  /** Bound on admin writes and housekeeping. */
  slowTimeoutMs?: number;
}

/** Redis answered, but with a refusal our scripts raise on purpose (not a fault). */
const SCRIPT_REFUSAL = /\bKG_([A-Z_]+)\b/;

/** A Lua script run by its SHA-1, loaded on the node that lacks it (each Cluster node apart). */
export class Script {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  run(client: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    const startedAt = performance.now();
    return client.evalsha(this.sha, keys.length, ...keys, ...args).catch((err: Error) => {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      // A second command, whose own timer starts only now: both stay within the client's
      // command timeout counted from this call (a timer of ours only on this rare path).
      const loaded = client.eval(this.source, keys.length, ...keys, ...args);
      const timeoutMs = commandTimeoutOf(client);
      return timeoutMs === undefined ? loaded : within(loaded, timeoutMs - (performance.now() - startedAt));
    });
  }
}

function commandTimeoutOf(client: RedisClient): number | undefined {
  return client instanceof Cluster ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout;
}

/** `p`, or a timeout error once `ms` have passed. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Command timed out')), Math.max(0, ms));
    p.then((value) => {
      clearTimeout(timer);
      resolve(value);
    }, (err: unknown) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * The connections one keygate process keeps to Redis:
 * - `fast`: the request path (lookups, rate limits), with a short timeout counted from the call;
 * - `slow`: admin writes and housekeeping, with a longer one;
 * - one connection per blocking reader (the change feed), made by `blocking()`.
 * Nothing queues while Redis is away (a command then fails at once), every call is bounded by
 * its own timer as well as ioredis's, and a circuit breaker stops calling a Redis that keeps
 * failing (one for the request path, one for admin writes: a Cluster master down under some
 * rate-limit counters does not refuse writes to the master holding the store; any answer
 * closes both). Every fault surfaces as STORE_UNAVAILABLE.
 */
export class RedisConnection {
  readonly fast: RedisClient;
  readonly slow: RedisClient;
  readonly prefix: string;
  /** A Redis Cluster: one script call may only touch keys of one hash slot. */
  readonly clustered: boolean;
  /** The request path's breaker; admin writes and housekeeping have their own (`slowBreaker`). */
  readonly breaker = new CircuitBreaker(3, 1_000);
  readonly slowBreaker = new CircuitBreaker(3, 1_000);
  private readonly blockingClients = new Set<RedisClient>();
  private readonly opts: RedisConnectionOptions;
  readonly fastTimeoutMs: number;
  readonly slowTimeoutMs: number;
  private closed = false;

  constructor(opts: RedisConnectionOptions) {
    if (!opts.url === !opts.cluster) throw new Error('the Redis store needs exactly one of store.url and store.cluster');
    this.opts = opts;
    this.prefix = opts.keyPrefix;
    this.clustered = opts.cluster !== undefined;
    this.fastTimeoutMs = opts.fastTimeoutMs ?? 250;
    this.slowTimeoutMs = opts.slowTimeoutMs ?? 2_000;
    this.fast = this.client('fast', this.fastTimeoutMs, true);
    this.slow = this.client('admin', this.slowTimeoutMs, false);
  }

  /**
   * A client with its own connection; `commandTimeoutMs` undefined leaves blocking reads unbounded by ioredis.
   * `failFast`: on a Cluster, a command whose node is unreachable (or still connecting), or
   * that meets CLUSTERDOWN or TRYAGAIN, fails at once instead of being retried every 100 ms up
   * to 16 times (ioredis's defaults, which kept a request waiting over a second while one
   * master was down: the command timeout bounds a single send, not the waits between them).
   * Every master's connection is made at connect (`warm`), so this never refuses the first
   * calls. Admin writes keep the retries, which carry them over a failover, bounded as a whole
   * by `slowCall`'s timer.
   *
   * No auto-pipelining, on one server or a Cluster: ioredis runs one auto-pipeline per
   * connection at a time, so behind a batch sent to a hung Redis the next one waited for the
   * first to time out before it was even sent, and its own timeout started only then (twice
   * store.timeoutMs, or more). Each command is written at once instead, so its timeout runs
   * from the call; the rate limiter batches a turn's decisions itself.
   */
  private client(name: string, commandTimeoutMs: number | undefined, failFast: boolean): RedisClient {
    const base: RedisOptions = {
      connectionName: `keygate-${name}`,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2_000,
      enableAutoPipelining: false,
      ...(commandTimeoutMs !== undefined ? { commandTimeout: commandTimeoutMs } : {}),
    };
    // Reconnect quickly at first, then every second: a returning Redis is noticed within ~1 s.
    const retryStrategy = (times: number): number => Math.min(50 * times, 1_000);
    let client: RedisClient;
    if (this.opts.cluster) {
      const nodes: ClusterNode[] = this.opts.cluster.map((u) => {
        const url = new URL(u);
        return { host: url.hostname, port: Number(url.port || 6379) };
      });
      const first = new URL(this.opts.cluster[0]!);
      client = new Cluster(nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: false,
        clusterRetryStrategy: retryStrategy,
        slotsRefreshTimeout: 2_000,
        ...(failFast ? { retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, retryDelayOnTryAgain: 0, maxRedirections: 4 } : {}),
        redisOptions: {
          ...base,
          ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
          ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
        },
      });
    } else {
      client = new Redis(this.opts.url!, { ...base, retryStrategy });
    }
    // ioredis reports each failed reconnect as an 'error' event; without a listener Node would throw.
    let lastLogged = 0;
    client.on('error', (err: Error) => {
      if (Date.now() - lastLogged < 5_000) return;
      lastLogged = Date.now();
      this.opts.logger.warn({ err: { message: err.message }, connection: name }, 'redis connection error');
    });
    if (client instanceof Cluster) {
      // A Cluster reports a node it cannot reach as 'node error', naming the node: that node is
      // the fault, whatever call (a request's, the change feed's) first fails because of it.
      const lastByNode = new Map<string, number>();
      client.on('node error', (err: Error, node: string) => {
        const now = Date.now();
        if (now - (lastByNode.get(node) ?? 0) < 5_000) return;
        lastByNode.set(node, now);
        this.opts.logger.warn({ err: { message: err.message }, node, connection: name }, `redis cluster node ${node} unreachable`);
      });
    }
    return client;
  }

  async connect(): Promise<void> {
    try {
      await Promise.all([this.fast.connect(), this.slow.connect()]);
      await warm(this.fast);
    } catch (err) {
      await this.close();
      const where = this.opts.url ? redactUrl(this.opts.url) : this.opts.cluster!.map(redactUrl).join(', ');
      throw new Error(`could not connect to Redis at ${where}: ${(err as Error).message}`);
    }
  }

  /** A dedicated connection for a blocking read, bounded by ioredis at `timeoutMs`. */
  async blocking(name: string, timeoutMs: number): Promise<RedisClient> {
    const client = this.client(name, timeoutMs, true);
    this.blockingClients.add(client);
    await client.connect().catch(() => undefined); // it keeps reconnecting; reads fail until it is up
    await warm(client);
    return client;
  }

  /**
   * Runs one request-path call (one command): breaker, faults mapped to STORE_UNAVAILABLE.
   * The client's own command timeout bounds it, from this call (the command is written at
   * once); no timer or extra promise of ours per call.
   */
  fastCall<T>(fn: (client: RedisClient) => Promise<T>): Promise<T> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return fn(this.fast).then(this.succeeded, this.failed);
  }

  /** Admin writes and housekeeping, which may take several commands: bounded as a whole by a timer. */
  async slowCall<T>(fn: (client: RedisClient) => Promise<T>): Promise<T> {
    const refused = this.refusal(this.slowBreaker);
    if (refused) throw refused;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis call timed out after ${this.slowTimeoutMs} ms`)), this.slowTimeoutMs + 50);
    });
    try {
      return this.succeeded(await Promise.race([fn(this.slow), limit]));
    } catch (err) {
      return this.fail(err, this.slowBreaker);
    } finally {
      clearTimeout(timer);
    }
  }

  private refusal(breaker = this.breaker): KeygateError | null {
    if (this.closed) return new KeygateError('STORE_UNAVAILABLE', 'The key store is closed.');
    if (!breaker.allow()) return new KeygateError('STORE_UNAVAILABLE', 'The key store is unavailable (circuit open).');
    return null;
  }

  /** Any answer shows Redis is back: both breakers close (each path's faults open only its own). */
  private readonly succeeded = <T>(value: T): T => {
    this.breaker.success();
    this.slowBreaker.success();
    return value;
  };

  /** A refusal our scripts raise on purpose is an answer, not a fault; anything else trips the breaker. */
  private readonly failed = (err: unknown): never => this.fail(err, this.breaker);

  private fail(err: unknown, breaker: CircuitBreaker): never {
    const refusal = SCRIPT_REFUSAL.exec(String((err as Error).message));
    if (refusal) {
      this.succeeded(undefined);
      throw new KeygateError(refusal[1] as 'CONFLICT');
    }
    breaker.failure();
    if (err instanceof KeygateError) throw err;
    throw new KeygateError('STORE_UNAVAILABLE', `The key store is unavailable: ${(err as Error).message}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [this.fast, this.slow, ...this.blockingClients];
    await Promise.all(all.map(async (c) => {
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    }));
  }
}

/** On a Cluster, opens the connection to every master now (ioredis opens them on first use). */
async function warm(client: RedisClient): Promise<void> {
  if (!(client instanceof Cluster) || client.status !== 'ready') return;
  await Promise.all(client.nodes('master').map((node) => node.ping().catch(() => undefined)));
}

function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(invalid url)';
  }
}
