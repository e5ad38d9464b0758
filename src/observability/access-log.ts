import { isoCache } from '../domain/iso-time.js';
import { LONG_LINE, LineWriter } from './line-writer.js';

/** One request as its access log line tells it. Never a secret, a token, a query string or a header value. */
export interface AccessEntry {
  requestId: string;
  traceId: string;
  /** Null for a request the HTTP parser refused before its method was read. */
  method: string | null;
  route: string;
  status: number;
  /** `OK`, a catalogued error code, or `CLIENT_CLOSED`. */
  outcome: string;
  keyId: string | null;
  workspaceId: string | null;
  clientIp: string | null;
  /** Bytes read from and written to the client's connection for this request (headers and body). */
  requestBytes: number;
  responseBytes: number;
  upstreamMs: number;
  totalMs: number;
}

// Printable ASCII but `"` and `\`: a string of these is its own JSON text between quotes.
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string literal in ASCII only (non-ASCII as \u escapes), so a line's length is its size in bytes. */
export function asciiJson(s: string): string {
  if (PLAIN.test(s)) return `"${s}"`;
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const CLOSE = 0x7d;
const NEWLINE = 0x0a;
const HEAD = Buffer.from('{"level":"info","time":"', 'latin1');
const TRACE_ID = Buffer.from('","traceId":"', 'latin1');
const RESPONSE_BYTES = Buffer.from(',"responseBytes":', 'latin1');
const UPSTREAM_MS = Buffer.from(',"upstreamMs":', 'latin1');
const TOTAL_MS = Buffer.from(',"totalMs":', 'latin1');
/** The most a line's last fields take: their names, four numbers of at most 24 characters, "}\n". */
const TAIL_FIELDS_BYTES = RESPONSE_BYTES.length + UPSTREAM_MS.length + TOTAL_MS.length + 4 * 24 + 2;

/**
 * Requests whose lines are composed together, in one pass: composing a line right after its
 * request finds the composer's code and data pushed out of the CPU's caches by the request's
 * own work, and paid for that about as much again as for the line; a batch pays it once.
 */
const BATCH = 64;
/** The longest a request waits for its batch before its line is composed (then `LineWriter`'s flushMs to its write). */
const BATCH_MS = 10;

/** A line's bytes from `","method":` to `"requestBytes":`, and the fields they were made from. */
type Segment = Pick<AccessEntry, 'method' | 'route' | 'status' | 'outcome' | 'keyId' | 'workspaceId' | 'clientIp'> & { bytes: Buffer };

/** Copies `bytes` into `buf` at `at`; the offset after them. */
function put(buf: Buffer, at: number, bytes: Uint8Array): number {
  buf.set(bytes, at);
  return at + bytes.length;
}

/** Copies `s` (ASCII) into `buf` at `at`; the offset after it. */
function ascii(buf: Buffer, at: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) buf[at + i] = s.charCodeAt(i);
  return at + n;
}

/** Writes a non-negative integer's digits into `buf` at `at` (anything else as JSON number text); the offset after it. */
function int(buf: Buffer, at: number, x: number): number {
  if (!(x >= 0 && x <= 0x7fffffff && (x | 0) === x)) return ascii(buf, at, Number.isFinite(x) ? String(x) : 'null');
  let digits = 1;
  for (let d = x; d >= 10; d = (d / 10) | 0) digits++;
  let end = at + digits;
  for (let d = x; end > at; d = (d / 10) | 0) buf[--end] = 0x30 + (d % 10);
  return at + digits;
}

/**
 * Milliseconds to two decimals as JSON number text, by integer arithmetic: V8 prints a small
 * integer far faster than a fraction (`1.05` from 105).
 */
function ms(x: number): string {
  const hundredths = Math.round(x * 100);
  if (!(hundredths >= 0 && hundredths < 0x3fffffff)) return Number.isFinite(x) ? String(Math.round(x * 100) / 100) : 'null';
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths - whole * 100;
  return frac === 0 ? `${whole}` : frac < 10 ? `${whole}.0${frac}` : frac % 10 === 0 ? `${whole}.${frac / 10}` : `${whole}.${frac}`;
}

