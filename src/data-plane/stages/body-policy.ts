import type { RouteConfig } from '../../config/schema.js';
import type { CompiledPolicy } from '../../domain/compiled-policy.js';
import { CHARSET_MESSAGE, isJsonContentType, isJsonWithForeignCharset } from '../../domain/json-body.js';
import { isJsonObject, ownMember, parseStrictJson } from '../../domain/strict-json.js';
import type { RequestContext, Stage, StageResult } from '../context.js';
import { readBody } from '../read-body.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const IDENTITY = /^\s*identity\s*$/i;
/** Names echoed in a message are cut short and JSON-quoted, so a hostile name cannot shape the answer. */
const quote = (name: string): string => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

export interface BodyPolicyOptions {
  maxBodyBytes: number;
  /** The whole request's time limit; the body must have arrived within it. */
  requestTimeoutMs: number;
}

/**
 * Routes with `events` or `profileAttributes` read their JSON body (capped, within the
 * request's time limit), parse it strictly once and check it against the key's event and
 * attribute lists. The bytes received are kept on the context and forwarded as they are.
 */
export function bodyPolicyStage(route: Pick<RouteConfig, 'events' | 'profileAttributes'>, opts: BodyPolicyOptions): Stage {
  const field = route.events?.field ?? null;
  const attributes = route.profileAttributes;

  const check = (ctx: RequestContext, bytes: Buffer): StageResult => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      ctx.message = 'The body is not valid UTF-8.';
      return 'INVALID_BODY';
    }
    const parsed = parseStrictJson(text);
    if (!parsed.ok) {
      ctx.message = parsed.message;
      return 'INVALID_BODY';
    }
    const policy = ctx.policy!;
    const body = parsed.value;
    if (field !== null) {
      const result = checkEvents(ctx, policy, body, field, attributes);
      if (result !== null) return result;
    }
    if (attributes) return checkAttributes(ctx, policy, body);
    return null;
  };

  return (ctx) => {
    const { scan } = ctx;
    if (scan.contentTypes > 1) {
      ctx.message = 'The request has more than one Content-Type header.';
      return 'BAD_REQUEST';
    }
    if (!isJsonContentType(scan.contentType ?? undefined)) {
      ctx.message = isJsonWithForeignCharset(scan.contentType ?? undefined) ? CHARSET_MESSAGE
        : 'This route inspects its body: send JSON (Content-Type: application/json).';
      return 'UNSUPPORTED_MEDIA_TYPE';
    }
    if (scan.contentEncoding !== null && !IDENTITY.test(scan.contentEncoding)) {
      ctx.message = 'This route inspects its body: send it without Content-Encoding.';
      return 'UNSUPPORTED_MEDIA_TYPE';
    }
    if (!scan.hasBody) {
      ctx.message = 'This route needs a JSON body.';
      return 'INVALID_BODY';
    }
    return readBody(ctx.req, opts.maxBodyBytes, opts.requestTimeoutMs - (Date.now() - ctx.now)).then((bytes) => {
      if (bytes === 'too-large') {
        ctx.message = `The body is over ${opts.maxBodyBytes} bytes.`;
        return 'BODY_TOO_LARGE';
      }
      if (bytes === 'timeout') return 'REQUEST_TIMEOUT';
      ctx.body = bytes;
      return check(ctx, bytes);
    });
  };
}

/** The event at `field` of the body, or of each element of a batch; the denylist wins. */
function checkEvents(ctx: RequestContext, policy: CompiledPolicy, body: unknown, field: string, objectOnly: boolean): StageResult {
  const batch = Array.isArray(body);
  if (batch ? objectOnly : !isJsonObject(body)) {
    ctx.message = objectOnly ? 'The body must be a JSON object.' : 'The body must be a JSON object or an array of objects.';
    return 'INVALID_BODY';
  }
  const items = batch ? body : [body];
  const names: string[] = [];
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    const where = batch ? `Element ${k} of the batch` : 'The body';
    if (!isJsonObject(item)) {
      ctx.message = `${where} is not a JSON object.`;
      return 'INVALID_BODY';
    }
    const name = ownMember(item, field);
    if (typeof name !== 'string') {
      ctx.message = `${where} has no string at ${quote(field)}.`;
      return 'INVALID_BODY';
    }
    names.push(name);
  }
  const { eventAllowed, eventDenied } = policy;
  if (eventAllowed === null && eventDenied === null) return null;
  for (const name of names) {
    if ((eventDenied !== null && eventDenied(name)) || (eventAllowed !== null && !eventAllowed(name))) {
      ctx.message = `The API key may not send the event ${quote(name)}.`;
      return 'EVENT_NOT_ALLOWED';
    }
  }
  return null;
}

/** Every top-level key of the body must be on the key's attribute allowlist, when it has one. */
function checkAttributes(ctx: RequestContext, policy: CompiledPolicy, body: unknown): StageResult {
  if (!isJsonObject(body)) {
    ctx.message = 'The body must be a JSON object.';
    return 'INVALID_BODY';
  }
  const allowed = policy.attributeAllowed;
  if (allowed === null) return null;
  for (const name of Object.keys(body)) {
    if (!allowed(name)) {
      ctx.message = `The API key may not modify the attribute ${quote(name)}.`;
      return 'ATTRIBUTE_NOT_ALLOWED';
    }
  }
  return null;
}
