// Strict request-target checks (CONTRACT §4 "Paths"). The path is matched and forwarded
// exactly as received, so anything an upstream or a later hop could normalise into a
// different path than the one checked is refused here: dot segments (plain or encoded),
// encoded `/` or `\`, backslashes, `;` parameters and NUL.

export interface RequestTarget {
  /** The raw path, never decoded. */
  path: string;
  /** The raw query including its `?`, or ''. */
  search: string;
}

const FORBIDDEN = /%2e|%2f|%5c|%00|[\\;\0]/i;

export function parseRequestTarget(raw: string): RequestTarget | null {
  // Origin form only: absolute-form (`http://host/…`) and authority-form never reach a route.
  if (raw.charCodeAt(0) !== 0x2f) return null;
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  const search = q === -1 ? '' : raw.slice(q);
  if (FORBIDDEN.test(path) || search.includes('\0') || search.includes('#') || path.includes('#')) return null;
  if (path.includes('/.')) {
    for (const seg of path.split('/')) if (seg === '.' || seg === '..') return null;
  }
  return { path, search };
}
