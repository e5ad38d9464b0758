import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../../errors/catalogue.js';
import type { DrainState } from '../../http/drain.js';
import type { InFlight, Peer } from '../request/peer.js';
import { clocks, type Clocked } from './clocks.js';
import { clientResponseHeaders } from './response-headers.js';

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

// The request body is the client's stream: the upstream's clock starts once it has all been
// read (a slow upload is the client's time). One listener function for every request.
const BODY_OWNER = Symbol('keygate.bodyOwner');
type OwnedBody = IncomingMessage & { [BODY_OWNER]?: ProxyHandler | null };
function onRequestBodyEnd(this: OwnedBody): void {
  const handler = this[BODY_OWNER];
  if (handler) handler.requestSent();
}

/**
 * undici's dispatch handler, on the callbacks its connections call themselves (onConnect,
 * onHeaders, onData, onComplete, onError): response bytes go straight into the client's
 * response with back-pressure both ways, and a client that goes away aborts the upstream call.
 * The response headers are undici's raw list (names in their case, values byte for byte, in
 * order). Not the controller interface (onRequestStart … onResponseEnd): undici adapts that
 * one through a wrapper that allocates a controller per request and parses the response
 * headers and trailers into objects the proxy never reads (about a microsecond a request).
 */
export class ProxyHandler implements Dispatcher.DispatchHandler, Clocked, InFlight {
  /** undici's abort for this request, from onConnect; null until the request has a connection. */
  private abortUpstream: ((err: Error) => void) | null = null;
  /** undici's resume for a paused response, from onHeaders. */
  private resumeUpstream: (() => void) | null = null;
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

  constructor(
    private readonly res: ServerResponse,
    /** The client connection's peer (null: none to watch): the forward in flight on it, told when the client leaves. */
    private readonly peer: Peer | null,
    private readonly requestId: string,
    private readonly drain: DrainState,
    readonly timeoutMs: number,
    private readonly extraHeaders: Readonly<Record<string, string>> | null,
    /** The client's request when its body streams to the upstream: the clock waits for its end. */
    private readonly streamedBody: IncomingMessage | null,
    private readonly done: (result: ForwardResult) => void,
  ) {
    const socket = res.socket;
    if (peer !== null && socket !== null) {
      // One 'close' listener per client connection, not one per request: HTTP/1.1 has one
      // request in flight per connection, so its peer names the forward a vanished client aborts.
      if (!peer.watched) {
        peer.watched = true;
        socket.once('close', () => peer.inFlight?.clientGone());
      }
      peer.inFlight = this;
    }
    if (streamedBody !== null && !streamedBody.readableEnded) {
      const body = streamedBody as OwnedBody;
      if (body[BODY_OWNER] === undefined) body.once('end', onRequestBodyEnd);
      body[BODY_OWNER] = this;
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

  /**
   * The request did not arrive within the server's request timeout (its body still trickling
   * in while it streams upstream): the exchange ends as REQUEST_TIMEOUT, for the caller to
   * answer 408, and the upstream call is aborted once that answer is out. False when the
   * answer has begun.
   */
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

  /** The request has a connection and is being sent (again, if an idle connection failed under it first). */
  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.abortWith !== null) return abort(this.abortWith);
    // Nothing left to upload (no body, a body already read, or one already fully received):
    // the request is sent as it starts.
    if (this.streamedBody === null || this.streamedBody.readableEnded) this.arm();
  }

  /** The client's body has all been read and handed to the upstream connection. */
  requestSent(): void {
    if (this.abortUpstream !== null && this.status === 0) this.arm();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: the client gets only the final answer
    if (this.settled) return true; // already answered (the request timed out): the rest is dropped
    this.arm();
    this.status = statusCode;
    this.resumeUpstream = resume;
    if (this.drain.draining) this.res.shouldKeepAlive = false;
    this.res.writeHead(statusCode, clientResponseHeaders(rawHeaders, this.requestId, this.extraHeaders));
    return true;
  }

  /** A body chunk; false pauses the upstream until the client drains (then `resume`). */
  onData(chunk: Buffer): boolean {
    if (this.settled) return true;
    this.arm();
    if (this.res.write(chunk)) return true;
    // A slow client pauses the upstream; the clock starts again when the client drains.
    this.paused = true;
    this.res.once('drain', () => {
      this.paused = false;
      this.arm();
      this.resumeUpstream?.();
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
    if (this.peer !== null && this.peer.inFlight === this) this.peer.inFlight = null;
    const body = this.streamedBody as OwnedBody | null;
    if (body !== null && body[BODY_OWNER] === this) body[BODY_OWNER] = null;
    this.done(result);
  }
}
