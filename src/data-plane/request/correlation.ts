import { randomBytes, randomFillSync } from 'node:crypto';

/** The longest client `X-Request-Id` kept (Heroku's and Kong's correlation ids are far shorter). */
export const MAX_REQUEST_ID_LENGTH = 128;
// Characters that need no escaping in a header, a JSON string or a log line.
const REQUEST_ID = /^[\w.:@/+=-]+$/;

/** Whether a client's `X-Request-Id` is kept: 1–128 characters of letters, digits and `_.:@/+=-`. */
export function wellFormedRequestId(value: string): boolean {
  return value.length <= MAX_REQUEST_ID_LENGTH && REQUEST_ID.test(value);
}

/** A W3C trace context (https://www.w3.org/TR/trace-context/) as the gateway carries it. */
export interface Trace {
  /** 32 lower-case hex digits, never all zero: the client's, or a new one. */
  readonly traceId: string;
  /** The trace flags sent on (`01` sampled, `00` not). */
  readonly flags: string;
  /** The client's `tracestate`, passed on unchanged with a valid `traceparent`; else null. */
  readonly tracestate: string | null;
}

const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';
const HEX = /^[0-9a-f]+$/;

/**
 * Reads a `traceparent` header (version-traceid-parentid-flags). Version 00 is exactly 55
 * characters; a later version is read as 00 when its first four fields are (the spec's forward
 * compatibility), `ff` is invalid. Upper-case hex and all-zero ids are invalid. Returns the
 * trace id and the flags to send on, or null.
 */
export function parseTraceparent(value: string): { traceId: string; flags: string } | null {
  if (value.length < 55 || value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return null;
  const version = value.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return null;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return null;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return null;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  // Only the sampled flag is defined for version 00; the gateway sends no other bit on.
  return { traceId, flags: (parseInt(flags, 16) & 1) === 1 ? '01' : '00' };
}

/**
 * Random ids for traces and spans, cut from a pool of random hex digits: 4 KiB of random bytes
 * turned to hex at once, one `randomFillSync` and one conversion per 170 requests instead of
 * one per id (each id is a slice of the pool's string, not a copy).
 */
export class TraceIds {
  private readonly bytes = Buffer.allocUnsafe(4096);
  private pool = '';
  private at = 0;

  private hex(bytes: number): string {
    const digits = bytes * 2;
    if (this.at + digits > this.pool.length) {
      randomFillSync(this.bytes);
      this.pool = this.bytes.toString('hex');
      this.at = 0;
    }
    const id = this.pool.slice(this.at, (this.at += digits));
    // An all-zero id is invalid (and has one chance in 2^64 or 2^128): draw again.
    return /[^0]/.test(id) ? id : this.hex(bytes);
  }

  /** A new trace id: 16 random bytes in hex. */
  traceId(): string {
    return this.hex(16);
  }

  /** A new span id: 8 random bytes in hex. */
  spanId(): string {
    return this.hex(8);
  }

  /**
   * The request's trace: the client's `traceparent` (and `tracestate`) when it is valid and
   * came once, else a new trace, sampled (keygate starts it; an upstream that samples by its
   * parent records it).
   */
  trace(traceparent: string | null, traceparents: number, tracestate: string | null): Trace {
    if (traceparent !== null && traceparents === 1) {
      const parsed = parseTraceparent(traceparent);
      if (parsed !== null) return { traceId: parsed.traceId, flags: parsed.flags, tracestate };
    }
    return { traceId: this.traceId(), flags: '01', tracestate: null };
  }

  /** The `traceparent` the upstream gets: the request's trace, with a new span id for the upstream call. */
  childTraceparent(trace: Trace): string {
    return `00-${trace.traceId}-${this.spanId()}-${trace.flags}`;
  }
}

/** Request ids: a random per-process prefix and a counter; unique without a syscall per request. */
export function requestIds(): () => string {
  const prefix = randomBytes(6).toString('base64url');
  let n = 0;
  return () => `${prefix}${(n++).toString(36)}`;
}

/** The process's trace and span ids. */
export const traceIds = new TraceIds();
