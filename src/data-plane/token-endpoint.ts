import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { ParsedIp } from '../domain/cidr.js';
import { formatIssues } from '../domain/issues.js';
import { parseJsonBody } from '../domain/json-body.js';
import { secretFingerprint } from '../domain/secret.js';
import type { ErrorCode } from '../errors.js';
import { readCredential, type HeaderScan } from './credentials.js';
import type { KeyResolver } from './key-resolver.js';
import { STATUS_REFUSAL } from './stages/key-status.js';
import type { LimitCheck } from './stages/rate-limit.js';
import type { TokenService } from './token-service.js';

const identity = z.union([
  z.strictObject({ customId: z.string().min(1).max(256) }),
  z.strictObject({ email: z.string().min(3).max(320) }),
]);
const requestSchema = z.strictObject({
  apiKey: z.string().min(1).max(200).optional(),
  identity: identity.optional(),
  signature: z.string().regex(/^[0-9a-fA-F]{64}$/, { message: 'must be 64 hex characters' }).optional(),
});

/** C0 controls, DEL and C1 controls: no identity holds them. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A lone surrogate has no UTF-8 form: it could be neither signed nor carried faithfully. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Why an identity value is refused (`identity.customId: …`), or null. */
function identityProblem(field: string, value: string): string | null {
  if (CONTROL.test(value)) return `identity.${field}: must not contain control characters (C0, DEL, C1)`;
  if (LONE_SURROGATE.test(value)) return `identity.${field}: must be valid Unicode (no lone surrogates)`;
  return null;
}

/** `headers`: the RateLimit-* (and on a 429 Retry-After) headers of a key with limits. */
export type Exchange =
  | { ok: true; body: { token: string; tokenType: 'Bearer'; expiresIn: number }; keyId: string; headers?: Record<string, string> }
  | { ok: false; code: ErrorCode; message?: string; keyId?: string; headers?: Record<string, string> };

/** `hex(HMAC-SHA256(key = the salt's UTF-8 bytes, message = the identity value))`, compared in constant time. */
function signatureMatches(salt: string, value: string, signature: string): boolean {
  const expected = createHmac('sha256', Buffer.from(salt, 'utf8')).update(value, 'utf8').digest();
  const given = Buffer.from(signature.toLowerCase(), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * `POST /auth/token`: an API key (in the body as `apiKey`, or in the usual headers) for a
 * short-lived JWT. The key passes the same checks as on any route (status, IP allowlist). A
 * profile key with simple authentication may add a signed `identity` and gets a token that
 * speaks for that profile; a workspace key never can. A mint counts against the key's rate
 * limit and quota like any of its requests.
 */
export function createTokenExchange(resolver: KeyResolver, tokens: TokenService, limits: LimitCheck) {
  return async (scan: HeaderScan, rawBody: Buffer, clientIp: ParsedIp | null, now: number): Promise<Exchange> => {
    let parsed: unknown = {};
    if (rawBody.length > 0) {
      const body = parseJsonBody(rawBody);
      if (!body.ok) return { ok: false, code: 'INVALID_BODY', message: body.message };
      parsed = body.value;
    }
    const input = requestSchema.safeParse(parsed);
    if (!input.success) return { ok: false, code: 'BAD_REQUEST', message: formatIssues(input.error.issues).join('; ') };
    const { apiKey, identity: who, signature } = input.data;
    if (who !== undefined && signature === undefined) return { ok: false, code: 'BAD_REQUEST', message: 'signature: is required with identity' };
    if (who === undefined && signature !== undefined) return { ok: false, code: 'BAD_REQUEST', message: 'identity: is required with signature' };
    if (who !== undefined) {
      const problem = 'customId' in who ? identityProblem('customId', who.customId) : identityProblem('email', who.email);
      if (problem !== null) return { ok: false, code: 'BAD_REQUEST', message: problem };
    }

    const cred = readCredential(apiKey === undefined ? scan : { ...scan, apiKeys: [...scan.apiKeys, apiKey] });
    if (cred.kind === 'ambiguous') return { ok: false, code: 'AMBIGUOUS_CREDENTIALS' };
    if (cred.kind === 'token') return { ok: false, code: 'BAD_REQUEST', message: 'Exchange an API key, not a token.' };
    if (cred.kind !== 'secret' && cred.kind !== 'basic') return { ok: false, code: 'UNAUTHENTICATED' };
    const resolved = await resolver.resolve(cred.secret);
    if (!resolved.ok) return { ok: false, code: resolved.code };
    const policy = resolved.policy;
    const keyId = policy.keyId;
    if (cred.kind === 'basic' && (policy.type !== 'workspace' || !policy.basicAuth || policy.workspaceId !== cred.workspaceId)) {
      return { ok: false, code: 'UNAUTHENTICATED' };
    }
    const refusal = STATUS_REFUSAL[policy.status(now)];
    if (refusal !== null) return { ok: false, code: refusal, keyId };
    if (policy.ipRestricted && (clientIp === null || !policy.ipAllowed(clientIp))) return { ok: false, code: 'IP_NOT_ALLOWED', keyId };

    let profile: string | null = null;
    if (who !== undefined) {
      if (policy.type !== 'profile') return { ok: false, code: 'KEY_TYPE_NOT_ALLOWED', message: 'Only profile keys can obtain profile tokens.', keyId };
      const value = 'customId' in who ? who.customId : who.email;
      // No hint: a key without simple authentication and a wrong signature look the same.
      if (policy.simpleAuthSalt === null || !signatureMatches(policy.simpleAuthSalt, value, signature!)) return { ok: false, code: 'UNAUTHENTICATED', keyId };
      profile = value;
    }
    // A mint is a request of the key: it counts against the key's rate limit and quota.
    const limited = limits(policy, now);
    const decision = limited instanceof Promise ? await limited : limited;
    if (decision !== null && !decision.ok) return { ok: false, code: decision.code ?? 'RATE_LIMITED', keyId, ...(decision.headers ? { headers: decision.headers } : {}) };
    // Names the secret presented (current, or retired and still in grace) without any of its hash.
    const minted = await tokens.mint({
      key: keyId,
      profile,
      ws: policy.workspaceId,
      typ: policy.type,
      env: policy.environment,
      kv: policy.version,
      sfp: secretFingerprint(resolved.hash),
    }, now);
    return { ok: true, body: { token: minted.token, tokenType: 'Bearer', expiresIn: minted.expiresIn }, keyId, ...(decision?.headers ? { headers: decision.headers } : {}) };
  };
}
