import { z } from 'zod';
import type { ErrorCode } from '../../errors/catalogue.js';
import { fixedRefusal } from '../../errors/http.js';
import { formatIssues } from '../../domain/issues.js';
import { CHARSET_MESSAGE, isJsonContentType, isJsonWithForeignCharset, parseJsonBody } from '../../domain/json-body.js';
import { isPermissionName } from '../../domain/permissions.js';
import type { CounterChild } from '../../observability/hot-metrics.js';
import type { RateLimiter } from '../../store/rate-limit/types.js';
import type { KeyResolver } from '../key-resolver.js';
import { admitted, refusedCode, type AdmittedContext, type CompiledRoute, type FinalHandler, type KeyStage, type RequestContext, type RequestEnd, type Stage, type StageResult } from '../pipeline/context.js';
import { sendGatewayJson } from '../pipeline/request-end.js';
import { clientGone } from '../pipeline/run.js';
import { readBody } from '../request/read-body.js';
import { authenticateStage } from '../stages/authenticate.js';
import { ipAllowlistStage } from '../stages/ip-allowlist.js';
import { keyStatusStage } from '../stages/key-status.js';
import { rateLimitStage } from '../stages/rate-limit.js';
import { methodStage } from '../tokens/token-routes.js';
import type { TokenVerifier } from '../tokens/token-verifier.js';

export const VERIFY_PATH = '/auth/verify';

/** Verify bodies are small; the cap keeps a verify request from holding much memory. */
const MAX_VERIFY_BODY = 16 * 1024;

const requestSchema = z.strictObject({
  key: z.string().min(1).max(4096),
  permission: z.string().refine(isPermissionName, { message: 'must be a permission name like "events.create"' }).optional(),
});

/** The answers about the key itself: `{valid: false, code}`. Anything else (a bad request, the store down) is an error answer. */
const VERDICTS = new Set<ErrorCode>([
  'UNAUTHENTICATED', 'KEY_EXPIRED', 'TOKEN_INVALID', 'KEY_DISABLED', 'KEY_SUSPENDED', 'PERMISSION_DENIED', 'IP_NOT_ALLOWED',
  'RATE_LIMITED', 'QUOTA_EXCEEDED', 'AMBIGUOUS_CREDENTIALS',
]);
const FOREIGN_CHARSET = fixedRefusal('UNSUPPORTED_MEDIA_TYPE', CHARSET_MESSAGE);
const NOT_JSON = fixedRefusal('UNSUPPORTED_MEDIA_TYPE', 'The body must be JSON: {"key": "…", "permission": "…"}.');
const TOO_LARGE = fixedRefusal('BODY_TOO_LARGE', `The body is over ${MAX_VERIFY_BODY} bytes.`);

interface Verdict { code: ErrorCode | 'OK'; headers: Readonly<Record<string, string>> | null }

/** Runs stages one after the other, synchronously while they answer at once; the first refusal ends the run. */
function runAll<C extends RequestContext>(ctx: C, stages: ReadonlyArray<(c: C) => StageResult | Promise<StageResult>>, from = 0): StageResult | Promise<StageResult> {
  for (let i = from; i < stages.length; i++) {
    const r = stages[i]!(ctx);
    if (r instanceof Promise) return r.then((x) => (x !== null ? x : runAll(ctx, stages, i + 1)));
    if (r !== null) return r;
  }
  return null;
}

/** `{limit, remaining, reset}` from the RateLimit-* headers of a key with limits, else null. */
function ratelimitOf(headers: Readonly<Record<string, string>> | null): { limit: number; remaining: number; reset: number } | null {
  if (headers === null || headers['ratelimit-limit'] === undefined) return null;
  return { limit: Number(headers['ratelimit-limit']), remaining: Number(headers['ratelimit-remaining']), reset: Number(headers['ratelimit-reset']) };
}

export interface VerifyRouteDeps {
  resolver: KeyResolver;
  tokens: TokenVerifier | null;
  limiter: RateLimiter;
  rateLimited: CounterChild;
  requestTimeoutMs: number;
}

