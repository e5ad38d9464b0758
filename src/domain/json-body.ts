// JSON request bodies, as both ports read them: the media type, and strict UTF-8 then strict
// JSON (a duplicate key, compared after unescaping, is refused rather than the last one kept).

import { parseStrictJson } from './strict-json.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** `application/json`, `application/<x>+json`, with or without parameters. */
export function isJsonContentType(type: string | undefined): boolean {
  return type !== undefined && JSON_TYPE.test(type);
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
