import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';
import { rawErrorResponse } from '../errors/http.js';
import type { AccessLog } from '../observability/access-log.js';
import type { Metrics } from '../observability/metrics.js';
import type { DrainState } from '../http/drain.js';
import { createClientIpResolver } from './request/client-ip.js';
import type { CompiledRoute, ConfiguredRoute, RequestContext } from './pipeline/context.js';
import { chunkedOnly, scanHeaders, type HeaderScan } from './request/credentials.js';
import { requestIds, traceIds, wellFormedRequestId, type Trace } from './request/correlation.js';
import { Accounting } from './pipeline/accounting.js';
import { createRequestEnd, sendGatewayError, sendGatewayFault } from './pipeline/request-end.js';
import { runPipeline } from './pipeline/run.js';
import { forwardedClient, peerMemo } from './request/peer.js';
import { parseRequestTarget } from './request/request-target.js';
import { RouteTable } from './pipeline/route-table.js';
import type { UsageRecorder } from './pipeline/usage-recorder.js';
import type { ActivityRecorder } from './pipeline/activity-recorder.js';
import { errorHeader, type DecisionRoutes } from './decide/decision-routes.js';

export interface GatewayDeps {
  config: Config;
  /** The config's routes, matched by method and path. */
  routes: readonly ConfiguredRoute[];
  /** The gateway's own routes (`/auth/token`, the JWKS), by path, ahead of every configured one. */
  localRoutes: ReadonlyMap<string, CompiledRoute>;
  metrics: Metrics;
  logger: Logger;
  usage: UsageRecorder;
  /** Each key's requests for the activity routes (null: none recorded). */
  activity?: ActivityRecorder | null;
  drain: DrainState;
  /** Forward-auth (`/auth/forward`, `/auth/envoy/…`): the configured routes, decided instead of forwarded. */
  decisions?: DecisionRoutes;
  /** Where each request's line goes (null: `gateway.accessLog` is off). */
  accessLog: AccessLog | null;
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;


/**
 * The gateway port: listener → route → pipeline (the route's stages) → its final handler.
 * Requests refused before a route is known (framing, request target, Host) and requests the
 * HTTP parser refuses are answered here, through the same writer and accounting.
 */
export function createGatewayServer(deps: GatewayDeps): Server {
  const { config, logger, drain } = deps;
  const table = new RouteTable(deps.routes);
  const local = deps.localRoutes;
  const nextId = requestIds();
  const resolveClientIp = createClientIpResolver(config.gateway.trustedProxies);
  const peerOf = peerMemo(config.gateway.trustedProxies);
  const accounting = new Accounting({ metrics: deps.metrics, logger, usage: deps.usage, accessLog: deps.accessLog });
  const end = createRequestEnd({ accounting, metrics: deps.metrics, logger, drain, routes: [...deps.routes, ...local.values()], activity: deps.activity ?? null });
  const decisions = deps.decisions ?? null;
  const decisionEnd = decisions?.end(end) ?? end;

  /** A refusal before any route is known: counted under `unmatched`. */
  const refuseUnmatched = (req: IncomingMessage, res: ServerResponse, requestId: string, trace: Trace, code: ErrorCode, message: string | null, started: number,
    headers: Readonly<Record<string, string>> | null = null): void => {
    const status = sendGatewayError(res, drain, requestId, code, message, headers);
    const peer = peerOf(req.socket);
    accounting.finish({ req, requestId, trace, started, policy: null, clientIp: peer.ip, peer }, 'unmatched', status, code, 0);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, requestId: string, trace: Trace, scan: HeaderScan, started: number): void => {
    if (scan.transferEncoding !== null && !chunkedOnly(scan.transferEncoding)) {
      // The body's length cannot be known: the connection closes after the answer, which
      // comes first, before the parser's own error on the body (see clientError).
      res.shouldKeepAlive = false;
      peerOf(req.socket).badFraming = true;
      return refuseUnmatched(req, res, requestId, trace, 'BAD_REQUEST', 'The request\'s Transfer-Encoding is not chunked (no other transfer coding is accepted).', started);
    }
    const target = parseRequestTarget(req.url ?? '');
    if (target === null) return refuseUnmatched(req, res, requestId, trace, 'BAD_REQUEST', 'The request path is not acceptable (dot segments, encoded slashes, backslashes, ";" and NUL are refused).', started);
    if (scan.hosts > 1) return refuseUnmatched(req, res, requestId, trace, 'BAD_REQUEST', 'The request has more than one Host header.', started);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (Node's own answer has no error body).
    if (scan.hosts === 0 && req.httpVersionMinor !== 0) return refuseUnmatched(req, res, requestId, trace, 'BAD_REQUEST', 'The request has no Host header.', started);
    let route: CompiledRoute | undefined = local.get(target.path);
    let params = NO_PARAMS;
    let { path, search } = target;
    let ending = end;
    if (route === undefined && decisions !== null && decisions.owns(path)) {
      // Forward-auth: the original request's route, path and query, as the proxy names them.
      const d = decisions.match(req, path, search);
      if (d.refused) return refuseUnmatched(req, res, requestId, trace, d.code, d.message, started, { 'x-keygate-error': errorHeader(d.code, d.message, requestId) });
      ({ route, params, path, search } = d);
      ending = decisionEnd;
    } else if (route === undefined) {
      const match = table.match(req.method ?? '', target.path);
      if (match === null) return refuseUnmatched(req, res, requestId, trace, 'ROUTE_NOT_FOUND', null, started);
      route = match.route;
      params = match.params;
    }
    const peer = peerOf(req.socket);
    const ctx: RequestContext = {
      req, res, requestId, trace, route, params, path, search,
      scan,
      now: Date.now(),
      started,
      policy: null,
      secretHash: null,
      profile: null,
      peer,
      credential: peer.credential,
      clientIp: peer.trusted ? forwardedClient(peer, req.socket, req.headers['x-forwarded-for'], resolveClientIp) : peer.ip,
      responseHeaders: null,
      body: null,
      tokenRequest: null,
    };
    runPipeline(ctx, 0, ending);
  };

  const server = createServer({
    maxHeaderSize: 16 * 1024,
    // A missing Host is refused in the handler, with the catalogued error body.
    requireHostHeader: false,
    requestTimeout: config.gateway.requestTimeoutMs,
    headersTimeout: Math.min(config.gateway.requestTimeoutMs, 60_000),
    keepAliveTimeout: 65_000,
    // How often Node looks for requests past those timeouts (its default is 30 s).
    connectionsCheckingInterval: Math.min(1_000, config.gateway.requestTimeoutMs),
  }, (req, res) => {
    const started = performance.now();
    const scan = scanHeaders(req.rawHeaders);
    // A client's own X-Request-Id (one, well formed) is kept, so its logs and ours and the
    // upstream's tell of the same request; its traceparent likewise names the trace.
    const requestId = scan.requestIds === 1 && wellFormedRequestId(scan.requestId!) ? scan.requestId! : nextId();
    const trace = traceIds.trace(scan.traceparent, scan.traceparents, scan.tracestate);
    try {
      handle(req, res, requestId, trace, scan, started);
    } catch (err) {
      sendGatewayFault(res, drain, logger, requestId, err, trace.traceId);
    }
  });

  // Each connection's peer is made as it is accepted: the one property the gateway adds to a
  // socket is there before its first request, so the request path only ever sees one shape
  // of socket (a property added mid-request makes V8's caches in Node's own code polymorphic).
  server.on('connection', peerOf);

  // Malformed requests the HTTP parser refuses still get a catalogued JSON answer.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Answer only on a connection that has not started another response: a malformed request
    // pipelined behind a valid one must not write over that one's answer.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    // The request was answered 400 already; that answer closes the connection once written.
    if (inFlight != null && err.code === 'HPE_INVALID_TRANSFER_ENCODING' && peerOf(socket).badFraming) return;
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // A request whose body is still arriving past requestTimeoutMs, not yet answered: a forwarded
    // one's exchange ends and answers 408; one still in the pipeline is left to it (every body
    // read there keeps the same time and answers 408 itself).
    if (timedOut && inFlight != null && socket.writable && !inFlight.headersSent && !inFlight.req.complete) {
      peerOf(socket).inFlight?.requestTimedOut();
      return;
    }
    if (!socket.writable || inFlight != null || (err as { code?: string }).code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const requestId = nextId();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const code: ErrorCode = tooLarge ? 'HEADERS_TOO_LARGE' : timedOut ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
    const message = tooLarge ? 'The request headers are over 16 KiB.' : timedOut ? `The request did not arrive within ${config.gateway.requestTimeoutMs} ms.` : null;
    socket.end(rawErrorResponse(code, message, requestId));
    accounting.parserRefusal(socket, peerOf(socket), requestId, traceIds.traceId(), ERROR_CATALOGUE[code].status, code);
  });
  return server;
}
