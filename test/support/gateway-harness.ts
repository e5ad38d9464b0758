// An in-process gateway: createGatewayServer on port 0 in front of a real upstream on port 0,
// with keys held in memory. Route and pipeline behaviour is tested here without a build or a
// child process; the end-to-end suites in test/ still start the CLI.
import { generateKeyPair, exportJWK } from 'jose';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { KeyRecord } from '../../src/domain/api-key.js';
import { generateSecret, hashSecret } from '../../src/domain/secret.js';
import type { SigningKeyRecord } from '../../src/domain/signing-key.js';
import { createGatewayServer } from '../../src/data-plane/gateway-server.js';
import { KeyResolver } from '../../src/data-plane/key-resolver.js';
import type { KeySource } from '../../src/store/key-source.js';
import { compileRoutes } from '../../src/data-plane/pipeline/compile-routes.js';
import type { ConfiguredRoute, FinalHandler } from '../../src/data-plane/pipeline/context.js';
import { UsageRecorder } from '../../src/data-plane/pipeline/usage-recorder.js';
import type { UsageDelta } from '../../src/store/types.js';
import { LocalRateLimiter } from '../../src/store/rate-limit/local.js';
import { compileTokenRoutes } from '../../src/data-plane/tokens/token-routes.js';
import { TokenService } from '../../src/data-plane/tokens/token-service.js';
import { TokenVerifier } from '../../src/data-plane/tokens/token-verifier.js';
import type { AccessLog } from '../../src/observability/access-log.js';
import { Metrics } from '../../src/observability/metrics.js';
import { drainState } from '../../src/http/drain.js';
import { compileDecisionRoutes } from '../../src/data-plane/decide/decision-routes.js';
import { VERIFY_PATH, compileVerifyRoute } from '../../src/data-plane/decide/verify.js';
import { keyRecord } from './fixtures.js';

const PEPPER = 'harness-pepper-0123456789abcdef';

/** Routes of the harness's config unless a test gives its own (YAML, the `routes:` list's items). */
export const DEFAULT_ROUTES = `
  - { name: list-events, method: GET, path: /v1/events, upstream: events, permission: events.read }
  - { name: send-events, method: POST, path: /v1/events, upstream: events, permission: events.create, events: { field: action } }
  - { name: get-profile, method: GET, path: "/v1/profiles/{profileId}", upstream: events, permission: profiles.read, profileScope: profileId }
`;

export interface UpstreamRequest { method: string; url: string; headers: IncomingHttpHeaders; body: string }

export interface HarnessOptions {
  /** The config's `routes:` items (YAML). */
  routes?: string;
  /** A final handler in place of forwarding, by route name. */
  finals?: Record<string, FinalHandler>;
  /** Load a signing key, so tokens can be minted (default true). */
  signing?: boolean;
  /** `gateway.trustedProxies` (default none). */
  trustedProxies?: string[];
  /** The access log the gateway writes its lines to (default none). */
  accessLog?: AccessLog;
}

export interface GatewayHarness {
  /** `http://127.0.0.1:<port>` of the gateway. */
  readonly url: string;
  readonly config: Config;
  readonly metrics: Metrics;
  /** Every request the upstream received, in order. */
  readonly upstreamRequests: UpstreamRequest[];
  /** Usage the gateway recorded (flushed on close). */
  readonly usage: UsageDelta[];
  /** Adds a key (fields of `keyRecord` overridden by `over`) and returns its secret. */
  addKey(over?: Partial<KeyRecord>): string;
  close(): Promise<void>;
}

async function signingKey(): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
  return {
    id: 'sk_harness', alg: 'EdDSA',
    publicJwk: { ...(await exportJWK(publicKey)) },
    privateJwk: { ...(await exportJWK(privateKey)) },
    createdAt: new Date(Date.now() - 60_000).toISOString(),
    retiredAt: null,
    version: 1,
  } as SigningKeyRecord;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

