import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { formatIssues } from '../../domain/issues.js';
import { CHARSET_MESSAGE, isJsonContentType, isJsonWithForeignCharset, parseJsonBody } from '../../domain/json-body.js';
import type { KeyStage, Stage } from '../pipeline/context.js';
import { fixedRefusal, refusal } from '../../errors/http.js';
import { readBody } from '../request/read-body.js';

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

const NOT_READY = fixedRefusal('STORE_UNAVAILABLE', 'No token signing key is loaded yet.');
const FOREIGN_CHARSET = fixedRefusal('UNSUPPORTED_MEDIA_TYPE', CHARSET_MESSAGE);
const NOT_A_PROFILE_KEY = fixedRefusal('KEY_TYPE_NOT_ALLOWED', 'Only profile keys can obtain profile tokens.');

/** `hex(HMAC-SHA256(key = the salt's UTF-8 bytes, message = the identity value))`, compared in constant time. */
function signatureMatches(salt: string, value: string, signature: string): boolean {
  const expected = createHmac('sha256', Buffer.from(salt, 'utf8')).update(value, 'utf8').digest();
  const given = Buffer.from(signature.toLowerCase(), 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface TokenRequestOptions {
  /** Whether a signing key is loaded (no token can be minted before). */
  ready: () => boolean;
  /** The body cap of a token request. */
  maxBodyBytes: number;
  /** The whole request's time limit; the body must have arrived within it. */
  requestTimeoutMs: number;
}

/**
 * The first stage of `POST /auth/token`: a signing key is loaded, the body (JSON, capped, in
 * time) is read and checked, and an `apiKey` it carries joins the request's credentials, so the
 * stages after it (authenticate, key status, IP allowlist) see it as they see any credential.
 */
export function tokenRequestStage({ ready, maxBodyBytes, requestTimeoutMs }: TokenRequestOptions): Stage {
  const tooLarge = fixedRefusal('BODY_TOO_LARGE', `The body is over ${maxBodyBytes} bytes.`);
  return (ctx) => {
    if (!ready()) return NOT_READY;
    const type = ctx.req.headers['content-type'];
    if (ctx.scan.hasBody && !isJsonContentType(type)) {
      return isJsonWithForeignCharset(type) ? FOREIGN_CHARSET : 'UNSUPPORTED_MEDIA_TYPE';
    }
    return readBody(ctx.req, maxBodyBytes, requestTimeoutMs - (performance.now() - ctx.started)).then((body) => {
      if (body === 'timeout') return 'REQUEST_TIMEOUT';
      if (typeof body === 'string') return tooLarge;
      let parsed: unknown = {};
      if (body.length > 0) {
        const json = parseJsonBody(body);
        if (!json.ok) return refusal('INVALID_BODY', json.message);
        parsed = json.value;
      }
      const input = requestSchema.safeParse(parsed);
      let problem: string | null = null;
      if (!input.success) problem = formatIssues(input.error.issues).join('; ');
      else {
        const { identity: who, signature } = input.data;
        if (who !== undefined && signature === undefined) problem = 'signature: is required with identity';
        else if (who === undefined && signature !== undefined) problem = 'identity: is required with signature';
        else if (who !== undefined) problem = 'customId' in who ? identityProblem('customId', who.customId) : identityProblem('email', who.email);
      }
      if (problem !== null || !input.success) return refusal('BAD_REQUEST', problem);
      const { apiKey, identity: who, signature } = input.data;
      if (apiKey !== undefined) ctx.scan = { ...ctx.scan, apiKeys: [...ctx.scan.apiKeys, apiKey] };
      ctx.tokenRequest = { identity: who, signature };
      return null;
    });
  };
}

/**
 * After the key's checks: a profile key with simple authentication may add a signed
 * `identity`, and gets a token that speaks for that profile; a workspace key never can.
 */
export function tokenIdentityStage(): KeyStage {
  return (ctx) => {
    const { tokenRequest: request, policy } = ctx;
    if (request === null || request.identity === undefined) return null;
    if (policy.type !== 'profile') return NOT_A_PROFILE_KEY;
    const who = request.identity;
    const value = 'customId' in who ? who.customId : who.email;
    // No hint: a key without simple authentication and a wrong signature look the same.
    if (policy.simpleAuthSalt === null || request.signature === undefined || !signatureMatches(policy.simpleAuthSalt, value, request.signature)) return 'UNAUTHENTICATED';
    ctx.profile = value;
    return null;
  };
}
