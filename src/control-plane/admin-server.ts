import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { scopeGranted } from '../domain/admin-scopes.js';
import { formatIssues } from '../domain/issues.js';
import { newRequestId } from '../domain/ids.js';
import { ERROR_CATALOGUE, KeygateError, ValidationError, type ErrorCode } from '../errors/catalogue.js';
import { rawErrorResponse } from '../errors/http.js';
import { CONSOLE_PATH, loadConsoleAssets } from './console-assets.js';
import { queryObject, readJsonBody, sendError, sendJson } from './http.js';
import { buildOpenApi } from './openapi.js';
import { etagOf, ifMatchAdmits } from './paging.js';
import { adminTokenRoutes } from './routes/admin-tokens.js';
import { directoryRoutes } from './routes/directory.js';
import { hygieneRoutes } from './routes/hygiene.js';
import { keyRoutes } from './routes/keys.js';
import { metaRoutes } from './routes/meta.js';
import { AdminRoutes, type AdminContext, type AdminDeps, type AdminRoute } from './routes/types.js';
import type { DrainState } from '../http/drain.js';

export interface AdminServerDeps extends AdminDeps {
  logger: Logger;
  /** Why the process should get no traffic now (starting, draining, store stale…), or null when ready. */
  notReady: () => string | null;
  /** The /metrics text (a cluster primary adds its workers' to its own). */
  metricsText: () => Promise<string>;
  /** Set once shutdown starts: answers then close their connection. */
  drain?: DrainState;
  /** Where the built admin console lives (default: `dist/console`, beside this module's folder). */
  consoleDir?: string;
}

const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url));

/** Every admin operation, in the order the OpenAPI document lists them. */
export function buildAdminRoutes(deps: AdminDeps): AdminRoutes {
  const routes = new AdminRoutes();
  directoryRoutes(routes, deps);
  keyRoutes(routes, deps);
  hygieneRoutes(routes, deps);
  adminTokenRoutes(routes, deps);
  metaRoutes(routes, deps);
  return routes;
}

/** The version the OpenAPI document states: the package's. */
const API_VERSION = '0.1.0';

/** The OpenAPI document of every admin operation (routes are only declared here, never run). */
export function adminOpenApi(): Record<string, unknown> {
  return buildOpenApi(buildAdminRoutes({} as AdminDeps).all, API_VERSION);
}

/** `Bearer <token>`; the scheme name is case-insensitive (RFC 9110 §11.1), as on the gateway. */
const BEARER = /^bearer +([\x21-\x7e]+)$/i;

/**
 * Query and body through the route's schemas; on a refusal, every problem (the schema's and
 * the route's own checks on the raw body) in one 400.
 */
async function parseInput(route: AdminRoute, query: Record<string, string>, readBody: () => Promise<unknown>, grant: AdminContext['grant']): Promise<{ query: unknown; body: unknown }> {
  const problems: string[] = [];
  let parsedQuery: unknown = query;
  if (route.query) {
    const r = route.query.safeParse(query);
    if (r.success) parsedQuery = r.data;
    else problems.push(...formatIssues(r.error.issues));
  }
  let body: unknown = undefined;
  if (route.body) {
    const raw = (await readBody()) ?? {};
    const r = route.body.safeParse(raw);
    if (r.success) body = r.data;
    else {
      problems.push(...formatIssues(r.error.issues));
      if (route.alsoCheck) for (const p of await route.alsoCheck(raw, grant)) if (!problems.includes(p)) problems.push(p);
    }
  }
  if (problems.length > 0) throw new ValidationError(problems);
  return { query: parsedQuery, body };
}

/** How many Host fields the request carries (`req.headers` keeps only the first). */
function hostCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}

export function createAdminServer(deps: AdminServerDeps): Server {
  const routes = buildAdminRoutes(deps);
  const { router } = routes;
  const { logger, metrics } = deps;
  // Static files, public like /healthz: the console holds no secret; it asks for a token and
  // sends it to the /v1 API like any other client.
  const consoleAssets = loadConsoleAssets(deps.consoleDir ?? CONSOLE_DIR);
  const openApiText = JSON.stringify(buildOpenApi(routes.all, API_VERSION));

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
        const reason = deps.notReady();
        if (reason === null) sendJson(res, 200, { ready: true, status: 'ready' });
        else sendJson(res, 503, { ready: false, status: 'not ready', reason });
        return { status: reason === null ? 200 : 503, route: path };
      }
      const text = await deps.metricsText();
      res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return { status: 200, route: path };
    }
    if (path === '/console' || path.startsWith(CONSOLE_PATH)) {
      trace.route = CONSOLE_PATH;
      return { status: consoleAssets.serve(req, res, path), route: CONSOLE_PATH };
    }
    if (path === '/openapi.json') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new KeygateError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}.`, { allow: 'GET, HEAD' });
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(openApiText), 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : openApiText);
      return { status: 200, route: path };
    }
    if (!path.startsWith('/v1/')) throw new KeygateError('NOT_FOUND', `No admin endpoint at ${path}.`);
    const header = req.headers.authorization;
    const bearer = header === undefined ? null : BEARER.exec(header);
    if (!bearer) throw new KeygateError('UNAUTHENTICATED', 'An admin token is required: Authorization: Bearer <token>.');
    const principal = await deps.adminTokens.authenticate(bearer[1]!);
    if (!principal) throw new KeygateError('UNAUTHENTICATED', 'The admin token is not valid (unknown, revoked or mistyped).');
    const { actor, grant } = principal;
    const match = router.match(req.method ?? 'GET', path);
    if (match.kind !== 'not-found') trace.route = match.template;
    if (match.kind === 'not-found') throw new KeygateError('NOT_FOUND', `No admin endpoint at ${path}.`);
    if (match.kind === 'method-not-allowed') {
      throw new KeygateError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}.`, { allow: match.allowed.join(', ') });
    }
    const route = match.handler;
    if (route.scope !== null && !scopeGranted(grant.scopes, route.scope)) {
      throw new KeygateError('ADMIN_SCOPE_MISSING', `The admin token lacks the scope "${route.scope}" that ${route.method} ${route.path.replace(/:([A-Za-z]+)/g, '{$1}')} requires.`);
    }
    const input = await parseInput(route, queryObject(url.searchParams), () => readJsonBody(req), grant);
    const ifMatchHeader = req.headers['if-match'];
    const ctx: AdminContext = {
      req,
      params: match.params,
      query: input.query,
      body: input.body,
      actor,
      grant,
      requestId,
      ifMatch: (id, token) => {
        if (ifMatchHeader !== undefined && !ifMatchAdmits(ifMatchHeader, etagOf(id, token))) {
          throw new KeygateError('PRECONDITION_FAILED', `If-Match: the resource "${id}" has changed since that ETag; read it again.`);
        }
      },
    };
    const result = await route.handler(ctx as Parameters<AdminRoute['handler']>[0]);
    const headers: Record<string, string> = { ...result.headers };
    if (result.etag) headers.etag = etagOf(result.etag.id, result.etag.token);
    if (result.location) headers.location = result.location;
    if (result.status === 204) {
      res.writeHead(204, { ...headers, 'cache-control': 'no-store' });
      res.end();
    } else {
      sendJson(res, result.status, result.body, headers);
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
