import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { ErrorCode } from '../errors/catalogue.js';
import type { DrainState } from '../runtime/drain.js';
import type { HeaderScan } from './credentials.js';

// RFC 9110 §7.6.1: connection-specific fields are not forwarded, nor any field the
// Connection header names. Credentials and our own X-Keygate-* namespace never pass either.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);
const REPLACED_ON_REQUEST = new Set([
  'host', 'x-api-key', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-request-id', 'expect', 'forwarded',
]);

/** Whether a lower-cased name is one the gateway never passes on as the client sent it. */
const owned = (lower: string): boolean => HOP_BY_HOP.has(lower) || REPLACED_ON_REQUEST.has(lower) || lower.startsWith('x-keygate-');

/**
 * CGI and WSGI read `X_Api_Key` and `X-Api-Key` as the same variable (HTTP_X_API_KEY): a name
 * with `_` that reads as an owned name once `_` is taken for `-` is dropped like that name.
 */
const ownedLookAlike = (lower: string): boolean => lower.includes('_') && owned(lower.replaceAll('_', '-'));

/** The names listed in Connection header values, lower-cased; null when there are none. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined || value === 'keep-alive' || value === 'close') return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  let set: Set<string> | null = null;
  for (const part of text.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') (set ??= new Set()).add(t);
  }
  return set;
}

/** `%XX` for every byte, precomputed. */
const PERCENT = Array.from({ length: 256 }, (_, b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`);

/**
 * A profile identity as the value of X-Keygate-Profile: the UTF-8 bytes outside visible ASCII
 * (0x21–0x7E), and `%` itself, percent-encoded, so any identity (non-Latin-1, spaces, control
 * characters in a token minted before they were refused) makes a valid header, a plain ASCII
 * id or email passes unchanged, and `decodeURIComponent` gives the identity back.
 */
export function profileHeaderValue(profile: string): string {
  let i = 0;
  for (; i < profile.length; i++) {
    const c = profile.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x25) break;
  }
  if (i === profile.length) return profile;
  let out = profile.slice(0, i);
  for (const b of Buffer.from(profile.slice(i), 'utf8')) out += b < 0x21 || b > 0x7e || b === 0x25 ? PERCENT[b]! : String.fromCharCode(b);
  return out;
}

export interface Identity {
  keyId: string;
  workspaceId: string;
  keyType: string;
  environment: string;
  profile: string | null;
}

export interface ForwardInfo {
  requestId: string;
  /** The socket peer, IPv4-mapped addresses read as IPv4. */
  peerIp: string;
  /** Whether the peer is a trusted proxy, whose X-Forwarded-* may be extended. */
  peerTrusted: boolean;
  identity: Identity;
}

/** The request headers the upstream sees: the client's, cleaned, plus identity and forwarding headers. */
export function upstreamRequestHeaders(req: IncomingMessage, scan: HeaderScan, info: ForwardInfo): string[] {
  const raw = req.rawHeaders;
  const named = scan.connection === null ? null : connectionTokens(scan.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (owned(lower) || ownedLookAlike(lower)) continue;
    if (named !== null && named.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  // From an untrusted peer the client's own X-Forwarded-* are not passed on: they could say anything.
  const h = info.peerTrusted ? req.headers : null;
  const priorFor = h?.['x-forwarded-for'];
  out.push('x-forwarded-for', priorFor ? `${Array.isArray(priorFor) ? priorFor.join(', ') : priorFor}, ${info.peerIp}` : info.peerIp);
  const proto = h?.['x-forwarded-proto'];
  out.push('x-forwarded-proto', typeof proto === 'string' ? proto : 'http');
  const fwdHost = h?.['x-forwarded-host'];
  const host = typeof fwdHost === 'string' ? fwdHost : scan.host;
  if (host) out.push('x-forwarded-host', host);
  out.push(
    'x-request-id', info.requestId,
    'x-keygate-key-id', info.identity.keyId,
    'x-keygate-workspace-id', info.identity.workspaceId,
    'x-keygate-key-type', info.identity.keyType,
    'x-keygate-environment', info.identity.environment,
  );
  if (info.identity.profile !== null) out.push('x-keygate-profile', profileHeaderValue(info.identity.profile));
  return out;
}

/**
 * The upstream's raw response headers (undici's `Buffer[]`, names and values alternating)
 * as the flat `[name, value, …]` list `writeHead` takes: hop-by-hop fields and any the
 * Connection header names are dropped, repeated fields (Set-Cookie) kept in order, and the
 * upstream's own X-Request-Id replaced by the gateway's; so are any fields `extra` (the
 * gateway's RateLimit-* for a key with limits, lower-case names) gives.
 */
/** The lengths of the response header names always dropped: any other name needs no lower-casing. */
const DROPPED_NAME_LENGTHS = new Set([...HOP_BY_HOP, 'x-request-id'].map((n) => n.length));

export function clientResponseHeaders(raw: readonly Buffer[], requestId: string, extra: Readonly<Record<string, string>> | null = null): string[] {
  let named: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 10 && name.toString('latin1').toLowerCase() === 'connection') {
      const tokens = connectionTokens(raw[i + 1]!.toString('latin1'));
      if (tokens) for (const t of tokens) (named ??= new Set()).add(t);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    if (named !== null || extra !== null || DROPPED_NAME_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || lower === 'x-request-id' || (named !== null && named.has(lower))) continue;
      if (extra !== null && Object.hasOwn(extra, lower)) continue;
    }
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  out.push('x-request-id', requestId);
  if (extra !== null) for (const name in extra) out.push(name, extra[name]!);
  return out;
}

export type ForwardResult =
  | { ok: true; status: number }
  | { ok: false; code: Extract<ErrorCode, 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_TIMEOUT' | 'REQUEST_TIMEOUT'> | 'CLIENT_GONE'; responded: boolean }
  /** The request could not be sent as built (undici refused an argument: a header, the path): the gateway's own fault. */
  | { ok: false; code: 'INTERNAL'; responded: false; err: Error };

// undici's headers and body timeouts are off (the handler keeps the time): connecting is all it times.
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT']);
/** undici refuses the request before contacting anyone: never an upstream fault. */
const INVALID_REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);
const CLIENT_GONE = new Error('the client closed the connection');
const TIMED_OUT = new Error('the upstream did not answer in time');
const REQUEST_TIMED_OUT = new Error('the request did not arrive within the request timeout');

/** An exchange on the upstream clocks. */
export interface Clocked {
  /** performance.now() at the exchange's last progress. */
  progressAt: number;
  readonly timeoutMs: number;
  prev: Clocked | null;
  next: Clocked | null;
  timedOut(): void;
}

/**
 * The upstreams' clocks, with no native timer per request: every exchange in flight sits on
 * one intrusive list, stamped with when it last made progress, and one sweep, every `period`
 * ms while anything is in flight (it stops at the first sweep that finds nothing), times out
 * those idle for their upstream's timeoutMs. A timeout so fires between timeoutMs and
 * timeoutMs + period (plus any event-loop delay) after the last progress. The period is
 * shared by the process: one short timeout makes every sweep more frequent. (A
 * timer per request costs an insert into the timer lists, a refresh per chunk and a
 * removal: about half a microsecond a request in CPU profiles of the key path.)
 */
export class UpstreamClocks {
  private head: Clocked | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** A tenth of the shortest timeoutMs, within 5–250 ms. */
  private period = 250;

  /** Called once per upstream, so the sweep is fine enough for the shortest timeout. */
  register(timeoutMs: number): void {
    const period = Math.max(5, Math.min(250, Math.floor(timeoutMs / 10)));
    if (period >= this.period) return;
    this.period = period;
    if (this.timer) {
      clearInterval(this.timer);
      this.start();
    }
  }

  /** Whether `h` is on the list. */
  private has(h: Clocked): boolean {
    return h.prev !== null || this.head === h;
  }

  /** Puts `h` on the list; one already on it stays as it is. */
  add(h: Clocked): void {
    if (this.has(h)) return;
    h.next = this.head;
    if (this.head) this.head.prev = h;
    this.head = h;
    if (!this.timer) this.start();
  }

  /** Takes `h` off the list, if it is on it. */
  remove(h: Clocked): void {
    if (!this.has(h)) return;
    if (h.prev) h.prev.next = h.next;
    else this.head = h.next;
    if (h.next) h.next.prev = h.prev;
    h.prev = h.next = null;
  }

  private start(): void {
    this.timer = setInterval(() => this.sweep(), this.period);
    this.timer.unref();
  }

  /** Whether a sweep is scheduled (only while an exchange is on the list, or until the sweep after it leaves). */
  get running(): boolean {
    return this.timer !== null;
  }

  private sweep(): void {
    if (this.head === null) {
      // Nothing in flight: no wake-ups until the next exchange.
      clearInterval(this.timer!);
      this.timer = null;
      return;
    }
    const now = performance.now();
    for (let h: Clocked | null = this.head; h !== null;) {
      const next: Clocked | null = h.next;
      if (now - h.progressAt >= h.timeoutMs) h.timedOut();
      h = next;
    }
  }
}
const clocks = new UpstreamClocks();

// One 'close' listener per client connection, not one per request: HTTP/1.1 has one request
// in flight per connection, so the socket names the forward a vanished client should abort.
const IN_FLIGHT = Symbol('keygate.inFlight');
type WatchedSocket = Socket & { [IN_FLIGHT]?: ProxyHandler | null };
function onClientSocketClose(this: WatchedSocket): void {
  const handler = this[IN_FLIGHT];
  if (handler) handler.clientGone();
}

/**
 * The request in flight on `socket` did not arrive within the server's request timeout (its
 * body still trickling in while it streams upstream): its exchange ends as REQUEST_TIMEOUT,
 * for the caller to answer 408, and the upstream call is aborted once that answer is out.
 * False when no exchange is in flight there or its answer has begun.
 */
export function requestTimedOut(socket: Socket): boolean {
  const handler = (socket as WatchedSocket)[IN_FLIGHT];
  return handler ? handler.requestTimedOut() : false;
}

/**
 * undici's own handler interface (the one its HTTP/1.1 client calls directly, so no adapter
 * sits between and response headers stay raw): response bytes go straight into the client's
 * response with back-pressure both ways, and a client that goes away aborts the upstream call.
 */
class ProxyHandler implements Dispatcher.DispatchHandler, Clocked {
  private abortUpstream: ((reason: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  /** The client is not reading: the upstream is paused, and its silence is not its fault. */
  private paused = false;
  private status = 0;
  private settled = false;
  private abortWith: Error | null = null;
  /**
   * The upstream's clock (UpstreamClocks) runs from when the request is sent (a slow upload
   * is the client's time, bounded by the server's requestTimeoutMs) until the response
   * headers, then between body chunks. Not undici's own timeouts: those tick at about one
   * second and each request leaves a timer object behind until the next tick, which the GC
   * then has to promote and sweep.
   */
  progressAt = 0;
  prev: Clocked | null = null;
  next: Clocked | null = null;
  private readonly socket: WatchedSocket | null;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly drain: DrainState,
    readonly timeoutMs: number,
    private readonly extraHeaders: Readonly<Record<string, string>> | null,
    private readonly done: (result: ForwardResult) => void,
  ) {
    const socket = res.socket as WatchedSocket | null;
    this.socket = socket;
    if (socket) {
      if (socket[IN_FLIGHT] === undefined) socket.once('close', onClientSocketClose);
      socket[IN_FLIGHT] = this;
    }
  }

  /** Starts the upstream's clock, or starts it again. */
  private arm(): void {
    if (this.settled) return;
    this.progressAt = performance.now();
    clocks.add(this);
  }

  timedOut(): void {
    if (!this.settled && !this.paused) this.abort(TIMED_OUT);
  }

  clientGone(): void {
    if (!this.settled) this.abort(CLIENT_GONE);
  }

  requestTimedOut(): boolean {
    if (this.settled || this.res.headersSent) return false;
    this.settle({ ok: false, code: 'REQUEST_TIMEOUT', responded: false });
    // Aborting the upstream call destroys the request stream, and with it the connection: only
    // once the 408 is out.
    const abort = (): void => this.abort(REQUEST_TIMED_OUT);
    if (this.res.writableFinished || this.res.destroyed) abort();
    else {
      this.res.once('finish', abort);
      this.res.once('close', abort);
    }
    return true;
  }

  private abort(reason: Error): void {
    if (this.abortWith !== null) return;
    this.abortWith = reason;
    if (this.abortUpstream) this.abortUpstream(reason);
    // Still queued for a connection: answer now; the dispatch is aborted when it starts.
    else this.onError(reason);
  }

  onConnect(abort: (reason: Error) => void): void {
    this.abortUpstream = abort;
    if (this.abortWith !== null) abort(this.abortWith);
  }

  onRequestSent(): void {
    this.arm();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: the client gets only the final answer
    if (this.settled) return true; // already answered (the request timed out): the rest is dropped
    this.arm();
    this.status = statusCode;
    this.resume = resume;
    if (this.drain.draining) this.res.shouldKeepAlive = false;
    this.res.writeHead(statusCode, clientResponseHeaders(rawHeaders, this.requestId, this.extraHeaders));
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return true;
    this.arm();
    if (this.res.write(chunk)) return true;
    // A slow client pauses the upstream; the clock starts again when the client drains.
    this.paused = true;
    this.res.once('drain', () => {
      this.paused = false;
      this.arm();
      this.resume!();
    });
    return false;
  }

  onComplete(): void {
    if (this.settled) return;
    this.res.end();
    this.settle({ ok: true, status: this.status });
  }

  onError(err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    const responded = this.res.headersSent;
    const reason = this.abortWith ?? err;
    if (reason === CLIENT_GONE) this.settle({ ok: false, code: 'CLIENT_GONE', responded });
    else if (!responded && INVALID_REQUEST_CODES.has(code)) this.settle({ ok: false, code: 'INTERNAL', responded, err });
    else if (reason === TIMED_OUT || TIMEOUT_CODES.has(code)) this.settle({ ok: false, code: 'UPSTREAM_TIMEOUT', responded });
    else this.settle({ ok: false, code: 'UPSTREAM_UNAVAILABLE', responded });
  }

  private settle(result: ForwardResult): void {
    if (this.settled) return;
    this.settled = true;
    clocks.remove(this);
    if (this.socket && this.socket[IN_FLIGHT] === this) this.socket[IN_FLIGHT] = null;
    this.done(result);
  }
}

/** One keep-alive Pool per upstream; bodies stream both ways, never buffered here. */
export class Upstream {
  readonly name: string;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  private readonly basePath: string;

  constructor(name: string, config: UpstreamConfig, connections = 128) {
    this.name = name;
    this.timeoutMs = config.timeoutMs;
    clocks.register(config.timeoutMs);
    const url = new URL(config.url);
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: Math.min(config.timeoutMs, 5_000),
    });
    this.basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  }

  /**
   * Streams `req` to the upstream and the answer back into `res`. `body` replaces the
   * request stream when the pipeline already read it (inspected routes).
   */
  forward(req: IncomingMessage, res: ServerResponse, path: string, headers: string[], requestId: string, drain: DrainState,
    body: Buffer | null, hasBody: boolean, extraHeaders: Readonly<Record<string, string>> | null, done: (result: ForwardResult) => void): void {
    this.pool.dispatch(
      {
        path: this.basePath + path,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: body ?? (hasBody ? req : null),
        // The upstream clocks enforce timeoutMs (see UpstreamClocks).
        headersTimeout: 0,
        bodyTimeout: 0,
      },
      new ProxyHandler(res, requestId, drain, this.timeoutMs, extraHeaders, done),
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
