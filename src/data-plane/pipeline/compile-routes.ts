import type { Config } from '../../config/schema.js';
import { KEY_TYPES } from '../../domain/api-key.js';
import type { ConfiguredRoute, KeyStage } from './context.js';
import { Upstream } from '../upstream/upstream.js';
import { forwardHandler } from '../upstream/forward.js';
import type { KeyResolver } from '../key-resolver.js';
import { authenticateStage } from '../stages/authenticate.js';
import { ipAllowlistStage } from '../stages/ip-allowlist.js';
import { keyStatusStage } from '../stages/key-status.js';
import { keyTypeStage } from '../stages/key-type.js';
import { permissionStage } from '../stages/permission.js';
import { profileScopeStage } from '../stages/profile-scope.js';
import type { TokenVerifier } from '../tokens/token-verifier.js';
import type { RateLimiter } from '../../store/rate-limit/types.js';
import { rateLimitStage } from '../stages/rate-limit.js';
import { bodyPolicyStage } from '../stages/body-policy.js';
import type { CounterChild } from '../../observability/hot-metrics.js';

export interface PipelineDeps {
  config: Config;
  resolver: KeyResolver;
  tokens: TokenVerifier | null;
  limiter: RateLimiter;
  rateLimited: CounterChild;
}

/**
 * Builds each route's ordered stage list once, in the contract's order: credential → key
 * status → permission → key type → IP allowlist → profile scope → event and attribute lists
 * (body) → rate limit and quota, then the final handler: forward to the route's upstream. A stage is present only when the route needs it (no
 * key-type stage on a route open to every type, no body stage on a route that streams).
 */
export function compileRoutes({ config, resolver, tokens, limiter, rateLimited }: PipelineDeps): { routes: ConfiguredRoute[]; upstreams: Upstream[] } {
  const upstreams = new Map<string, Upstream>();
  for (const [name, cfg] of Object.entries(config.upstreams)) upstreams.set(name, new Upstream(name, cfg));
  const authenticate = authenticateStage(resolver, tokens);
  const status = keyStatusStage();
  const ip = ipAllowlistStage();
  const limits = rateLimitStage(limiter, rateLimited);
  const bodyLimits = { maxBodyBytes: config.gateway.maxBodyBytes, requestTimeoutMs: config.gateway.requestTimeoutMs };
  const routes = config.routes.map((rc): ConfiguredRoute => {
    const checks: KeyStage[] = [status, permissionStage(rc.permission)];
    if (rc.keyTypes && !KEY_TYPES.every((t) => rc.keyTypes!.includes(t))) checks.push(keyTypeStage(rc.keyTypes));
    checks.push(ip);
    if (rc.profileScope !== undefined) checks.push(profileScopeStage(rc.profileScope));
    if (rc.events !== undefined || rc.profileAttributes) checks.push(bodyPolicyStage(rc, bodyLimits));
    checks.push(limits);
    const upstream = upstreams.get(rc.upstream)!;
    const upstreamTest = rc.upstreamTest ? upstreams.get(rc.upstreamTest)! : upstream;
    return {
      config: rc,
      name: rc.name,
      stages: [authenticate],
      checks,
      final: forwardHandler(upstream, upstreamTest),
      upstreams: [upstream, upstreamTest],
    };
  });
  return { routes, upstreams: [...upstreams.values()] };
}
