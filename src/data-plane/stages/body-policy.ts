import type { RouteConfig } from '../../config/schema.js';
import type { CompiledPolicy } from '../../domain/compiled-policy.js';
import { CHARSET_MESSAGE, isJsonContentType, isJsonWithForeignCharset } from '../../domain/json-body.js';
import { isJsonObject, ownMember, parseStrictJson } from '../../domain/strict-json.js';
import type { AdmittedContext, KeyStage, StageResult } from '../pipeline/context.js';
import { fixedRefusal, refusal } from '../../errors/http.js';
import { readBody } from '../request/read-body.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const IDENTITY = /^\s*identity\s*$/i;
// Refusals with fixed messages, built once.
const NOT_UTF8 = fixedRefusal('INVALID_BODY', 'The body is not valid UTF-8.');
const TWO_CONTENT_TYPES = fixedRefusal('BAD_REQUEST', 'The request has more than one Content-Type header.');
const ENCODED = fixedRefusal('UNSUPPORTED_MEDIA_TYPE', 'This route inspects its body: send it without Content-Encoding.');
const NO_BODY = fixedRefusal('INVALID_BODY', 'This route needs a JSON body.');
const FOREIGN_CHARSET = fixedRefusal('UNSUPPORTED_MEDIA_TYPE', CHARSET_MESSAGE);
const NOT_JSON = fixedRefusal('UNSUPPORTED_MEDIA_TYPE', 'This route inspects its body: send JSON (Content-Type: application/json).');
const NOT_AN_OBJECT = fixedRefusal('INVALID_BODY', 'The body must be a JSON object.');
const NOT_OBJECTS = fixedRefusal('INVALID_BODY', 'The body must be a JSON object or an array of objects.');

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
export function bodyPolicyStage(route: Pick<RouteConfig, 'events' | 'profileAttributes'>, opts: BodyPolicyOptions): KeyStage {
  const field = route.events?.field ?? null;
  const attributes = route.profileAttributes;
  const tooLarge = fixedRefusal('BODY_TOO_LARGE', `The body is over ${opts.maxBodyBytes} bytes.`);

  const check = (ctx: AdmittedContext, bytes: Buffer): StageResult => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      return NOT_UTF8;
    }
    const parsed = parseStrictJson(text);
    if (!parsed.ok) return refusal('INVALID_BODY', parsed.message);
    const policy = ctx.policy;
    const body = parsed.value;
    if (field !== null) {
      const result = checkEvents(policy, body, field, attributes);
      if (result !== null) return result;
    }
    if (attributes) return checkAttributes(policy, body);
    return null;
  };

  const stage: KeyStage = (ctx) => {
    const { scan } = ctx;
    if (scan.contentTypes > 1) {
      return TWO_CONTENT_TYPES;
    }
    if (!isJsonContentType(scan.contentType ?? undefined)) {
      return isJsonWithForeignCharset(scan.contentType ?? undefined) ? FOREIGN_CHARSET : NOT_JSON;
    }
    if (scan.contentEncoding !== null && !IDENTITY.test(scan.contentEncoding)) {
      return ENCODED;
    }
    if (!scan.hasBody) {
      return NO_BODY;
    }
    return readBody(ctx.req, opts.maxBodyBytes, opts.requestTimeoutMs - (Date.now() - ctx.now)).then((bytes) => {
      if (bytes === 'too-large') return tooLarge;
      if (bytes === 'timeout') return 'REQUEST_TIMEOUT';
      ctx.body = bytes;
      return check(ctx, bytes);
    });
  };
  BODY_STAGES.add(stage);
  return stage;
}

const BODY_STAGES = new WeakSet<KeyStage>();
/** Whether `stage` is a body policy stage (forward-auth decisions, which never see the body, may leave it out). */
export function readsBody(stage: KeyStage): boolean {
  return BODY_STAGES.has(stage);
}

/** The event at `field` of the body, or of each element of a batch; the denylist wins. */
function checkEvents( policy: CompiledPolicy, body: unknown, field: string, objectOnly: boolean): StageResult {
  const batch = Array.isArray(body);
  if (batch ? objectOnly : !isJsonObject(body)) return objectOnly ? NOT_AN_OBJECT : NOT_OBJECTS;
  const items = batch ? body : [body];
  const names: string[] = [];
  for (let k = 0; k < items.length; k++) {
    const item = items[k];
    const where = batch ? `Element ${k} of the batch` : 'The body';
    if (!isJsonObject(item)) {
      return refusal('INVALID_BODY', `${where} is not a JSON object.`);
    }
    const name = ownMember(item, field);
    if (typeof name !== 'string') {
      return refusal('INVALID_BODY', `${where} has no string at ${quote(field)}.`);
    }
    names.push(name);
  }
  const { eventAllowed, eventDenied } = policy;
  if (eventAllowed === null && eventDenied === null) return null;
  for (const name of names) {
    if ((eventDenied !== null && eventDenied(name)) || (eventAllowed !== null && !eventAllowed(name))) {
      return refusal('EVENT_NOT_ALLOWED', `The API key may not send the event ${quote(name)}.`);
    }
  }
  return null;
}

/** Every top-level key of the body must be on the key's attribute allowlist, when it has one. */
function checkAttributes( policy: CompiledPolicy, body: unknown): StageResult {
  if (!isJsonObject(body)) return NOT_AN_OBJECT;
  const allowed = policy.attributeAllowed;
  if (allowed === null) return null;
  for (const name of Object.keys(body)) {
    if (!allowed(name)) {
      return refusal('ATTRIBUTE_NOT_ALLOWED', `The API key may not modify the attribute ${quote(name)}.`);
    }
  }
  return null;
}
