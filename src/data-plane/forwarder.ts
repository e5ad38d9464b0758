import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';

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

/** The names listed in Connection header values, lower-cased; null when there are none. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  let set: Set<string> | null = null;
  for (const part of text.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') (set ??= new Set()).add(t);
  }
  return set;
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
  /** The resolved client address (after trusted-proxy handling). */
  clientIp: string;
  /** The socket peer, IPv4-mapped addresses read as IPv4. */
  peerIp: string;
  /** Whether the peer is a trusted proxy, whose X-Forwarded-* may be extended. */
  peerTrusted: boolean;
  identity: Identity;
}

/** The request headers the upstream sees: the client's, cleaned, plus identity and forwarding headers. */
export function upstreamRequestHeaders(req: IncomingMessage, info: ForwardInfo): string[] {
  const raw = req.rawHeaders;
  const named = connectionTokens(req.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REPLACED_ON_REQUEST.has(lower) || lower.startsWith('x-keygate-')) continue;
    if (named !== null && named.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  const h = req.headers;
  // From an untrusted peer the client's own X-Forwarded-For is not passed on: it could say anything.
  const priorFor = info.peerTrusted ? h['x-forwarded-for'] : undefined;
  out.push('x-forwarded-for', priorFor ? `${Array.isArray(priorFor) ? priorFor.join(', ') : priorFor}, ${info.peerIp}` : info.peerIp);
  const proto = info.peerTrusted ? h['x-forwarded-proto'] : undefined;
  out.push('x-forwarded-proto', typeof proto === 'string' ? proto : 'http');
  const fwdHost = info.peerTrusted ? h['x-forwarded-host'] : undefined;
  const host = typeof fwdHost === 'string' ? fwdHost : h.host;
  if (host) out.push('x-forwarded-host', host);
  out.push(
    'x-request-id', info.requestId,
    'x-keygate-key-id', info.identity.keyId,
    'x-keygate-workspace-id', info.identity.workspaceId,
    'x-keygate-key-type', info.identity.keyType,
    'x-keygate-environment', info.identity.environment,
  );
  if (info.identity.profile !== null) out.push('x-keygate-profile', info.identity.profile);
  return out;
}

/** The upstream's response headers minus hop-by-hop ones. */
export function clientResponseHeaders(headers: IncomingHttpHeaders, requestId: string): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (named !== null && named.has(name))) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  out['x-request-id'] = requestId;
  return out;
}

export type ForwardResult =
  | { ok: true; status: number }
  | { ok: false; code: Extract<ErrorCode, 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_TIMEOUT'> | 'CLIENT_GONE'; responded: boolean };

function hasBody(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) return true;
  const cl = req.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** One keep-alive Pool per upstream; bodies stream both ways, never buffered here. */
export class Upstream {
  readonly name: string;
  private readonly pool: Pool;
  private readonly timeoutMs: number;

  constructor(name: string, config: UpstreamConfig, connections = 128) {
    this.name = name;
    this.timeoutMs = config.timeoutMs;
    const url = new URL(config.url);
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: Math.min(config.timeoutMs, 5_000),
    });
    this.basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  }

  private readonly basePath: string;

  /**
   * Streams `req` to the upstream and the answer back into `res`. `body` replaces the
   * request stream when the pipeline already read it (inspected routes).
   */
  forward(req: IncomingMessage, res: ServerResponse, path: string, headers: string[], requestId: string, body?: Buffer): Promise<ForwardResult> {
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClose);
    return new Promise<ForwardResult>((resolve) => {
      let status = 0;
      this.pool.stream(
        {
          path: this.basePath + path,
          method: req.method as 'GET',
          headers,
          body: body ?? (hasBody(req) ? req : null),
          signal: abort.signal,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        },
        ({ statusCode, headers: upstreamHeaders }) => {
          status = statusCode;
          res.writeHead(statusCode, clientResponseHeaders(upstreamHeaders, requestId));
          return res;
        },
        (err) => {
          res.off('close', onClose);
          if (!err) return resolve({ ok: true, status });
          const code = (err as { code?: string }).code ?? '';
          if (abort.signal.aborted || code === 'UND_ERR_ABORTED') return resolve({ ok: false, code: 'CLIENT_GONE', responded: res.headersSent });
          resolve({ ok: false, code: TIMEOUT_CODES.has(code) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', responded: res.headersSent });
        },
      );
    });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
