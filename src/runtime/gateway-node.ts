import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { createGatewayServer } from '../data-plane/gateway-server.js';
import { KeyResolver } from '../data-plane/key-resolver.js';
import type { KeySource } from '../store/key-source.js';
import { compileRoutes } from '../data-plane/pipeline/compile-routes.js';
import { UsageRecorder, type UsageSink } from '../data-plane/pipeline/usage-recorder.js';
import { ActivityRecorder, type ActivitySink } from '../data-plane/pipeline/activity-recorder.js';
import type { Metrics } from '../observability/metrics.js';
import type { RateLimiter } from '../store/rate-limit/types.js';
import type { Change } from '../store/types.js';
import type { SigningKeyRecord } from '../domain/signing-key.js';
import { SigningKeyCipher } from '../domain/signing-key-cipher.js';
import { compileTokenRoutes } from '../data-plane/tokens/token-routes.js';
import { TokenService } from '../data-plane/tokens/token-service.js';
import { TokenVerifier } from '../data-plane/tokens/token-verifier.js';
import { drainState, type DrainState } from '../http/drain.js';
import type { LeakReporter } from '../domain/leak.js';
import { GithubKeyring } from '../data-plane/leaks/github-keys.js';
import { compileSecretScanningRoute, SECRET_SCANNING_PATH } from '../data-plane/leaks/secret-scanning.js';
import { compileDecisionRoutes } from '../data-plane/decide/decision-routes.js';
import { VERIFY_PATH, compileVerifyRoute } from '../data-plane/decide/verify.js';
import { stdoutAccessLog } from '../observability/access-log.js';
import { atMost } from './heartbeat.js';

/** How long a stopping process waits for stdout to take the access log's last lines. */
const ACCESS_LOG_FLUSH_MS = 5_000;

export interface GatewayNodeDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  source: KeySource;
  /** Whether this node is known to be within the propagation bound right now. */
  fresh: () => boolean;
  usageSink: UsageSink;
  /** Where each key's activity records go in batches (the store, or the primary). */
  activitySink: ActivitySink;
  limiter: RateLimiter;
  /** `POST /auth/secret-scanning`: applies the leak action (the store's writer: here, or the primary). */
  reportLeaks: LeakReporter;
}

export interface GatewayNode {
  server: Server;
  drain: DrainState;
  /** Loads the token signing keys (at start, and whenever the store's set changes). */
  setSigningKeys(keys: readonly SigningKeyRecord[]): Promise<void>;
  /** Feed entries from the store's change feed. */
  applyChanges(changes: readonly Change[]): void;
  /** The feed had a gap: forget every cached key. */
  reset(): void;
  close(): Promise<void>;
}

/** One gateway: resolver, routes, usage batching and the HTTP server, wired once. */
export function createGatewayNode(deps: GatewayNodeDeps): GatewayNode {
  const { config, metrics } = deps;
  const resolver = new KeyResolver({
    source: deps.source,
    pepper: config.secrets.pepper,
    fresh: deps.fresh,
    stats: {
      hit: () => metrics.keyCacheHits.inc(),
      miss: () => metrics.keyCacheMisses.inc(),
      storeError: () => metrics.storeErrors.inc({ operation: 'key_lookup' }),
    },
  });
  metrics.probes.keyCacheEntries = () => resolver.size;
  const usage = new UsageRecorder(deps.usageSink);
  usage.start();
  const keep = config.keys.activityPerKey;
  const activity = keep > 0 ? new ActivityRecorder(deps.activitySink, { keepPerKey: keep }) : null;
  activity?.start();
  const tokens = new TokenService(config.tokens.issuer, config.tokens.ttlSeconds, {
    audience: config.tokens.audience,
    cipher: SigningKeyCipher.fromSecrets(config.secrets),
    rotationDelaySeconds: config.tokens.rotationDelaySeconds,
  });
  const verifier = new TokenVerifier(tokens, resolver);
  const { routes, upstreams } = compileRoutes({
    config, resolver, tokens: verifier, limiter: deps.limiter, rateLimited: metrics.rateLimited,
  });
  const localRoutes = new Map(compileTokenRoutes({ config, resolver, tokens, limiter: deps.limiter, rateLimited: metrics.rateLimited,
    minted: { key: metrics.tokensMinted.labels({ auth: 'key' }), simple: metrics.tokensMinted.labels({ auth: 'simple' }) } }));
  localRoutes.set(VERIFY_PATH, compileVerifyRoute({
    resolver, tokens: verifier, limiter: deps.limiter, rateLimited: metrics.rateLimited, requestTimeoutMs: config.gateway.requestTimeoutMs,
  }));
  const drain = drainState();
  const github = config.leaks.github;
  const secretScanning = compileSecretScanningRoute({
    keyring: new GithubKeyring({ publicKeys: github.publicKeys, keysUrl: github.keysUrl, cacheSeconds: github.keysCacheSeconds, logger: deps.logger }),
    report: deps.reportLeaks,
    maxBodyBytes: config.gateway.maxBodyBytes,
    requestTimeoutMs: config.gateway.requestTimeoutMs,
  });
  if (secretScanning !== null) localRoutes.set(SECRET_SCANNING_PATH, secretScanning);
  // One access log per process (each worker its own, writing whole lines to the shared stdout).
  const accessLog = config.gateway.accessLog ? stdoutAccessLog((n) => metrics.accessLogDropped.inc(n)) : null;
  const server = createGatewayServer({
    config, routes, metrics, logger: deps.logger, usage, activity, drain, localRoutes, decisions: compileDecisionRoutes(routes), accessLog,
  });
  return {
    server,
    drain,
    setSigningKeys: (keys) => tokens.setKeys(keys),
    reset: () => resolver.clear(),
    applyChanges(changes) {
      resolver.apply(changes);
      const now = Date.now();
      for (const c of changes) metrics.propagationLag.observe(Math.max(0, now - c.at) / 1000);
    },
    async close() {
      await Promise.all([usage.stop(), activity?.stop()]);
      await Promise.all(upstreams.map((u) => u.close()));
      // The ports have drained: every request's line is buffered; written before the process
      // exits, unless stdout stays blocked past the bound (what is left is written at exit if it can be).
      if (accessLog !== null) await atMost(accessLog.flush(), ACCESS_LOG_FLUSH_MS);
    },
  };
}
