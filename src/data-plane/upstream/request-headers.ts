import type { IncomingMessage } from 'node:http';
import type { HeaderScan } from '../request/credentials.js';
import { connectionTokens, owned, ownedLookAlike } from './header-names.js';

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
  /** The W3C `traceparent` for the upstream call (the request's trace, a new span id). */
  traceparent: string;
  /** The client's `tracestate`, passed on with its trace; null for none. */
  tracestate: string | null;
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
    'traceparent', info.traceparent,
    'x-keygate-key-id', info.identity.keyId,
    'x-keygate-workspace-id', info.identity.workspaceId,
    'x-keygate-key-type', info.identity.keyType,
    'x-keygate-environment', info.identity.environment,
  );
  if (info.tracestate !== null) out.push('tracestate', info.tracestate);
  if (info.identity.profile !== null) out.push('x-keygate-profile', profileHeaderValue(info.identity.profile));
  return out;
}
