import type { RouteConfig } from '../../config/schema.js';

export interface RouteMatch<R> {
  route: R;
  /** Raw (still percent-encoded) values of `{param}` segments. */
  params: Record<string, string>;
}

interface CompiledPattern<R> {
  route: R;
  /** A literal segment, or `{name}` recorded as the parameter name with `param: true`. */
  segments: Array<{ literal: string } | { param: string }>;
  wildcard: boolean;
}

/**
 * Routes compiled at startup. Matching splits the raw path once and compares segments;
 * literal routes are tried before parameterised ones of the same method, in config order.
 */
export class RouteTable<R extends { config: RouteConfig }> {
  private readonly byMethod = new Map<string, CompiledPattern<R>[]>();
  private readonly exact = new Map<string, Map<string, R>>();

  constructor(routes: readonly R[]) {
    for (const route of routes) {
      const { method, path } = route.config;
      const wildcard = path.endsWith('/*');
      const base = wildcard ? path.slice(0, -2) : path;
      const segments = base === '' || base === '/' ? [] : base.slice(1).split('/').map((s) =>
        s.startsWith('{') ? { param: s.slice(1, -1) } : { literal: s });
      if (!wildcard && segments.every((s) => 'literal' in s)) {
        let paths = this.exact.get(method);
        if (!paths) this.exact.set(method, (paths = new Map()));
        paths.set(path, route);
        continue;
      }
      const list = this.byMethod.get(method) ?? [];
      list.push({ route, segments, wildcard });
      this.byMethod.set(method, list);
    }
  }

  /**
   * The route for `method` and `path`. A HEAD request with no HEAD route of its own takes the
   * GET route of the same path (RFC 9110 §9.3.2: HEAD is GET without the body).
   */
  match(method: string, path: string): RouteMatch<R> | null {
    const found = this.matchMethod(method, path);
    return found === null && method === 'HEAD' ? this.matchMethod('GET', path) : found;
  }

  private matchMethod(method: string, path: string): RouteMatch<R> | null {
    const exact = this.exact.get(method)?.get(path);
    if (exact) return { route: exact, params: {} };
    const candidates = this.byMethod.get(method);
    if (!candidates) return null;
    const parts = path.split('/');
    // parts[0] is the empty string before the leading slash.
    for (const c of candidates) {
      const n = c.segments.length;
      if (c.wildcard ? parts.length - 1 < n : parts.length - 1 !== n) continue;
      let params: Record<string, string> | null = {};
      for (let i = 0; i < n; i++) {
        const seg = c.segments[i]!;
        const part = parts[i + 1]!;
        if ('literal' in seg) {
          if (seg.literal !== part) { params = null; break; }
        } else {
          if (part === '') { params = null; break; }
          params[seg.param] = part;
        }
      }
      if (params) return { route: c.route, params };
    }
    return null;
  }
}