/**
 * `POST /auth/verify {key, permission?}`: for a service that checks keys itself. The key (a
 * secret or a minted token) passes the checks of any request — key status, the permission
 * when one is named, the IP allowlist against the caller's client IP (X-Forwarded-For from
 * `gateway.trustedProxies` only) — and is counted against its rate limit and quota. The answer
 * is 200 `{valid, code, keyId, workspaceId, type, environment, permissions, ratelimit}`
 * whatever the verdict; a malformed request, or a store that cannot answer, is an error answer.
 */
export function compileVerifyRoute(deps: VerifyRouteDeps): CompiledRoute {
  const authenticate = authenticateStage(deps.resolver, deps.tokens);
  const status = keyStatusStage();
  const ip = ipAllowlistStage();
  const limits = rateLimitStage(deps.limiter, deps.rateLimited);

  const verify = (ctx: RequestContext, permission: string | undefined): Promise<StageResult> | StageResult => {
    const checks: KeyStage[] = [status];
    if (permission !== undefined) checks.push((c) => (c.policy.allows(permission) ? null : 'PERMISSION_DENIED'));
    checks.push(ip, limits);
    const afterAuth = (r: StageResult): StageResult | Promise<StageResult> => (r !== null || !admitted(ctx) ? r : runAll<AdmittedContext>(ctx, checks));
    const r = authenticate(ctx);
    return r instanceof Promise ? r.then(afterAuth) : afterAuth(r);
  };

  const answer = (ctx: RequestContext, end: RequestEnd, verdict: Verdict): void => {
    const p = ctx.policy;
    const payload = JSON.stringify({
      valid: verdict.code === 'OK',
      code: verdict.code,
      keyId: p?.keyId ?? null,
      workspaceId: p?.workspaceId ?? null,
      type: p?.type ?? null,
      environment: p?.environment ?? null,
      permissions: p?.permissions ?? [],
      ratelimit: ratelimitOf(verdict.headers),
    });
    sendGatewayJson(ctx.res, end.drain, ctx.requestId, 200, payload, { ...verdict.headers, 'cache-control': 'no-store' });
    end.finish(ctx, 200, verdict.code, 0);
  };

  const final: FinalHandler = (ctx, end) => {
    const type = ctx.scan.contentType;
    if (ctx.scan.contentTypes > 1) return end.refuse(ctx, 'BAD_REQUEST', 'The request has more than one Content-Type header.', null);
    if (!isJsonContentType(type ?? undefined)) {
      const r = isJsonWithForeignCharset(type ?? undefined) ? FOREIGN_CHARSET : NOT_JSON;
      return end.refuse(ctx, r.code, r.message, null);
    }
    readBody(ctx.req, MAX_VERIFY_BODY, deps.requestTimeoutMs - (performance.now() - ctx.started)).then((body) => {
      if (body === 'timeout') return end.refuse(ctx, 'REQUEST_TIMEOUT', null, null);
      if (body === 'too-large') return end.refuse(ctx, TOO_LARGE.code, TOO_LARGE.message, null);
      const json = parseJsonBody(body);
      if (!json.ok) return end.refuse(ctx, 'INVALID_BODY', json.message, null);
      const input = requestSchema.safeParse(json.value);
      if (!input.success) return end.refuse(ctx, 'BAD_REQUEST', formatIssues(input.error.issues).join('; '), null);
      // The key in the body is the request's one credential, whatever headers came with it.
      ctx.scan = { ...ctx.scan, apiKeys: [], authorizations: [`Bearer ${input.data.key.trim()}`] };
      const settle = (r: StageResult): void => {
        const code = refusedCode(r);
        if (code === null) return answer(ctx, end, { code: 'OK', headers: ctx.responseHeaders });
        if (!VERDICTS.has(code)) return typeof r === 'string' ? end.refuse(ctx, r, null, null) : end.refuse(ctx, code, r!.message, r!.headers);
        answer(ctx, end, { code, headers: typeof r === 'string' ? null : r!.headers });
      };
      const r = verify(ctx, input.data.permission);
      if (r instanceof Promise) return r.then(settle);
      settle(r);
    }).catch((err: unknown) => {
      if (clientGone(ctx.req, err)) end.closed(ctx, 0);
      else end.fault(ctx, err);
    });
  };

  const stages: Stage[] = [methodStage(['POST'])];
  return { name: 'auth-verify', stages, checks: [], final, upstreams: [] };
}
