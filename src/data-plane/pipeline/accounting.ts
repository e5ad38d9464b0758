import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Peer } from '../request/peer.js';
import type { Logger } from 'pino';
import type { ParsedIp } from '../../domain/cidr.js';
import type { AccessLog } from '../../observability/access-log.js';
import type { CounterChild, HistogramChild } from '../../observability/hot-metrics.js';
import { statusClass, type Metrics } from '../../observability/metrics.js';
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
  readonly peer: Peer;
}

/**
 * Every request's end, counted once: its total time and the gateway's own share of it per
 * route, the route × outcome × status class counter, the key's usage and the access log line.
 */
export class Accounting {
  private readonly metrics: Metrics;
  private readonly usage: UsageRecorder;
  private readonly accessLog: AccessLog | null;
  /** Route → its latency children (total, overhead), bound on first use: one map lookup per request. */
  private readonly durations = new Map<string, { total: HistogramChild; overhead: HistogramChild }>();
  /** Route → outcome → status class → counter child: no key string built per request. */
  private readonly counters = new Map<string, Map<string, Array<CounterChild | undefined>>>();

  constructor({ metrics, logger, usage, accessLog }: AccountingDeps) {
    this.metrics = metrics;
    this.usage = usage;
    this.accessLog = accessLog !== null && logger.isLevelEnabled('info') ? accessLog : null;
  }

  /**
   * One request counted under `route`, `outcome` and the class of `status` (a parser-refused
   * one has no more than this). A forwarded answer with a 5xx status counts as
   * `UPSTREAM_ERROR`, not `OK`.
   */
  count(route: string, outcome: string, status: number): void {
    if (outcome === 'OK' && status >= 500) outcome = 'UPSTREAM_ERROR';
    let byOutcome = this.counters.get(route);
    if (!byOutcome) this.counters.set(route, (byOutcome = new Map()));
    let byClass = byOutcome.get(outcome);
    if (!byClass) byOutcome.set(outcome, (byClass = []));
    const i = status < 100 ? 1 : status >= 600 ? 5 : Math.floor(status / 100);
    let c = byClass[i];
    if (!c) c = byClass[i] = this.metrics.requests.labels({ route, outcome, status_class: statusClass(status) });
    c.inc();
  }

  private durationsOf(route: string): { total: HistogramChild; overhead: HistogramChild } {
    let d = this.durations.get(route);
    if (!d) {
      d = { total: this.metrics.requestDuration.labels({ route, kind: 'total' }), overhead: this.metrics.requestDuration.labels({ route, kind: 'overhead' }) };
      this.durations.set(route, d);
    }
    return d;
  }

  finish(r: Accounted, route: string, status: number, outcome: string, upstreamMs: number): void {
    const ms = performance.now() - r.started;
    const d = this.durationsOf(route);
    d.total.observe(ms / 1000);
    d.overhead.observe((ms - upstreamMs) / 1000);
    this.count(route, outcome, status);
    const policy = r.policy;
    if (policy !== null) this.usage.record(policy.keyId, outcome, Date.now());
    if (this.accessLog === null) return;
    const socket = r.req.socket;
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
      requestBytes: bytesRead(socket, r.peer),
      responseBytes: bytesWritten(socket, r.peer),
      upstreamMs,
      totalMs: ms,
    });
  }

  /**
   * A request the HTTP parser refused (malformed, headers over 16 KiB, too slow), answered on
   * `socket` already: counted under `unmatched`, and logged with what is known of it.
   */
  parserRefusal(socket: Socket, peer: Peer, requestId: string, traceId: string, status: number, code: string): void {
    this.count('unmatched', code, status);
    if (this.accessLog === null) return;
    this.accessLog.record({
      requestId, traceId, method: null, route: 'unmatched', status, outcome: code, keyId: null, workspaceId: null, clientIp: peer.text,
      requestBytes: bytesRead(socket, peer), responseBytes: bytesWritten(socket, peer), upstreamMs: 0, totalMs: 0,
    });
  }
}

// The connection's bytes since its previous request ended (the marks its peer keeps): HTTP/1.1
// carries one request at a time, so that is this request's (headers and body), less any
// pipelined after it.
function bytesRead(socket: Socket, peer: Peer): number {
  const now = socket.bytesRead;
  const n = now - peer.readMark;
  peer.readMark = now;
  return n;
}

function bytesWritten(socket: Socket, peer: Peer): number {
  const now = socket.bytesWritten ?? peer.writtenMark;
  const n = now - peer.writtenMark;
  peer.writtenMark = now;
  return n;
}
