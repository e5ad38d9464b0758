import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { newRequestId } from '../domain/ids.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import { errorJson, rawErrorResponse, writeJson } from '../errors/http.js';
import { drainServer, drainState, type DrainState } from '../http/drain.js';

/**
 * What the status port reports, read on every request: the process swaps these as it starts
 * (store not loaded → starting → ready) and stops (draining), and a cluster primary serves its
 * workers' metrics summed with its own.
 */
export interface StatusSource {
  /** Why this process should get no traffic now, or null when it is ready. */
  notReady: () => string | null;
  /** The Prometheus text exposition of every metric. */
  metricsText: () => Promise<string>;
}

export interface StatusServer {
  readonly server: Server;
  readonly drain: DrainState;
  /** Replaced as the process moves through its phases. */
  source: StatusSource;
  /** Stops accepting and resolves once every connection is closed. */
  close(): Promise<void>;
}

const PATHS = new Set(['/healthz', '/readyz', '/metrics']);
const NO_STORE = { 'cache-control': 'no-store' } as const;
/** The exposition format prom-client writes (text 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * The status listener: `/healthz`, `/readyz` and `/metrics` only, no token, so probes and
 * scrapers never need the admin port. Anything else is 404 `NOT_FOUND`, another method than
 * GET or HEAD 405; bodies are never read and requests are bounded like the admin port's.
 */
export function createStatusServer(initial: StatusSource, logger: Logger): StatusServer {
  const drain = drainState();
  const error = (res: ServerResponse, requestId: string, code: ErrorCode, message: string | null, headers?: Record<string, string>): void => {
    writeJson(res, ERROR_CATALOGUE[code].status, errorJson(code, message, requestId), { ...headers, ...NO_STORE }, 'x-request-id', requestId);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    if (!PATHS.has(path)) return error(res, requestId, 'NOT_FOUND', `Only /healthz, /readyz and /metrics are served on the status port.`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return error(res, requestId, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}.`, { allow: 'GET, HEAD' });
    }
    if (path === '/healthz') return writeJson(res, 200, '{"status":"ok"}', NO_STORE, 'x-request-id', requestId);
    if (path === '/readyz') {
      const reason = status.source.notReady();
      const body = reason === null
        ? '{"ready":true,"status":"ready"}'
        : JSON.stringify({ ready: false, status: 'not ready', reason });
      return writeJson(res, reason === null ? 200 : 503, body, NO_STORE, 'x-request-id', requestId);
    }
    const text = await status.source.metricsText();
    res.writeHead(200, { ...NO_STORE, 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'x-request-id': requestId });
    res.end(text);
  };

  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1_000 }, (req, res) => {
    const requestId = newRequestId();
    drain.responses.add(res);
    res.once('close', () => drain.responses.delete(res));
    if (drain.draining) res.shouldKeepAlive = false;
    // A body (none is expected) is discarded, never buffered.
    req.resume();
    handle(req, res, requestId).catch((err: unknown) => {
      logger.error({ err, requestId }, 'status request failed');
      if (res.headersSent) res.destroy();
      else error(res, requestId, 'INTERNAL', null);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || inFlight != null || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
    socket.end(rawErrorResponse(code, null, newRequestId()));
  });

  const status: StatusServer = {
    server,
    drain,
    source: initial,
    close: () => drainServer(server, drain),
  };
  return status;
}
