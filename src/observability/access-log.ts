import { LineWriter } from './line-writer.js';

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

/**
 * Milliseconds to two decimals as JSON number text, by integer arithmetic: V8 prints a small
 * integer far faster than a fraction (`1.05` from 105).
 */
function ms(x: number): string {
  const hundredths = Math.round(x * 100);
  if (!(hundredths >= 0 && hundredths < 0x3fffffff)) return String(Math.round(x * 100) / 100);
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths - whole * 100;
  return frac === 0 ? `${whole}` : frac < 10 ? `${whole}.0${frac}` : frac % 10 === 0 ? `${whole}.${frac / 10}` : `${whole}.${frac}`;
}

/**
 * The access log: one JSON line per request, composed by concatenation (no object, no
 * serializer, no redaction pass: every field is chosen here and none can carry a secret) and
 * handed to a `LineWriter`, which writes the lines in batches off the request path. The line
 * has the shape of keygate's other log lines (`level` as a word, ISO 8601 `time`, `pid`,
 * `msg`), so they can be read and grepped together.
 */
export class AccessLog {
  private readonly head = '{"level":"info","time":"';
  private readonly tail: string;
  private lastMs = -1;
  private lastTime = '';
  /** Route names, methods, key and workspace ids: each escaped once (up to 10 000 of them). */
  private readonly escaped = new Map<string, string>();

  constructor(readonly writer: LineWriter, pid: number = process.pid) {
    this.tail = `","pid":${pid},"msg":"request","requestId":"`;
  }

  /** The ISO 8601 time of now, formatted once per millisecond. */
  private time(): string {
    const now = Date.now();
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.lastTime = new Date(now).toISOString();
    }
    return this.lastTime;
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
  line(e: AccessEntry): string {
    return `${this.head}${this.time()}${this.tail}${e.requestId}","traceId":"${e.traceId}","method":${e.method === null ? 'null' : this.named(e.method)},"route":${this.named(e.route)
    },"status":${e.status},"outcome":"${e.outcome}","keyId":${e.keyId === null ? 'null' : this.named(e.keyId)
    },"workspaceId":${e.workspaceId === null ? 'null' : this.named(e.workspaceId)},"clientIp":${e.clientIp === null ? 'null' : `"${e.clientIp}"`
    },"requestBytes":${e.requestBytes},"responseBytes":${e.responseBytes},"upstreamMs":${ms(e.upstreamMs)},"totalMs":${ms(e.totalMs)}}\n`;
  }

  /** Buffers the request's line; false when it was dropped (the writer's buffer is full). */
  record(e: AccessEntry): boolean {
    return this.writer.write(this.line(e));
  }

  /** Resolves once every line so far is written. */
  flush(): Promise<void> {
    return this.writer.flush();
  }
}

/**
 * The process's access log on stdout, its dropped lines counted by `onDrop`. Lines still
 * buffered when the process exits (an exit no drain preceded) are written synchronously.
 */
export function stdoutAccessLog(onDrop: (lines: number) => void): AccessLog {
  const writer = new LineWriter({ fd: 1, onDrop });
  process.once('exit', () => writer.flushSync());
  return new AccessLog(writer);
}
