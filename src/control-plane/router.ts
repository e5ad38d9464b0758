export type Params = Record<string, string>;

interface Entry<H> { method: string; template: string; parts: string[]; handler: H }

export type Match<H> =
  | { kind: 'found'; handler: H; params: Params; template: string }
  | { kind: 'method-not-allowed'; allowed: string[]; template: string }
  | { kind: 'not-found' };

/** A small exact-segment router for the admin API; `:name` matches one non-empty segment. */
export class Router<H> {
  private readonly entries: Entry<H>[] = [];

  add(method: string, template: string, handler: H): this {
    this.entries.push({ method, template, parts: template.split('/').slice(1), handler });
    return this;
  }

  match(method: string, path: string): Match<H> {
    const segments = path.split('/').slice(1);
    const allowed: string[] = [];
    let template = '';
    for (const e of this.entries) {
      const params = matchParts(e.parts, segments);
      if (!params) continue;
      if (e.method === method) return { kind: 'found', handler: e.handler, params, template: e.template };
      allowed.push(e.method);
      template = e.template;
    }
    return allowed.length > 0 ? { kind: 'method-not-allowed', allowed, template } : { kind: 'not-found' };
  }
}

function matchParts(parts: string[], segments: string[]): Params | null {
  if (parts.length !== segments.length) return null;
  const params: Params = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const s = segments[i]!;
    if (p.startsWith(':')) {
      if (s === '') return null;
      let value: string;
      try {
        value = decodeURIComponent(s);
      } catch {
        return null;
      }
      params[p.slice(1)] = value;
    } else if (p !== s) {
      return null;
    }
  }
  return params;
}
