import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { isAdminScope } from '../domain/admin-scopes.js';
import { parseCidr } from '../domain/cidr.js';
import { isPermissionName, parsePermissionPattern } from '../domain/permissions.js';

// `${PORT:-8080}` interpolates to text; numeric and boolean fields accept that text form.
const fromText = (v: unknown): unknown => {
  if (typeof v !== 'string') return v;
  if (/^-?\d+$/.test(v.trim())) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
};
const port = z.preprocess(fromText, z.number().int().min(0).max(65535));
const host = z.string().min(1);
const positiveInt = z.preprocess(fromText, z.number().int().positive());
const bool = z.preprocess(fromText, z.boolean());

const listen = (defaultHost: string, defaultPort: number) =>
  z.strictObject({ host: host.default(defaultHost), port: port.default(defaultPort) }).prefault({});

const cidr = z.string().superRefine((value, ctx) => {
  const parsed = parseCidr(value);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const ROUTE_SEGMENT = /^(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z0-9._~!$&'()+,=:@-]+)$/;

/** Why a route path is malformed, or null. Literal segments, `{name}` segments, optional trailing `/*`. */
export function routePathProblem(path: string): string | null {
  if (!path.startsWith('/')) return 'must start with "/"';
  if (path === '/' || path === '/*') return null;
  const segments = path.slice(1).split('/');
  const names = new Set<string>();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '*' && i === segments.length - 1) continue;
    if (seg === '' ) return 'must not contain empty segments';
    if (seg === '.' || seg === '..') return 'must not contain dot segments';
    if (!ROUTE_SEGMENT.test(seg)) return `segment "${seg}" is neither a literal nor {param}`;
    if (seg.startsWith('{')) {
      const name = seg.slice(1, -1);
      if (names.has(name)) return `parameter "${name}" appears twice`;
      names.add(name);
    }
  }
  return null;
}

const upstream = z.strictObject({
  url: z.string().superRefine((value, ctx) => {
    let u: URL;
    try { u = new URL(value); } catch { ctx.addIssue({ code: 'custom', message: `"${value}" is not a URL` }); return; }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'must be an http or https URL' });
    if (u.search || u.hash) ctx.addIssue({ code: 'custom', message: 'must not have a query or fragment' });
    if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials' });
  }),
  timeoutMs: positiveInt.default(10_000),
});

