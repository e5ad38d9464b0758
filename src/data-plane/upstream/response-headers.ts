import { connectionTokens, HOP_BY_HOP } from './header-names.js';

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