/** A number as JSON text (null for NaN and the infinities, which JSON lacks). */
const num = (x: number): string => (Number.isFinite(x) ? String(x) : 'null');

/** `ms(x)`'s text written into `buf` at `at`; the offset after it. */
function msInto(buf: Buffer, at: number, x: number): number {
  const hundredths = Math.round(x * 100);
  if (!(hundredths >= 0 && hundredths < 0x3fffffff)) return ascii(buf, at, ms(x));
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths - whole * 100;
  at = int(buf, at, whole);
  if (frac === 0) return at;
  buf[at++] = 0x2e;
  buf[at++] = 0x30 + Math.floor(frac / 10);
  if (frac % 10 !== 0) buf[at++] = 0x30 + (frac % 10);
  return at;
}

/**
 * The access log: one JSON line per request, every field chosen here (no object serialized, no
 * redaction pass: none can carry a secret), written as bytes into a `LineWriter`'s buffer,
 * which writes them in batches off the request path. The line has the shape of keygate's other
 * log lines (`level` as a word, ISO 8601 `time`, `pid`, `msg`), so they can be read and grepped
 * together. `line` composes the same text as a string (the reference `record` is tested against).
 */
export class AccessLog {
  private readonly tail: string;
  private readonly tailBytes: Buffer;
  /** The ISO 8601 text of a time (ms since the epoch), formatted once per millisecond. */
  private readonly iso = isoCache();
  /** The time whose bytes `lastTimeBytes` holds. */
  private lastTime = '';
  private lastTimeBytes = Buffer.alloc(0);
  /** Per key id ('' for none): the segment of its last request's line. */
  private readonly segments = new Map<string, Segment>();
  /** Route names, methods, key and workspace ids: each escaped once (up to 10 000 of them). */
  private readonly escaped = new Map<string, string>();
  /** Requests recorded whose lines are not composed yet, and when each was recorded (ms since the epoch). */
  private readonly pending: AccessEntry[] = [];
  private readonly pendingAt = new Float64Array(BATCH);
  private batchTimer: NodeJS.Timeout | null = null;
  private readonly onBatchTimer = (): void => {
    this.batchTimer = null;
    this.compose();
  };

  constructor(readonly writer: LineWriter, pid: number = process.pid) {
    this.tail = `","pid":${pid},"msg":"request","requestId":"`;
    this.tailBytes = Buffer.from(this.tail, 'latin1');
  }

  private named(s: string): string {
    let e = this.escaped.get(s);
    if (e === undefined) {
      e = asciiJson(s);
      if (this.escaped.size < 10_000) this.escaped.set(s, e);
    }
    return e;
  }

  /**
   * The line for one request. `requestId` is the gateway's own or a client's well-formed one,
   * `traceId` hex, `outcome` a catalogued code: none needs escaping.
   */
  line(e: AccessEntry, at: number = Date.now()): string {
    return `{"level":"info","time":"${this.iso(at)}${this.tail}${e.requestId}","traceId":"${e.traceId}${this.segmentText(e)}${num(e.requestBytes)
    },"responseBytes":${num(e.responseBytes)},"upstreamMs":${ms(e.upstreamMs)},"totalMs":${ms(e.totalMs)}}\n`;
  }

  /** The line's text from `","method":` to `"requestBytes":`: the fields a key's requests mostly share. */
  private segmentText(e: AccessEntry): string {
    return `","method":${e.method === null ? 'null' : this.named(e.method)},"route":${this.named(e.route)},"status":${num(e.status)
    },"outcome":"${e.outcome}","keyId":${e.keyId === null ? 'null' : this.named(e.keyId)},"workspaceId":${e.workspaceId === null ? 'null' : this.named(e.workspaceId)
    },"clientIp":${e.clientIp === null ? 'null' : `"${e.clientIp}"`},"requestBytes":`;
  }

  /** The ISO 8601 text of `at` as bytes, made once per millisecond. */
  private timeBytes(at: number): Buffer {
    const time = this.iso(at);
    if (time !== this.lastTime) {
      this.lastTime = time;
      this.lastTimeBytes = Buffer.from(time, 'latin1');
    }
    return this.lastTimeBytes;
  }