const route = z.strictObject({
  name: z.string().min(1).max(100),
  method: z.enum(HTTP_METHODS),
  path: z.string().superRefine((value, ctx) => {
    const problem = routePathProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
  upstream: z.string().min(1),
  upstreamTest: z.string().min(1).optional(),
  permission: z.string().refine(isPermissionName, { message: 'must be a permission name like "events.create"' }),
  keyTypes: z.array(z.enum(['workspace', 'profile'])).min(1).optional(),
  events: z.strictObject({ field: z.string().min(1).max(200) }).optional(),
  profileAttributes: bool.default(false),
  profileScope: z.string().min(1).optional(),
  /** Forward-auth decisions on a route with a body policy skip it instead of refusing. */
  decideWithoutBody: bool.default(false),
});

const keyRateLimit = z.strictObject({
  limit: z.preprocess(fromText, z.number().int().min(0).max(1_000_000_000)),
  windowSeconds: z.preprocess(fromText, z.number().int().min(1).max(31 * 86_400)),
});

const adminToken = z.strictObject({
  name: z.string().min(1).max(100),
  token: z.string().min(16, { message: 'must be at least 16 characters (is the environment variable set?)' }),
  /** What the token may do; omitted: everything (`*`). */
  scopes: z.array(z.string().refine((s) => isAdminScope(s), { message: 'must be "*" or <resource>:read|write for a resource of keys, workspaces, groups, owners, audit, signing-keys, admin-tokens' })).min(1).optional(),
  /** Confines the token to these workspace ids; omitted: every workspace. */
  workspaces: z.array(z.string().min(1)).min(1).optional(),
});

export const configSchema = z.strictObject({
  gateway: z.strictObject({
    listen: listen('0.0.0.0', 8080),
    trustedProxies: z.array(cidr).default([]),
    maxBodyBytes: positiveInt.default(1_048_576),
    workers: z.union([z.literal('auto'), z.preprocess(fromText, z.number().int().min(1).max(64))]).default(1),
    requestTimeoutMs: positiveInt.default(30_000),
    /** One JSON line per request at level info; off leaves only warnings and errors. */
    accessLog: bool.default(true),
  }).prefault({}),
  admin: z.strictObject({
    listen: listen('127.0.0.1', 8081),
    tokens: z.array(adminToken).min(1, { message: 'at least one admin token is required' }),
  }),
  /**
   * The status listener: `/healthz`, `/readyz` and `/metrics` only, no token, for probes and
   * scrapers that must not reach the admin API. `enabled: false` runs without it.
   */
  status: z.strictObject({
    enabled: bool.default(true),
    listen: listen('0.0.0.0', 8082),
  }).prefault({}),
  store: z.strictObject({
    driver: z.enum(['embedded', 'redis']).default('embedded'),
    path: z.string().min(1).default('./data'),
    url: z.string().min(1).optional(),
    cluster: z.array(z.string().min(1)).min(1).optional(),
    keyPrefix: z.string().default('keygate:'),
    /** Redis: the bound on each call a request waits for (key lookups, rate limits). */
    timeoutMs: z.preprocess(fromText, z.number().int().min(1).max(10_000)).default(200),
    /** Redis: how long `serve` keeps trying to reach the store at start-up before it exits 1. */
    startupTimeoutMs: z.preprocess(fromText, z.number().int().min(0)).default(60_000),
  }).prefault({}),
  secrets: z.strictObject({
    pepper: z.string().min(16, { message: 'must be at least 16 characters (set KEYGATE_PEPPER)' }),
    /** Encrypts token signing keys at rest; when absent, a key derived from the pepper does. */
    signingKeyEncryptionKey: z.string().min(32, { message: 'must be at least 32 characters' }).optional(),
  }),
  propagation: z.strictObject({ maxStalenessMs: positiveInt.default(30_000) }).prefault({}),
  keys: z.strictObject({
    defaultTtlDays: z.preprocess(fromText, z.number().int().positive().nullable()).default(90),
    rotationGraceSeconds: z.preprocess(fromText, z.number().int().min(0)).default(86_400),
    /** A key not used for this many days expires (null: never). */
    inactivityDays: z.preprocess(fromText, z.number().int().positive().max(36_500).nullable()).default(null),
    /** A key whose secret is older than this many days shows `rotationDue: true`. */
    rotationReminderDays: z.preprocess(fromText, z.number().int().positive().max(36_500)).default(90),
    /** How many activity records each key keeps (the newest); 0 records none. */
    activityPerKey: z.preprocess(fromText, z.number().int().min(0).max(100_000)).default(1_000),
  }).prefault({}),
  leaks: z.strictObject({
    /** What a leak report does to the key: disable it, or only write the audit entry and log a warning. */
    action: z.enum(['disable', 'notify']).default('disable'),
    /** GitHub secret scanning: the keys its payloads are signed with, given here or fetched from `keysUrl`. */
    github: z.strictObject({
      publicKeys: z.array(z.strictObject({
        id: z.string().min(1).max(200),
        key: z.string().superRefine((value, ctx) => {
          try {
            const k = createPublicKey(value);
            if (k.asymmetricKeyType !== 'ec') ctx.addIssue({ code: 'custom', message: 'must be an ECDSA (P-256) public key' });
          } catch {
            ctx.addIssue({ code: 'custom', message: 'must be a PEM public key ("-----BEGIN PUBLIC KEY-----…")' });
          }
        }),
      })).default([]),
      keysUrl: z.url({ protocol: /^https?$/ }).optional(),
      /** How long keys fetched from `keysUrl` are trusted before they are fetched again. */
      keysCacheSeconds: z.preprocess(fromText, z.number().int().min(0).max(86_400)).default(3_600),
    }).prefault({}),
  }).prefault({}),
  tokens: z.strictObject({
    ttlSeconds: z.preprocess(fromText, z.number().int().positive().max(86_400)).default(3600),
    algorithm: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
    issuer: z.string().min(1).default('keygate'),
    audience: z.string().min(1).default('keygate'),
    /** How long a rotated signing key is published before it signs (the JWKS max-age is at most this). */
    rotationDelaySeconds: z.preprocess(fromText, z.number().int().min(0).max(86_400)).default(300),
  }).prefault({}),
  rateLimit: z.strictObject({
    onStoreError: z.enum(['local', 'allow', 'deny']).default('local'),
    /** The rate limit a new key of each type gets when its create request gives none. */
    defaults: z.strictObject({ workspace: keyRateLimit.nullable().default(null), profile: keyRateLimit.nullable().default(null) }).prefault({}),
  }).prefault({}),
  upstreams: z.record(z.string().regex(/^[A-Za-z0-9_-]+$/, { message: 'upstream names use letters, digits, "-" and "_"' }), upstream).default({}),
  routes: z.array(route).default([]),
  permissionPresets: z.record(
    z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, { message: 'preset names use lower-case letters, digits, "-" and "_"' }),
    z.array(z.string().refine((p) => parsePermissionPattern(p) !== null, { message: 'is not a permission name or pattern' })),
  ).default({ 'read-only': ['*.read'], 'full-access': ['*'] }),
});

export type Config = z.infer<typeof configSchema>;
export type RouteConfig = Config['routes'][number];
export type UpstreamConfig = Config['upstreams'][string];
