import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { sendError, sendJson } from '../control-plane/http.js';
import { newRequestId } from '../domain/ids.js';
import { KeygateError } from '../errors/catalogue.js';
import { listen } from '../http/listen.js';

export interface StartupRetryOptions {
  /** Give up once this long has passed since the first attempt. */
  timeoutMs: number;
  logger: Logger;
  /** First wait between attempts; it doubles after each failure, up to `capMs`. */
  baseMs?: number;
  capMs?: number;
  random?: () => number;
  /** Aborted: no further attempt, the wait cut short, and the abort's reason thrown. */
  signal?: AbortSignal;
}

/**
 * Runs `attempt` until it succeeds: between failures it waits an exponential backoff (from
 * `baseMs`, doubling, capped at `capMs`) with jitter (each wait drawn between half and all of
 * it, so nodes restarted together do not retry in step), and logs each failure. The last
 * attempt is made at `timeoutMs`; when it fails too, throws an error naming what failed and how often.
 */
export async function retryStartup<T>(what: string, attempt: () => Promise<T>, opts: StartupRetryOptions): Promise<T> {
  const { timeoutMs, logger, baseMs = 250, capMs = 5_000, random = Math.random, signal } = opts;
  const started = Date.now();
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    try {
      const value = await attempt();
      if (n > 1) logger.info({ attempt: n, ms: Date.now() - started }, `${what}: succeeded`);
      return value;
    } catch (err) {
      const message = (err as Error).message;
      const backoff = Math.min(capMs, baseMs * 2 ** (n - 1));
      const waitMs = Math.round(backoff / 2 + (random() * backoff) / 2);
      const elapsed = Date.now() - started;
      if (elapsed >= timeoutMs) {
        throw new Error(`${what}: gave up after ${n} attempts in ${elapsed} ms (store.startupTimeoutMs ${timeoutMs}): ${message}`);
      }
      // The last attempt is made at the bound itself.
      const retryInMs = Math.min(waitMs, timeoutMs - elapsed);
      logger.warn({ attempt: n, retryInMs, err: { message } }, `${what} failed; retrying`);
      await sleep(retryInMs, undefined, signal ? { signal } : {}).catch((err: unknown) => {
        signal?.throwIfAborted();
        throw err;
      });
    }
  }
}

/**
 * The admin port while the store is still out of reach at start-up: `/healthz` 200 (the process
 * is alive: no restart), `/readyz` 503 "store not connected" (no traffic), anything else 503
 * STORE_UNAVAILABLE. Closed, connections and all, just before the real admin server listens.
 */
export async function startupAdminServer(host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.shouldKeepAlive = false;
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/readyz') return sendJson(res, 503, { ready: false, status: 'not ready', reason: 'store not connected' });
    sendError(res, new KeygateError('STORE_UNAVAILABLE', 'The key store is not connected yet.'), newRequestId());
  });
  const url = await listen(server, host, port);
  return {
    url,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
