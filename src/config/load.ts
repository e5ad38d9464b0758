import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { formatIssues } from '../domain/issues.js';
import { PermissionCatalogue } from '../domain/permissions.js';
import { configSchema, type Config } from './schema.js';
import { interpolate } from './interpolate.js';

/** The values the shipped config falls back to so `npm start` works on a fresh machine. */
export const DEV_PEPPER = 'keygate-dev-pepper-not-for-production';
export const DEV_ADMIN_TOKEN = 'keygate-dev-admin-token';

export type LoadResult =
  | { ok: true; config: Config; warnings: string[] }
  | { ok: false; errors: string[] };

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`] };
  }
  return parseConfigText(text, env);
}

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return { ok: false, errors: doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`) };
  }
  const raw: unknown = doc.toJS() ?? {};
  const interpolated = interpolate(raw, env);
  if (interpolated.errors.length > 0) return { ok: false, errors: interpolated.errors };
  const parsed = configSchema.safeParse(interpolated.value);
  if (!parsed.success) return { ok: false, errors: formatIssues(parsed.error.issues) };
  const config = parsed.data;
  const declaresPresets = typeof interpolated.value === 'object' && interpolated.value !== null && 'permissionPresets' in interpolated.value;
  const errors = crossCheck(config, declaresPresets);
  const warnings: string[] = [];
  const production = env.NODE_ENV === 'production';
  const devValue = (what: string, path: string) => {
    const msg = `${path}: is the built-in development ${what}; set a secret value before exposing keygate`;
    if (production) errors.push(`${path}: the development ${what} is refused when NODE_ENV=production`);
    else warnings.push(msg);
  };
  if (config.secrets.pepper === DEV_PEPPER) devValue('pepper', 'secrets.pepper');
  config.admin.tokens.forEach((t, i) => { if (t.token === DEV_ADMIN_TOKEN) devValue('admin token', `admin.tokens[${i}].token`); });
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config, warnings };
}

/** A route shape with parameter names erased: `/v1/{a}` and `/v1/{b}` match the same requests. */
function routeShape(method: string, path: string): string {
  return `${method} ${path.replace(/\{[^}]*\}/g, '{}')}`;
}

/** The gateway's own endpoints, answered ahead of every route. */
const RESERVED_PATHS = new Set(['/auth/token', '/.well-known/jwks.json', '/auth/forward', '/auth/verify', '/auth/secret-scanning']);
/** Forward-auth for Envoy: `/auth/envoy/<original path>`. */
const RESERVED_PREFIX = '/auth/envoy';

function crossCheck(config: Config, declaresPresets: boolean): string[] {
  const errors: string[] = [];
  const names = new Map<string, number>();
  const shapes = new Map<string, number>();
  config.routes.forEach((route, i) => {
    const at = `routes[${i}]`;
    if (!(route.upstream in config.upstreams)) errors.push(`${at}.upstream: unknown upstream "${route.upstream}"`);
    if (route.upstreamTest !== undefined && !(route.upstreamTest in config.upstreams)) {
      errors.push(`${at}.upstreamTest: unknown upstream "${route.upstreamTest}"`);
    }
    const sameName = names.get(route.name);
    if (sameName !== undefined) errors.push(`${at}.name: duplicate route name "${route.name}" (also routes[${sameName}])`);
    else names.set(route.name, i);
    const shape = routeShape(route.method, route.path);
    const sameShape = shapes.get(shape);
    if (sameShape !== undefined) errors.push(`${at}: duplicate route ${route.method} ${route.path} (same as routes[${sameShape}])`);
    else shapes.set(shape, i);
    if (RESERVED_PATHS.has(route.path) || route.path === RESERVED_PREFIX || route.path.startsWith(`${RESERVED_PREFIX}/`)) errors.push(`${at}.path: "${route.path}" is reserved for keygate's own endpoint`);
    if (route.decideWithoutBody && route.events === undefined && !route.profileAttributes) {
      errors.push(`${at}.decideWithoutBody: the route has no body policy (events or profileAttributes) to leave out of its decisions`);
    }
    if (route.profileScope !== undefined && !route.path.includes(`{${route.profileScope}}`)) {
      errors.push(`${at}.profileScope: "${route.profileScope}" is not a {parameter} of the path`);
    }
  });
  // Presets the file declares are checked against the routes' permissions; the built-in ones
  // (read-only: ["*.read"], full-access: ["*"]) stand as they are, whatever the routes.
  if (declaresPresets) {
    const catalogue = new PermissionCatalogue(config.routes.map((r) => r.permission));
    for (const [name, patterns] of Object.entries(config.permissionPresets)) {
      patterns.forEach((p, i) => {
        const problem = catalogue.presetProblemWith(p);
        if (problem) errors.push(`permissionPresets.${name}[${i}]: ${problem}`);
      });
    }
  }
  const tokenNames = new Set<string>();
  const tokenValues = new Set<string>();
  config.admin.tokens.forEach((t, i) => {
    if (tokenNames.has(t.name)) errors.push(`admin.tokens[${i}].name: duplicate token name "${t.name}"`);
    if (tokenValues.has(t.token)) errors.push(`admin.tokens[${i}].token: the same token is listed twice`);
    tokenNames.add(t.name);
    tokenValues.add(t.token);
  });
  if (config.store.driver === 'redis') {
    if (config.store.url === undefined && config.store.cluster === undefined) errors.push('store.url: required when store.driver is "redis" (or give store.cluster)');
    if (config.store.url !== undefined && config.store.cluster !== undefined) errors.push('store.cluster: give either store.url or store.cluster, not both');
    const urls: Array<[string, string]> = config.store.url !== undefined ? [['store.url', config.store.url]] : [];
    config.store.cluster?.forEach((u, i) => urls.push([`store.cluster[${i}]`, u]));
    for (const [path, u] of urls) {
      let url: URL | null = null;
      try { url = new URL(u); } catch { /* reported below */ }
      if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || !url.hostname) errors.push(`${path}: "${redact(u)}" is not a redis:// or rediss:// URL`);
    }
    if (/[{}]/.test(config.store.keyPrefix)) errors.push('store.keyPrefix: must not contain "{" or "}" (keygate places its own Redis Cluster hash tags)');
  }
  return errors;
}

/** A URL as it may appear in an error message: without its password. */
function redact(u: string): string {
  // Everything before the last "@" of the authority is credentials, scheme or no scheme.
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(u)?.[0] ?? '';
  const rest = u.slice(scheme.length);
  const slash = rest.indexOf('/');
  const at = (slash === -1 ? rest : rest.slice(0, slash)).lastIndexOf('@');
  return at === -1 ? u : `${scheme}***@${rest.slice(at + 1)}`;
}
