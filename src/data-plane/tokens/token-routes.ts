import type { Config } from '../../config/schema.js';
import { secretFingerprint } from '../../domain/secret.js';
import type { CounterChild } from '../../observability/hot-metrics.js';
import type { CompiledRoute, Stage } from '../pipeline/context.js';
import { fixedRefusal } from '../../errors/http.js';
import type { KeyResolver } from '../key-resolver.js';
import { admitted, type FinalHandler } from '../pipeline/context.js';
import { clientGone } from '../pipeline/run.js';
import type { RateLimiter } from '../../store/rate-limit/types.js';
import { authenticateStage } from '../stages/authenticate.js';
import { ipAllowlistStage } from '../stages/ip-allowlist.js';
import { keyStatusStage } from '../stages/key-status.js';
import { rateLimitStage } from '../stages/rate-limit.js';
import type { TokenService } from './token-service.js';
import { tokenIdentityStage, tokenRequestStage } from './token-request.js';

export const TOKEN_PATH = '/auth/token';
export const JWKS_PATH = '/.well-known/jwks.json';

/** Refuses every method but `allowed` with 405 and an `Allow` header (built once). */
export function methodStage(allowed: readonly string[]): Stage {
  const refused = fixedRefusal('METHOD_NOT_ALLOWED', null, { allow: allowed.join(', ') });
  return (ctx) => (allowed.includes(ctx.req.method ?? '') ? null : refused);
}

/** Counters of minted tokens: from an API key alone, or a profile's by simple authentication. */
export interface MintCounters { key: CounterChild; simple: CounterChild }

/** Mints the admitted key's token; its RateLimit-* headers go on the answer. */
export function mintHandler(tokens: TokenService, minted: MintCounters): FinalHandler {
  return (ctx, end) => {
    if (!admitted(ctx) || ctx.secretHash === null) return end.fault(ctx, new Error('a token request has no key'));
    const { policy } = ctx;
    const limitHeaders = ctx.responseHeaders;
    // Names the secret presented (current, or retired and still in grace) without any of its hash.
    tokens.mint({
      key: policy.keyId,
      profile: ctx.profile,
      ws: policy.workspaceId,
      typ: policy.type,
      env: policy.environment,
      kv: policy.version,
      sfp: secretFingerprint(ctx.secretHash),
    }, ctx.now).then((token) => {
      (ctx.profile === null ? minted.key : minted.simple).inc();
      end.json(ctx, 200, JSON.stringify({ token: token.token, tokenType: 'Bearer', expiresIn: token.expiresIn }), { ...limitHeaders, 'cache-control': 'no-store' });
    }).catch((err: unknown) => {
      if (clientGone(ctx.req, err)) end.closed(ctx, 0);
      else end.fault(ctx, err);
    });
  };
}

/** The public keys tokens are signed with. */
export function jwksHandler(tokens: TokenService): FinalHandler {
  return (ctx, end) => end.json(ctx, 200, tokens.jwksJson(), { 'cache-control': tokens.jwksCacheControl });
}

export interface TokenRoutesDeps {
  config: Config;
  resolver: KeyResolver;
  tokens: TokenService;
  limiter: RateLimiter;
  rateLimited: CounterChild;
  minted: MintCounters;
}

/**
 * The gateway's own routes, ahead of every configured one and matched by path alone:
 * `POST /auth/token` exchanges an API key (in the body as `apiKey`, or in the usual headers)
 * for a short-lived JWT through the same stages as any request of the key (authenticate, key
 * status, IP allowlist, and its rate limit and quota: a mint counts as one of its requests);
 * `GET /.well-known/jwks.json` serves the signing keys.
 */
export function compileTokenRoutes({ config, resolver, tokens, limiter, rateLimited, minted }: TokenRoutesDeps): ReadonlyMap<string, CompiledRoute> {
  const token: CompiledRoute = {
    name: 'auth-token',
    stages: [
      methodStage(['POST']),
      tokenRequestStage({
        ready: () => tokens.ready,
        // Token bodies are small; the cap keeps a token request from holding much memory.
        maxBodyBytes: Math.min(config.gateway.maxBodyBytes, 64 * 1024),
        requestTimeoutMs: config.gateway.requestTimeoutMs,
      }),
      authenticateStage(resolver, null, fixedRefusal('BAD_REQUEST', 'Exchange an API key, not a token.')),
    ],
    checks: [
      keyStatusStage(),
      ipAllowlistStage(),
      tokenIdentityStage(),
      rateLimitStage(limiter, rateLimited),
    ],
    final: mintHandler(tokens, minted),
    upstreams: [],
  };
  const jwks: CompiledRoute = { name: 'jwks', stages: [methodStage(['GET', 'HEAD'])], checks: [], final: jwksHandler(tokens), upstreams: [] };
  return new Map([[TOKEN_PATH, token], [JWKS_PATH, jwks]]);
}