export async function startGateway(opts: HarnessOptions = {}): Promise<GatewayHarness> {
  const upstreamRequests: UpstreamRequest[] = [];
  const upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      upstreamRequests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ upstream: true }));
    });
  });
  const upstreamPort = await listen(upstream);

  const loaded = parseConfigText(`
gateway: { listen: { host: 127.0.0.1, port: 0 }, requestTimeoutMs: 5000, trustedProxies: ${JSON.stringify(opts.trustedProxies ?? [])} }
admin: { listen: { host: 127.0.0.1, port: 0 }, tokens: [{ name: t, token: harness-admin-token-0123456789 }] }
store: { driver: embedded, path: ./unused }
secrets: { pepper: ${PEPPER} }
upstreams: { events: { url: "http://127.0.0.1:${upstreamPort}", timeoutMs: 2000 } }
routes:${opts.routes ?? DEFAULT_ROUTES}
`, {});
  if (!loaded.ok) throw new Error(`harness config: ${loaded.errors.join('; ')}`);
  const config = loaded.config;

  const keys = new Map<string, KeyRecord>();
  const source: KeySource = {
    lookup: async (hash) => {
      const record = [...keys.values()].find((k) => k.secretHash === hash);
      return record ? { record, owner: null } : null;
    },
    lookupById: async (id) => {
      const record = keys.get(id);
      return record ? { record, owner: null } : null;
    },
  };
  const metrics = new Metrics();
  // The access log is written at info level; nothing else the gateway logs is kept.
  const logger = opts.accessLog ? pino({ level: 'info' }, { write: () => undefined }) : pino({ level: 'silent' });
  const resolver = new KeyResolver({ source, pepper: config.secrets.pepper, fresh: () => true, stats: { hit: () => {}, miss: () => {}, storeError: () => {} } });
  const tokens = new TokenService(config.tokens.issuer, config.tokens.ttlSeconds, { audience: config.tokens.audience });
  if (opts.signing !== false) await tokens.setKeys([await signingKey()]);
  const limiter = new LocalRateLimiter();
  const verifier = new TokenVerifier(tokens, resolver);
  const compiled = compileRoutes({ config, resolver, tokens: verifier, limiter, rateLimited: metrics.rateLimited });
  const routes: ConfiguredRoute[] = compiled.routes.map((r) => (opts.finals?.[r.name] ? { ...r, final: opts.finals[r.name]! } : r));
  const usage: UsageDelta[] = [];
  const recorder = new UsageRecorder(async (deltas) => { usage.push(...deltas); });
  const localRoutes = new Map(compileTokenRoutes({ config, resolver, tokens, limiter, rateLimited: metrics.rateLimited,
    minted: { key: metrics.tokensMinted.labels({ auth: 'key' }), simple: metrics.tokensMinted.labels({ auth: 'simple' }) } }));
  localRoutes.set(VERIFY_PATH, compileVerifyRoute({ resolver, tokens: verifier, limiter, rateLimited: metrics.rateLimited, requestTimeoutMs: config.gateway.requestTimeoutMs }));
  const server = createGatewayServer({
    config, routes, metrics, logger, usage: recorder, drain: drainState(), localRoutes, decisions: compileDecisionRoutes(routes), accessLog: opts.accessLog ?? null,
  });
  const port = await listen(server);

  let n = 0;
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    metrics,
    upstreamRequests,
    usage,
    addKey(over = {}) {
      const env = over.environment ?? 'live';
      const { secret, prefix } = generateSecret(env);
      const id = over.id ?? `key_h${++n}`;
      keys.set(id, keyRecord({ ...over, id, prefix, environment: env, secretHash: hashSecret(config.secrets.pepper, secret) }));
      return secret;
    },
    async close() {
      server.closeAllConnections();
      upstream.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
      await recorder.stop();
      await Promise.all(compiled.upstreams.map((u) => u.close()));
    },
  };
}
