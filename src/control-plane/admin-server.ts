import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Actor } from '../domain/entities.js';
import { newRequestId } from '../domain/ids.js';
import { safeEqual } from '../domain/secret.js';
import { ERROR_CATALOGUE, KeygateError, type ErrorCode } from '../errors/catalogue.js';
import { rawErrorResponse } from '../errors/http.js';
import { queryObject, readJsonBody, sendError, sendJson } from './http.js';
import { Router } from './router.js';
import { directoryRoutes } from './routes/directory.js';
import { hygieneRoutes } from './routes/hygiene.js';
import { keyRoutes } from './routes/keys.js';
import { metaRoutes, notReadyReason } from './routes/meta.js';
import type { AdminContext, AdminDeps, AdminHandler } from './routes/types.js';
import type { DrainState } from '../http/drain.js';

export interface AdminServerDeps extends AdminDeps {
  logger: Logger;
  /** Whether the process is ready to serve (store open, every listener up). */
  ready: () => boolean;
  /** The /metrics text; defaults to this process's registry (a cluster primary adds its workers'). */
  metricsText?: () => Promise<string>;
  /** Set once shutdown starts: answers then close their connection. */
  drain?: DrainState;
}

export function buildAdminRouter(deps: AdminDeps): Router<AdminHandler> {
  const router = new Router<AdminHandler>();
  directoryRoutes(router, deps);
  keyRoutes(router, deps);
  hygieneRoutes(router, deps);
  metaRoutes(router, deps);
  return router;
}

/** `Bearer <token>`; the scheme name is case-insensitive (RFC 9110 §11.1), as on the gateway. */
const BEARER = /^bearer +([\x21-\x7e]+)$/i;

/** Bearer admin tokens, compared in constant time against every configured token. */
function authenticate(req: IncomingMessage, tokens: ReadonlyArray<{ name: string; token: string }>): Actor | null {
  const header = req.headers.authorization;
  if (header === undefined) return null;
  const m = BEARER.exec(header);
  if (!m) return null;
  let found: Actor | null = null;
  // No early exit: the time taken does not tell which token, if any, matched.
  for (const t of tokens) if (safeEqual(m[1]!, t.token) && found === null) found = { type: 'admin', name: t.name };
  return found;
}

/** How many Host fields the request carries (`req.headers` keeps only the first). */
function hostCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

