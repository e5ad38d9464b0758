// RFC 9110 §7.6.1: connection-specific fields are not forwarded, nor any field the
// Connection header names. Credentials and our own X-Keygate-* namespace never pass either.
export const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate',
]);
const REPLACED_ON_REQUEST = new Set([
  'host', 'x-api-key', 'authorization', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
  'x-request-id', 'expect', 'forwarded', 'traceparent', 'tracestate',
]);

/** Whether a lower-cased name is one the gateway never passes on as the client sent it. */
export const owned = (lower: string): boolean => HOP_BY_HOP.has(lower) || REPLACED_ON_REQUEST.has(lower) || lower.startsWith('x-keygate-');

/**
 * CGI and WSGI read `X_Api_Key` and `X-Api-Key` as the same variable (HTTP_X_API_KEY): a name
 * with `_` that reads as an owned name once `_` is taken for `-` is dropped like that name.
 */
export const ownedLookAlike = (lower: string): boolean => lower.includes('_') && owned(lower.replaceAll('_', '-'));

/** The names listed in Connection header values, lower-cased; null when there are none. */
export function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined || value === 'keep-alive' || value === 'close') return null;
  const text = Array.isArray(value) ? value.join(',') : value;
  let set: Set<string> | null = null;
  for (const part of text.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') (set ??= new Set()).add(t);
  }
  return set;
}
