import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { compileIpAllowlist, parseIp, type ParsedIp } from '../domain/cidr.js';
import { CHARSET_MESSAGE, isJsonContentType, isJsonWithForeignCharset } from '../domain/json-body.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { DrainState } from '../http/drain.js';
import { createClientIpResolver } from './client-ip.js';
import type { CompiledRoute, RequestContext } from './context.js';
import { chunkedOnly, scanHeaders, type HeaderScan } from './credentials.js';
import { requestTimedOut, upstreamRequestHeaders } from './forwarder.js';
import { CredentialMemo } from './key-resolver.js';
import { readBody } from './read-body.js';
import { parseRequestTarget } from './request-target.js';
import { RouteTable } from './route-table.js';
import type { createTokenExchange } from './token-endpoint.js';
import type { TokenService } from './token-service.js';
import type { UsageRecorder } from './usage-recorder.js';

export interface GatewayDeps {
  config: Config;
  routes: readonly CompiledRoute[];
  tokens: TokenService;
  exchange: ReturnType<typeof createTokenExchange>;
  metrics: Metrics;
  logger: Logger;
  usage: UsageRecorder;
  drain: DrainState;
}

const PEER = Symbol('keygate.peer');
/** What the gateway knows of a client connection, worked out on its first request. */
interface Peer { ip: ParsedIp | null; text: string; trusted: boolean; credential: CredentialMemo }
type PeerSocket = Socket & { [PEER]?: Peer };
/** Set on a socket whose request was refused for its Transfer-Encoding: the parser's own error on it follows. */
const BAD_FRAMING = Symbol('keygate.badFraming');

/** Request ids: a random per-process prefix and a counter; unique without a syscall per request. */
function requestIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let n = 0;
  return () => `${prefix}${(n++).toString(36)}`;
}

/** The client went away mid-request (its body was cut off): a closed request, not a gateway fault. */
function clientGone(req: IncomingMessage, err: unknown): boolean {
  return req.destroyed || (err as NodeJS.ErrnoException | null)?.code === 'ECONNRESET';
}

function errorBody(code: ErrorCode, message: string, requestId: string): string {
  return JSON.stringify({ error: { code, message, requestId } });
}

