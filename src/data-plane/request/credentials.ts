import { isGuid } from '../../domain/ids.js';

export type Credential =
  | { kind: 'none' }
  | { kind: 'ambiguous' }
  /** A header was present but unusable (empty, malformed Basic): answered like an unknown key. */
  | { kind: 'invalid' }
  | { kind: 'secret'; secret: string; via: 'x-api-key' | 'bearer' }
  | { kind: 'basic'; workspaceId: string; secret: string }
  | { kind: 'token'; token: string };

/** What one pass over the raw headers tells the pipeline. */
export interface HeaderScan {
  hosts: number;
  host: string | null;
  apiKeys: string[];
  authorizations: string[];
  /** Connection header values joined, or null: the names they list are hop-by-hop too. */
  connection: string | null;
  /** A body follows (Transfer-Encoding, or a non-zero Content-Length). */
  hasBody: boolean;
  /** How many Content-Type headers came, and the first one's value. */
  contentTypes: number;
  contentType: string | null;
  /** Content-Encoding values joined, or null. */
  contentEncoding: string | null;
  /** Transfer-Encoding values joined, or null. */
  transferEncoding: string | null;
  /** How many X-Request-Id headers came, and the first one's value. */
  requestIds: number;
  requestId: string | null;
  /** How many traceparent headers came, and the first one's value. */
  traceparents: number;
  traceparent: string | null;
  /** tracestate values joined with "," (W3C: several headers are one list), or null. */
  tracestate: string | null;
}

/**
 * One pass over the raw headers collects everything the pipeline and the forwarder need,
 * so `req.headers` (which Node builds lazily, header by header) is never materialised on
 * the hot path.
 */
export function scanHeaders(raw: readonly string[]): HeaderScan {
  const scan: HeaderScan = {
    hosts: 0, host: null, apiKeys: [], authorizations: [], connection: null, hasBody: false, contentTypes: 0, contentType: null, contentEncoding: null, transferEncoding: null,
    requestIds: 0, requestId: null, traceparents: 0, traceparent: null, tracestate: null,
  };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Cheap length pre-filter before the case-insensitive compare.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          scan.hosts++;
          scan.host = raw[i + 1]!;
        }
        break;
      case 9:
        if (name.toLowerCase() === 'x-api-key') scan.apiKeys.push(raw[i + 1]!);
        break;
      case 10:
        {
          const lower = name.toLowerCase();
          if (lower === 'connection') scan.connection = scan.connection === null ? raw[i + 1]! : `${scan.connection},${raw[i + 1]!}`;
          else if (lower === 'tracestate') scan.tracestate = scan.tracestate === null ? raw[i + 1]! : `${scan.tracestate},${raw[i + 1]!}`;
        }
        break;
      case 11:
        if (name.toLowerCase() === 'traceparent' && scan.traceparents++ === 0) scan.traceparent = raw[i + 1]!;
        break;
      case 12:
        {
          const lower = name.toLowerCase();
          if (lower === 'content-type') {
            if (scan.contentTypes++ === 0) scan.contentType = raw[i + 1]!;
          } else if (lower === 'x-request-id' && scan.requestIds++ === 0) scan.requestId = raw[i + 1]!;
        }
        break;
      case 13:
        if (name.toLowerCase() === 'authorization') scan.authorizations.push(raw[i + 1]!);
        break;
      case 14:
        if (name.toLowerCase() === 'content-length' && raw[i + 1]!.trim() !== '0') scan.hasBody = true;
        break;
      case 16:
        if (name.toLowerCase() === 'content-encoding') scan.contentEncoding = scan.contentEncoding === null ? raw[i + 1]! : `${scan.contentEncoding},${raw[i + 1]!}`;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          scan.hasBody = true;
          scan.transferEncoding = scan.transferEncoding === null ? raw[i + 1]! : `${scan.transferEncoding},${raw[i + 1]!}`;
        }
        break;
    }
  }
  return scan;
}

const CHUNKED_ONLY = /^[ \t]*chunked[ \t]*$/i;

/**
 * RFC 9112 §6.3: a request whose Transfer-Encoding does not end in `chunked` has no length
 * the gateway can read (`xchunked`, `gzip`, `identity`…) and is answered 400. Node decodes
 * only the chunking, so any other coding before it (`gzip, chunked`) would reach the
 * upstream as bytes with no header naming their coding: `chunked` alone is accepted
 * (RFC 9112 §6.1 lets a server refuse a transfer coding it does not implement).
 */
export function chunkedOnly(transferEncoding: string): boolean {
  return CHUNKED_ONLY.test(transferEncoding);
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(\.|$)/;
/** Our tokens are well under 1 KiB; anything far longer is refused before any parsing or caching. */
export const MAX_TOKEN_LENGTH = 4096;
/**
 * Standard base64, padded or not (nginx and Kong accept both): whole quanta, then a tail of two
 * or three characters with its padding complete or absent. A lone trailing character, partial
 * padding, padding elsewhere and the URL-safe alphabet are refused.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseBasic(value: string): Credential {
  const encoded = value.trim();
  if (!BASE64.test(encoded)) return { kind: 'invalid' };
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    return { kind: 'invalid' };
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return { kind: 'invalid' };
  const workspaceId = decoded.slice(0, colon);
  if (!isGuid(workspaceId)) return { kind: 'invalid' };
  return { kind: 'basic', workspaceId: workspaceId.toLowerCase(), secret: decoded.slice(colon + 1) };
}

/** Exactly one credential per request (CONTRACT §4); two or more is ambiguous. */
export function readCredential(scan: HeaderScan): Credential {
  const count = scan.apiKeys.length + scan.authorizations.length;
  if (count === 0) return { kind: 'none' };
  if (count > 1) return { kind: 'ambiguous' };
  if (scan.apiKeys.length === 1) {
    const secret = scan.apiKeys[0]!.trim();
    return secret === '' ? { kind: 'invalid' } : { kind: 'secret', secret, via: 'x-api-key' };
  }
  const auth = scan.authorizations[0]!;
  const space = auth.indexOf(' ');
  if (space === -1) return { kind: 'invalid' };
  const scheme = auth.slice(0, space).toLowerCase();
  const value = auth.slice(space + 1).trim();
  if (value === '') return { kind: 'invalid' };
  if (scheme === 'bearer') {
    if (value.startsWith('kg_')) return { kind: 'secret', secret: value, via: 'bearer' };
    if (value.length <= MAX_TOKEN_LENGTH && JWT_SHAPE.test(value)) return { kind: 'token', token: value };
    return { kind: 'invalid' };
  }
  if (scheme === 'basic') return parseBasic(value);
  return { kind: 'invalid' };
}