  /**
   * The line's bytes from `","method":` to `"requestBytes":` — the fields a key's requests
   * mostly share — made once and kept while the key's next request has the same ones.
   */
  private segment(e: AccessEntry): Buffer {
    const k = e.keyId ?? '';
    let s = this.segments.get(k);
    if (s === undefined || s.method !== e.method || s.route !== e.route || s.status !== e.status || s.outcome !== e.outcome
      || s.keyId !== e.keyId || s.workspaceId !== e.workspaceId || s.clientIp !== e.clientIp) {
      const bytes = Buffer.from(this.segmentText(e), 'latin1');
      s = { method: e.method, route: e.route, status: e.status, outcome: e.outcome, keyId: e.keyId, workspaceId: e.workspaceId, clientIp: e.clientIp, bytes };
      if (this.segments.size >= 10_000) this.segments.clear();
      this.segments.set(k, s);
    }
    return s.bytes;
  }

  /**
   * Takes one request for the log: its line is composed with its batch's (at the batch's
   * 64th request, `BATCH_MS` after its first, or at `flush`), with the time of this call.
   * A line the writer's buffer has no room for is dropped and counted there.
   */
  record(e: AccessEntry): void {
    const n = this.pending.push(e);
    this.pendingAt[n - 1] = Date.now();
    if (n === BATCH) this.compose();
    else if (this.batchTimer === null) this.batchTimer = setTimeout(this.onBatchTimer, BATCH_MS).unref();
  }

  /** The pending requests' lines, into the writer. */
  private compose(): void {
    const p = this.pending;
    for (let i = 0; i < p.length; i++) this.writeLine(p[i]!, this.pendingAt[i]!);
    p.length = 0;
  }

  /**
   * Buffers one request's line (the writer drops and counts it when its buffer is full). The
   * same text as `line`, written straight into the writer's buffer from pieces kept as bytes
   * (the time for its millisecond, the fields its key's last request shared) and the few
   * that change with every request: no string is made, so a request leaves no garbage for
   * its log line.
   */
  private writeLine(e: AccessEntry, recordedAt: number): void {
    const seg = this.segment(e);
    const time = this.timeBytes(recordedAt);
    const tail = this.tailBytes;
    const max = HEAD.length + time.length + tail.length + e.requestId.length + TRACE_ID.length + e.traceId.length + seg.length + TAIL_FIELDS_BYTES;
    const w = this.writer;
    const buf = w.reserve(max);
    // A line longer than one write (only a route name of kilobytes makes one): as a string.
    if (buf === LONG_LINE) {
      w.write(this.line(e, recordedAt));
      return;
    }
    let at = put(buf, w.offset, HEAD);
    at = put(buf, at, time);
    at = put(buf, at, tail);
    at = ascii(buf, at, e.requestId);
    at = put(buf, at, TRACE_ID);
    at = ascii(buf, at, e.traceId);
    at = put(buf, at, seg);
    at = int(buf, at, e.requestBytes);
    at = put(buf, at, RESPONSE_BYTES);
    at = int(buf, at, e.responseBytes);
    at = put(buf, at, UPSTREAM_MS);
    at = msInto(buf, at, e.upstreamMs);
    at = put(buf, at, TOTAL_MS);
    at = msInto(buf, at, e.totalMs);
    buf[at++] = CLOSE;
    buf[at++] = NEWLINE;
    w.commit(at);
  }

  /** Resolves once every line so far is written. */
  flush(): Promise<void> {
    this.compose();
    return this.writer.flush();
  }

  /** Writes every line so far at once (the process is exiting: no further turn of the event loop comes). */
  flushSync(): void {
    this.compose();
    this.writer.flushSync();
  }
}

/**
 * The process's access log on stdout, its dropped lines counted by `onDrop`. Lines still
 * buffered when the process exits (an exit no drain preceded) are written synchronously.
 */
export function stdoutAccessLog(onDrop: (lines: number) => void): AccessLog {
  const log = new AccessLog(new LineWriter({ fd: 1, onDrop }));
  process.once('exit', () => log.flushSync());
  return log;
}