export function createGatewayServer(deps: GatewayDeps): Server {
  const { config, metrics, logger, usage, drain } = deps;
  const table = new RouteTable(deps.routes);
  const nextId = requestIds();
  const resolveClientIp = createClientIpResolver(config.gateway.trustedProxies);
  const isTrusted = config.gateway.trustedProxies.length > 0 ? compileIpAllowlist(config.gateway.trustedProxies) : () => false;
  const logRequests = config.gateway.accessLog && logger.isLevelEnabled('info');

  // Pre-bound metric children: no label lookup per request.
  const total = metrics.requestDuration.labels({ kind: 'total' });
  const overhead = metrics.requestDuration.labels({ kind: 'overhead' });
  // Route → outcome → counter child: two map lookups per request, no key string built.
  const counters = new Map<string, Map<string, ReturnType<typeof metrics.requests.labels>>>();
  const count = (route: string, outcome: string): void => {
    let byOutcome = counters.get(route);
    if (!byOutcome) counters.set(route, (byOutcome = new Map()));
    let c = byOutcome.get(outcome);
    if (!c) byOutcome.set(outcome, (c = metrics.requests.labels({ route, outcome })));
    c.inc();
  };
  const upstreamTimers = new Map(deps.routes.flatMap((r) => [r.upstream, r.upstreamTest]).map((u) => [u, metrics.upstreamDuration.labels({ upstream: u.name })]));

  const finish = (requestId: string, route: string, status: number, outcome: string, keyId: string | null, started: number, upstreamMs: number): void => {
    const ms = performance.now() - started;
    total.observe(ms / 1000);
    overhead.observe((ms - upstreamMs) / 1000);
    count(route, outcome);
    if (keyId !== null) usage.record(keyId, outcome, Date.now());
    if (logRequests) logger.info({ requestId, route, status, outcome, keyId, ms: Math.round(ms * 100) / 100 }, 'request');
  };

  /** The client went away before its answer: logged and counted as 499 CLIENT_CLOSED, nothing sent. */
  const closed = (requestId: string, route: string, keyId: string | null, started: number, upstreamMs = 0): void =>
    finish(requestId, route, 499, 'CLIENT_CLOSED', keyId, started, upstreamMs);

  /** Every JSON answer the gateway makes itself; while draining it closes the connection. */
  const sendJson = (res: ServerResponse, requestId: string, status: number, body: string, extra: Record<string, string> = {}): void => {
    if (drain.draining) res.shouldKeepAlive = false;
    res.writeHead(status, { ...extra, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId });
    res.end(body);
  };

  const refuse = (res: ServerResponse, requestId: string, code: ErrorCode, message: string | null, route: string, keyId: string | null, started: number,
    extra?: Record<string, string>): void => {
    const { status } = ERROR_CATALOGUE[code];
    const headers: Record<string, string> = { ...extra, 'cache-control': 'no-store' };
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="keygate"';
    // An unread body is not worth draining: close instead.
    if (status === 413 || status === 408) res.shouldKeepAlive = false;
    sendJson(res, requestId, status, errorBody(code, message ?? ERROR_CATALOGUE[code].message, requestId), headers);
    finish(requestId, route, status, code, keyId, started, 0);
  };

  const peerOf = (socket: PeerSocket): Peer => {
    let peer = socket[PEER];
    if (!peer) {
      // Parsed once per connection: every request on a keep-alive socket has the same peer.
      const ip = socket.remoteAddress === undefined ? null : parseIp(socket.remoteAddress);
      peer = { ip, text: ip ? ip.toString() : (socket.remoteAddress ?? ''), trusted: ip !== null && isTrusted(ip), credential: new CredentialMemo() };
      socket[PEER] = peer;
    }
    return peer;
  };

  const fault = (res: ServerResponse, requestId: string, err: unknown): void => {
    logger.error({ err, requestId }, 'gateway request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, requestId, 500, errorBody('INTERNAL', ERROR_CATALOGUE.INTERNAL.message, requestId));
  };

  /**
   * Runs the route's stages from `from`. A cache hit keeps the whole pipeline synchronous
   * (no promise per request); only a stage that must wait (a store lookup) goes async.
   */
  const runStages = (ctx: RequestContext, from: number, started: number): void => {
    const stages = ctx.route.stages;
    for (let i = from; i < stages.length; i++) {
      const result = stages[i]!(ctx);
      if (result instanceof Promise) {
        result.then((r) => {
          if (r !== null) refuse(ctx.res, ctx.requestId, r, ctx.message, ctx.route.name, ctx.policy?.keyId ?? null, started, ctx.responseHeaders ?? undefined);
          else runStages(ctx, i + 1, started);
        }).catch((err: unknown) => {
          if (clientGone(ctx.req, err)) closed(ctx.requestId, ctx.route.name, ctx.policy?.keyId ?? null, started);
          else fault(ctx.res, ctx.requestId, err);
        });
        return;
      }
      if (result !== null) return refuse(ctx.res, ctx.requestId, result, ctx.message, ctx.route.name, ctx.policy?.keyId ?? null, started, ctx.responseHeaders ?? undefined);
    }
    forward(ctx, started);
  };

  // Token bodies are small; the cap keeps a token request from holding much memory.
  const tokenBodyCap = Math.min(config.gateway.maxBodyBytes, 64 * 1024);

  /** `POST /auth/token` and `GET /.well-known/jwks.json`: the gateway's own endpoints, ahead of every route. */
  const ownEndpoint = (req: IncomingMessage, res: ServerResponse, requestId: string, path: '/auth/token' | '/.well-known/jwks.json' | string, scan: HeaderScan, started: number): boolean => {
    if (path === '/.well-known/jwks.json') {
      if (req.method !== 'GET' && req.method !== 'HEAD') refuse(res, requestId, 'METHOD_NOT_ALLOWED', null, 'jwks', null, started, { allow: 'GET, HEAD' });
      else {
        sendJson(res, requestId, 200, deps.tokens.jwksJson(), { 'cache-control': deps.tokens.jwksCacheControl });
        finish(requestId, 'jwks', 200, 'OK', null, started, 0);
      }
      return true;
    }
    if (req.method !== 'POST') {
      refuse(res, requestId, 'METHOD_NOT_ALLOWED', null, 'auth-token', null, started, { allow: 'POST' });
      return true;
    }
    if (!deps.tokens.ready) {
      refuse(res, requestId, 'STORE_UNAVAILABLE', 'No token signing key is loaded yet.', 'auth-token', null, started);
      return true;
    }
    if (scan.hasBody && !isJsonContentType(req.headers['content-type'])) {
      refuse(res, requestId, 'UNSUPPORTED_MEDIA_TYPE', isJsonWithForeignCharset(req.headers['content-type']) ? CHARSET_MESSAGE : null, 'auth-token', null, started);
      return true;
    }
    const peer = peerOf(req.socket as PeerSocket);
    const clientIp = peer.trusted ? resolveClientIp(req.socket.remoteAddress, req.headers['x-forwarded-for']) : peer.ip;
    readBody(req, tokenBodyCap, config.gateway.requestTimeoutMs - (performance.now() - started))
      .then(async (body) => {
        if (body === 'timeout') return refuse(res, requestId, 'REQUEST_TIMEOUT', null, 'auth-token', null, started);
        if (typeof body === 'string') return refuse(res, requestId, 'BODY_TOO_LARGE', `The body is over ${tokenBodyCap} bytes.`, 'auth-token', null, started);
        const out = await deps.exchange(scan, body, clientIp, Date.now());
        if (!out.ok) return refuse(res, requestId, out.code, out.message ?? null, 'auth-token', out.keyId ?? null, started, out.headers);
        sendJson(res, requestId, 200, JSON.stringify(out.body), { ...out.headers, 'cache-control': 'no-store' });
        finish(requestId, 'auth-token', 200, 'OK', out.keyId, started, 0);
      })
      .catch((err: unknown) => {
        if (clientGone(req, err)) closed(requestId, 'auth-token', null, started);
        else fault(res, requestId, err);
      });
    return true;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, requestId: string): void => {
    const started = performance.now();
    const scan = scanHeaders(req.rawHeaders);
    if (scan.transferEncoding !== null && !chunkedOnly(scan.transferEncoding)) {
      // The body's length cannot be known: the connection closes after the answer, which
      // comes first, before the parser's own error on the body (see clientError).
      res.shouldKeepAlive = false;
      (req.socket as Socket & { [BAD_FRAMING]?: true })[BAD_FRAMING] = true;
      return refuse(res, requestId, 'BAD_REQUEST', 'The request\'s Transfer-Encoding is not chunked (no other transfer coding is accepted).', 'unmatched', null, started);
    }
    const target = parseRequestTarget(req.url ?? '');
    if (target === null) return refuse(res, requestId, 'BAD_REQUEST', 'The request path is not acceptable (dot segments, encoded slashes, backslashes, ";" and NUL are refused).', 'unmatched', null, started);
    if (scan.hosts > 1) return refuse(res, requestId, 'BAD_REQUEST', 'The request has more than one Host header.', 'unmatched', null, started);
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 (Node's own answer has no error body).
    if (scan.hosts === 0 && req.httpVersionMinor !== 0) return refuse(res, requestId, 'BAD_REQUEST', 'The request has no Host header.', 'unmatched', null, started);
    if ((target.path === '/auth/token' || target.path === '/.well-known/jwks.json') && ownEndpoint(req, res, requestId, target.path, scan, started)) return;
    const match = table.match(req.method ?? '', target.path);
    if (match === null) return refuse(res, requestId, 'ROUTE_NOT_FOUND', null, 'unmatched', null, started);
    const route = match.route;
    const peer = peerOf(req.socket as PeerSocket);
    const ctx: RequestContext = {
      req, res, requestId, route,
      params: match.params,
      path: target.path,
      search: target.search,
      scan,
      now: Date.now(),
      policy: null,
      profile: null,
      peerIp: peer.ip,
      peerTrusted: peer.trusted,
      credential: peer.credential,
      clientIp: peer.trusted ? resolveClientIp(req.socket.remoteAddress, req.headers['x-forwarded-for']) : peer.ip,
      message: null,
      responseHeaders: null,
      body: null,
    };
    runStages(ctx, 0, started);
  };

  const forward = (ctx: RequestContext, started: number): void => {
    const { req, res, requestId, route, scan } = ctx;
    // A client that left while a stage waited (a store lookup, a Redis rate limit) gets
    // nothing forwarded: its response could never be written, and would hold the upstream.
    if (res.destroyed || req.socket.destroyed) {
      return closed(requestId, route.name, ctx.policy?.keyId ?? null, started);
    }
    const peer = peerOf(req.socket as PeerSocket);
    const policy = ctx.policy!;
    const test = policy.environment === 'test';
    const upstream = test ? route.upstreamTest : route.upstream;
    const headers = upstreamRequestHeaders(req, scan, {
      requestId,
      peerIp: peer.text,
      peerTrusted: peer.trusted,
      identity: {
        keyId: policy.keyId,
        workspaceId: policy.workspaceId,
        keyType: policy.type,
        environment: policy.environment,
        profile: ctx.profile,
      },
    });
    const upstreamStarted = performance.now();
    const keyId = policy.keyId;
    // A key with limits gets its RateLimit-* headers on the forwarded answer too.
    const limitHeaders = ctx.responseHeaders;
    upstream.forward(req, res, ctx.path + ctx.search, headers, requestId, drain, ctx.body, scan.hasBody, limitHeaders, (result) => {
      const upstreamMs = performance.now() - upstreamStarted;
      upstreamTimers.get(upstream)?.observe(upstreamMs / 1000);
      if (result.ok) return finish(requestId, route.name, result.status, 'OK', keyId, started, upstreamMs);
      if (result.code === 'CLIENT_GONE') return closed(requestId, route.name, keyId, started, upstreamMs);
      if (result.code === 'INTERNAL') {
        logger.error({ err: result.err, requestId }, 'gateway request failed');
        return refuse(res, requestId, 'INTERNAL', null, route.name, keyId, started);
      }
      if (result.responded) {
        res.destroy();
        return finish(requestId, route.name, 502, result.code, keyId, started, upstreamMs);
      }
      refuse(res, requestId, result.code, null, route.name, keyId, started, limitHeaders ?? undefined);
    });
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
    const requestId = nextId();
    try {
      handle(req, res, requestId);
    } catch (err) {
      fault(res, requestId, err);
    }
  });

  // Malformed requests the HTTP parser refuses still get a catalogued JSON answer.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Answer only on a connection that has not started another response: a malformed request
    // pipelined behind a valid one must not write over that one's answer.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    // The request was answered 400 already; that answer closes the connection once written.
    if (inFlight != null && err.code === 'HPE_INVALID_TRANSFER_ENCODING' && (socket as Socket & { [BAD_FRAMING]?: true })[BAD_FRAMING]) return;
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    // A request whose body is still arriving past requestTimeoutMs, not yet answered: a forwarded
    // one's exchange ends and answers 408; one still in the pipeline is left to it (every body
    // read there keeps the same time and answers 408 itself).
    if (timedOut && inFlight != null && socket.writable && !inFlight.headersSent && !inFlight.req.complete) {
      requestTimedOut(socket);
      return;
    }
    if (!socket.writable || inFlight != null || (err as { code?: string }).code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const requestId = nextId();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const code: ErrorCode = tooLarge ? 'HEADERS_TOO_LARGE' : timedOut ? 'REQUEST_TIMEOUT' : 'BAD_REQUEST';
    const { status } = ERROR_CATALOGUE[code];
    const message = tooLarge ? 'The request headers are over 16 KiB.' : timedOut ? `The request did not arrive within ${config.gateway.requestTimeoutMs} ms.` : ERROR_CATALOGUE.BAD_REQUEST.message;
    const body = errorBody(code, message, requestId);
    socket.end(
      `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : timedOut ? 'Request Timeout' : 'Bad Request'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
    count('unmatched', code);
  });
  return server;
}