export function createAdminServer(deps: AdminServerDeps): Server {
  const router = buildAdminRouter(deps);
  const { logger, metrics, config } = deps;

  // `trace.route` is the matched template, so errors on a route are counted under it too.
  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string, trace: { route: string }): Promise<{ status: number; route: string }> => {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (Node's own answer has no error body).
    if (req.headers.host === undefined && req.httpVersionMinor !== 0) throw new KeygateError('BAD_REQUEST', 'The request has no Host header.');
    // RFC 9112 §3.2: more than one Host is a 400 too (Node keeps the first and drops the rest).
    if (hostCount(req.rawHeaders) > 1) throw new KeygateError('BAD_REQUEST', 'The request has more than one Host header.');
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new KeygateError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}.`, { allow: 'GET, HEAD' });
      }
      if (path === '/healthz') {
        sendJson(res, 200, { status: 'ok' });
        return { status: 200, route: path };
      }
      if (path === '/readyz') {
        const reason = notReadyReason(deps.store, config.propagation.maxStalenessMs, deps.ready());
        if (reason === null) sendJson(res, 200, { ready: true, status: 'ready' });
        else sendJson(res, 503, { ready: false, status: 'not ready', reason });
        return { status: reason === null ? 200 : 503, route: path };
      }
      metrics.storeVersion.set(deps.store.appliedVersion());
      const text = deps.metricsText ? await deps.metricsText() : await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return { status: 200, route: path };
    }
    if (!path.startsWith('/v1/')) throw new KeygateError('NOT_FOUND', `No admin endpoint at ${path}.`);
    const actor = authenticate(req, config.admin.tokens);
    if (!actor) throw new KeygateError('UNAUTHENTICATED', 'An admin token is required: Authorization: Bearer <token>.');
    const match = router.match(req.method ?? 'GET', path);
    if (match.kind !== 'not-found') trace.route = match.template;
    if (match.kind === 'not-found') throw new KeygateError('NOT_FOUND', `No admin endpoint at ${path}.`);
    if (match.kind === 'method-not-allowed') {
      throw new KeygateError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}.`, { allow: match.allowed.join(', ') });
    }
    const ctx: AdminContext = {
      req,
      params: match.params,
      query: queryObject(url.searchParams),
      actor,
      requestId,
      body: () => readJsonBody(req),
    };
    const result = await match.handler(ctx);
    if (result.status === 204) {
      res.writeHead(204, { ...result.headers, 'cache-control': 'no-store' });
      res.end();
    } else {
      sendJson(res, result.status, result.body, result.headers);
    }
    return { status: result.status, route: match.template };
  };

  // How often Node looks for requests past these timeouts (its default is 30 s).
  // A missing Host is refused in the handler, with the catalogued error body (as on the gateway).
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1_000, requireHostHeader: false }, (req, res) => {
    const started = process.hrtime.bigint();
    const requestId = newRequestId();
    const trace = { route: 'unmatched' };
    res.setHeader('x-request-id', requestId);
    // While draining, every answer (including ones already in flight) closes its connection.
    deps.drain?.responses.add(res);
    res.once('close', () => deps.drain?.responses.delete(res));
    if (deps.drain?.draining) res.shouldKeepAlive = false;
    handle(req, res, requestId, trace)
      .catch((err: unknown) => {
        // Answered 408 while its body was still arriving (see clientError below); reading it then failed.
        if ((res as TimedOutResponse)[TIMED_OUT]) return { status: 408, route: trace.route };
        if (!(err instanceof KeygateError)) logger.error({ err, requestId }, 'admin request failed');
        if (err instanceof KeygateError && err.code === 'STORE_UNAVAILABLE') metrics.storeErrors.inc({ operation: 'admin' });
        if (res.headersSent) {
          res.destroy();
          return { status: 500, route: trace.route };
        }
        return { status: sendError(res, err, requestId), route: trace.route };
      })
      .then(({ status, route }) => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        metrics.adminRequests.inc({ route, method: req.method ?? 'UNKNOWN', status: String(status) });
        metrics.adminRequestDuration.observe({ route }, seconds);
        logger.info({ requestId, method: req.method, route, status, ms: Math.round(seconds * 1000) }, 'admin request');
      })
      .catch((err: unknown) => logger.error({ err }, 'admin request accounting failed'));
  });

  // Requests the HTTP parser refuses, or that did not arrive in time, get a catalogued JSON answer.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const message = inFlight == null ? 'The request headers did not arrive within 10 s.' : 'The request body did not arrive within 30 s.';
    // A request whose body is still arriving, not yet answered: it gets the 408 (and its handler,
    // whose read then fails, is accounted as such).
    if (timedOut && inFlight != null && socket.writable && !inFlight.headersSent && !inFlight.req.complete) {
      (inFlight as TimedOutResponse)[TIMED_OUT] = true;
      sendError(inFlight, new KeygateError('REQUEST_TIMEOUT', message), String(inFlight.getHeader('x-request-id') ?? newRequestId()));
      return;
    }
    // Answer only on a connection that has not started another response (see the gateway's).
    if (!socket.writable || inFlight != null || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const requestId = newRequestId();
    const code: ErrorCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : timedOut ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
    const { status } = ERROR_CATALOGUE[code];
    socket.end(rawErrorResponse(code, timedOut ? message : null, requestId));
    metrics.adminRequests.inc({ route: 'unmatched', method: 'UNKNOWN', status: String(status) });
  });
  return server;
}

const TIMED_OUT = Symbol('keygate.adminTimedOut');
type TimedOutResponse = ServerResponse & { [TIMED_OUT]?: true };
