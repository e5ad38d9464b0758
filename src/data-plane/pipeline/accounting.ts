import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ParsedIp } from '../../domain/cidr.js';
import type { AccessLog } from '../../observability/access-log.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Trace } from '../request/correlation.js';
import type { UsageRecorder } from './usage-recorder.js';

export interface AccountingDeps {
  metrics: Metrics;
  logger: Logger;
  usage: UsageRecorder;
  /** The access log (`gateway.accessLog`), or null: one line per request at info level. */
  accessLog: AccessLog | null;
}

/** What the accounting reads of a request (a `RequestContext`, or what a refusal before routing knows). */
export interface Accounted {
  readonly req: IncomingMessage;
  readonly requestId: string;
  readonly trace: Trace;
  /** `performance.now()` when the request arrived. */
  readonly started: number;
  readonly policy: { readonly keyId: string; readonly workspaceId: string } | null;
  readonly clientIp: ParsedIp | null;
  readonly peer: { readonly ip: ParsedIp | null; readonly text: string };
}

/** The connection's byte counts when its previous request ended. */
const MARK = Symbol('keygate.accountedBytes');
type MarkedSocket = Socket & { [MARK]?: { read: number; written: number } };

/**
 * Every request's end, counted once: its total time and the gateway's own share of it, the
 * route × outcome counter, the key's usage and the access log line.
 */
export class Accounting {
  private readonly metrics: Metrics;
  private readonly usage: UsageRecorder;
  private readonly accessLog: AccessLog | null;
  // Pre-bound metric children: no label lookup per request.
  private readonly total: ReturnType<Metrics['requestDuration']['labels']>;
  private readonly overhead: ReturnType<Metrics['requestDuration']['labels']>;
  /** Route → outcome → counter child: two map lookups per request, no key string built. */
  private readonly counters = new Map<string, Map<string, ReturnType<Metrics['requests']['labels']>>>();

  constructor({ metrics, logger, usage, accessLog }: AccountingDeps) {
    this.metrics = metrics;
    this.usage = usage;
    this.accessLog = accessLog !== null && logger.isLevelEnabled('info') ? accessLog : null;
    this.total = metrics.requestDuration.labels({ kind: 'total' });
    this.overhead = metrics.requestDuration.labels({ kind: 'overhead' });
  }

  /** One request counted under `route` and `outcome` (a parser-refused one has no more than this). */
  count(route: string, outcome: string): void {
    let byOutcome = this.counters.get(route);
    if (!byOutcome) this.counters.set(route, (byOutcome = new Map()));
    let c = byOutcome.get(outcome);
    if (!c) byOutcome.set(outcome, (c = this.metrics.requests.labels({ route, outcome })));
    c.inc();
  }

  finish(r: Accounted, route: string, status: number, outcome: string, upstreamMs: number): void {
    const ms = performance.now() - r.started;
    this.total.observe(ms / 1000);
    this.overhead.observe((ms - upstreamMs) / 1000);
    this.count(route, outcome);
    const policy = r.policy;
    if (policy !== null) this.usage.record(policy.keyId, outcome, Date.now());
    if (this.accessLog === null) return;
    const socket = r.req.socket as MarkedSocket;
    const ip = r.clientIp;
    this.accessLog.record({
      requestId: r.requestId,
      traceId: r.trace.traceId,
      method: r.req.method ?? '',
      route,
      status,
      outcome,
      keyId: policy === null ? null : policy.keyId,
      workspaceId: policy === null ? null : policy.workspaceId,
      clientIp: ip === null ? null : ip === r.peer.ip ? r.peer.text : ip.toString(),
      requestBytes: bytesRead(socket),
      responseBytes: bytesWritten(socket),
      upstreamMs,
      totalMs: ms,
    });
  }

  /**
   * A request the HTTP parser refused (malformed, headers over 16 KiB, too slow), answered on
   * `socket` already: counted under `unmatched`, and logged with what is known of it.
   */
  parserRefusal(socket: Socket, peer: { readonly text: string }, requestId: string, traceId: string, status: number, code: string): void {
    this.count('unmatched', code);
    if (this.accessLog === null) return;
    this.accessLog.record({
      requestId, traceId, method: null, route: 'unmatched', status, outcome: code, keyId: null, workspaceId: null, clientIp: peer.text,
      requestBytes: bytesRead(socket as MarkedSocket), responseBytes: bytesWritten(socket as MarkedSocket), upstreamMs: 0, totalMs: 0,
    });
  }
}

// The connection's bytes since its previous request ended: HTTP/1.1 carries one request at a
// time, so that is this request's (headers and body), less any pipelined after it.
function mark(socket: MarkedSocket): { read: number; written: number } {
  let m = socket[MARK];
  if (m === undefined) socket[MARK] = m = { read: 0, written: 0 };
  return m;
}

function bytesRead(socket: MarkedSocket): number {
  const m = mark(socket);
  const now = socket.bytesRead;
  const n = now - m.read;
  m.read = now;
  return n;
}

function bytesWritten(socket: MarkedSocket): number {
  const m = mark(socket);
  const now = socket.bytesWritten ?? m.written;
  const n = now - m.written;
  m.written = now;
  return n;
}
