import type { Refusal } from '../../errors/http.js';
import { fixedRefusal, refusal } from '../../errors/http.js';
import { parseRequestTarget } from '../request/request-target.js';

/** The request a proxy asks about: its method and its raw path and query, never decoded. */
export interface OriginalRequest {
  method: string;
  path: string;
  search: string;
}

export const FORWARD_PATH = '/auth/forward';
export const ENVOY_PREFIX = '/auth/envoy';

/** Whether `path` is one of the decision endpoints (`/auth/forward`, `/auth/envoy/…`). */
export function isDecisionPath(path: string): boolean {
  return path === FORWARD_PATH || (path.startsWith(ENVOY_PREFIX) && (path.length === ENVOY_PREFIX.length || path.charCodeAt(ENVOY_PREFIX.length) === 0x2f));
}

/** The headers `/auth/forward` reads, lower-cased, in the order of `HEADER_NAMES`. */
const HEADER_NAMES = ['x-original-method', 'x-original-uri', 'x-original-url', 'x-forwarded-method', 'x-forwarded-uri'] as const;
type Named = (typeof HEADER_NAMES)[number];
const SPELLED: Record<Named, string> = {
  'x-original-method': 'X-Original-Method',
  'x-original-uri': 'X-Original-URI',
  'x-original-url': 'X-Original-URL',
  'x-forwarded-method': 'X-Forwarded-Method',
  'x-forwarded-uri': 'X-Forwarded-Uri',
};

/** An HTTP method token (RFC 9110 §9.1): `tchar`s only. */
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
/** `scheme://authority` before the path of an absolute URL (ingress-nginx's X-Original-URL). */
const SCHEME_AUTHORITY = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

const NOT_NAMED = fixedRefusal('BAD_REQUEST',
  'Name the original request: X-Original-Method with X-Original-URI (or X-Original-URL), or X-Forwarded-Method with X-Forwarded-Uri.');

/** The first value of each header `/auth/forward` reads, and which came more than once. */
function readHeaders(raw: readonly string[]): { values: Partial<Record<Named, string>>; twice: Named | null } {
  const values: Partial<Record<Named, string>> = {};
  let twice: Named | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Every name read here is 14 to 18 characters long and starts with "x-".
    if (name.length < 14 || name.length > 18) continue;
    const lower = name.toLowerCase() as Named;
    if (!HEADER_NAMES.includes(lower)) continue;
    if (values[lower] !== undefined) twice ??= lower;
    else values[lower] = raw[i + 1]!;
  }
  return { values, twice };
}

function original(method: string | undefined, uri: string | undefined, methodName: string, uriName: string): OriginalRequest | Refusal {
  if (method === undefined) return refusal('BAD_REQUEST', `${methodName} is required with ${uriName}.`);
  if (uri === undefined) return refusal('BAD_REQUEST', `${uriName} is required with ${methodName}.`);
  const m = method.trim();
  if (!METHOD.test(m)) return refusal('BAD_REQUEST', `${methodName} is not an HTTP method.`);
  const target = parseRequestTarget(uri.trim());
  if (target === null) {
    return refusal('BAD_REQUEST', uri.trim().startsWith('/')
      ? `${uriName}: the original request path is not acceptable (dot segments, encoded slashes, backslashes, ";" and NUL are refused).`
      : `${uriName} must be a path starting with "/".`);
  }
  return { method: m.toUpperCase(), path: target.path, search: target.search };
}

/**
 * `/auth/forward`: the original request as nginx `auth_request` and ingress-nginx name it
 * (`X-Original-Method` with `X-Original-URI`, or the absolute `X-Original-URL`), else as
 * Traefik ForwardAuth and Caddy `forward_auth` do (`X-Forwarded-Method`, `X-Forwarded-Uri`).
 * The `X-Original-*` headers win when any came. Each may come once.
 */
export function forwardedOriginal(rawHeaders: readonly string[]): OriginalRequest | Refusal {
  const { values, twice } = readHeaders(rawHeaders);
  if (twice !== null) return refusal('BAD_REQUEST', `${SPELLED[twice]} came more than once.`);
  const uri = values['x-original-uri'];
  const url = values['x-original-url'];
  if (values['x-original-method'] !== undefined || uri !== undefined || url !== undefined) {
    if (uri !== undefined || url === undefined) return original(values['x-original-method'], uri, 'X-Original-Method', 'X-Original-URI');
    const rest = url.trim().replace(SCHEME_AUTHORITY, '');
    return original(values['x-original-method'], rest === '' ? '/' : rest, 'X-Original-Method', 'X-Original-URL');
  }
  if (values['x-forwarded-method'] !== undefined || values['x-forwarded-uri'] !== undefined) {
    return original(values['x-forwarded-method'], values['x-forwarded-uri'], 'X-Forwarded-Method', 'X-Forwarded-Uri');
  }
  return NOT_NAMED;
}

/**
 * `/auth/envoy/<original path>`: Envoy's HTTP `ext_authz` check request keeps the original
 * method and puts the original path (and query) after its `path_prefix`.
 */
export function envoyOriginal(method: string, path: string, search: string): OriginalRequest {
  const rest = path.slice(ENVOY_PREFIX.length);
  return { method, path: rest === '' ? '/' : rest, search };
}
