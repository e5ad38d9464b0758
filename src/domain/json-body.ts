// JSON request bodies, as both ports read them: the media type, and strict UTF-8 then strict
// JSON (a duplicate key, compared after unescaping, is refused rather than the last one kept).

import { parseStrictJson } from './strict-json.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** The forms nearly every client sends, accepted without reading parameters. */
const COMMON_JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8',
  'application/json; charset=UTF-8', 'application/json;charset=UTF-8']);
/** One `; name=value` parameter (RFC 9110 §5.6.6): a token, or a quoted-string. */
const PARAMETER = /\s*;\s*(?:([!#$%&'*+.^_`|~0-9A-Za-z-]+)=([!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[^"\\]|\\.)*"))?/y;

/** Explains a refused JSON charset; the bodies read here are UTF-8, and nothing else. */
export const CHARSET_MESSAGE = 'The body must be UTF-8: a Content-Type charset other than utf-8 is refused.';

/**
 * Whether the parameters of a JSON media type (the text after its subtype) are well formed
 * and name no charset but utf-8: a body declared in another charset (utf-7, utf-16, ibm037…)
 * would be checked as UTF-8 here and read as something else by a recipient that honours it.
 */
function utf8Parameters(type: string, from: number): boolean {
  PARAMETER.lastIndex = from;
  let at = from;
  for (;;) {
    const m = PARAMETER.exec(type);
    if (m === null || m[0] === '') break;
    at = PARAMETER.lastIndex;
    if (m[1] === undefined) continue;
    const quoted = m[2]!.startsWith('"');
    const value = quoted ? m[2]!.slice(1, -1).replace(/\\(.)/g, '$1') : m[2]!;
    if (m[1].toLowerCase() === 'charset' ? value.toLowerCase() !== 'utf-8' : quoted && /charset/i.test(value)) return false;
  }
  // A quoted value naming a charset, or anything left that is not a parameter, could read as
  // a charset to a looser parser than this one: refused.
  return type.slice(at).trim() === '';
}

/**
 * `application/json`, `application/<x>+json`, with or without parameters, as long as any
 * charset parameter is `utf-8` (in any case, quoted or not).
 */
export function isJsonContentType(type: string | undefined): boolean {
  if (type === undefined) return false;
  if (COMMON_JSON_TYPES.has(type)) return true;
  const m = JSON_TYPE.exec(type);
  if (m === null) return false;
  const end = m[0].endsWith(';') ? m[0].length - 1 : m[0].length;
  return end === type.length || utf8Parameters(type, end);
}

/** A JSON media type refused only for its charset (or unreadable parameters): worth its own message. */
export function isJsonWithForeignCharset(type: string | undefined): boolean {
  return type !== undefined && JSON_TYPE.test(type) && !isJsonContentType(type);
}

export type ParsedBody = { ok: true; value: unknown } | { ok: false; message: string };

/** Invalid UTF-8 is refused rather than replaced, and duplicate keys too, so what is checked is what was sent. */
export function parseJsonBody(bytes: Uint8Array): ParsedBody {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, message: 'The body is not valid UTF-8.' };
  }
  return parseStrictJson(text);
}
