// A JSON parser for bodies a policy is checked against. JSON.parse keeps the last of two
// equal keys, so `{"action":"denied","action":"ok"}` would be checked as one thing and may be
// read as another upstream; this parser refuses duplicates (compared after unescaping), and
// refuses nesting past a depth limit before it can cost stack or memory.

export type StrictJson = { ok: true; value: unknown } | { ok: false; message: string };

/** A JSON object as parsed here: no prototype, so a "__proto__" key is an ordinary key. */
export type JsonObject = Record<string, unknown>;

class JsonError extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
/** What makes a string need the careful path: an escape, or a control character (an error). */
const SPECIAL = /[\\\u0000-\u001f]/;

export function parseStrictJson(text: string, maxDepth = 64): StrictJson {
  let i = 0;
  const n = text.length;

  const fail = (what: string): never => {
    throw new JsonError(i >= n ? `unexpected end of the body (${what})` : `${what} at position ${i}`);
  };

  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };

  const string = (): string => {
    const start = ++i; // past the opening quote
    const end = text.indexOf('"', start);
    if (end === -1) return fail('unterminated string');
    // Most strings have no escape: one native search finds the end, one native test checks it.
    const raw = text.slice(start, end);
    if (!SPECIAL.test(raw)) {
      i = end + 1;
      return raw;
    }
    let escaped = false;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        const rawEscaped = text.slice(start, i++);
        if (!escaped) return rawEscaped;
        try {
          return JSON.parse(`"${rawEscaped}"`) as string;
        } catch {
          i = start;
          return fail('invalid escape in a string');
        }
      }
      if (c === 0x5c) {
        escaped = true;
        i += 2;
        continue;
      }
      if (c < 0x20) return fail('unescaped control character in a string');
      i++;
    }
    return fail('unterminated string');
  };

  const value = (depth: number): unknown => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      if (depth >= maxDepth) return fail(`nesting deeper than ${maxDepth} levels`);
      return c === 0x7b ? object(depth + 1) : array(depth + 1);
    }
    if (c === 0x22) return string();
    if (text.startsWith('true', i)) { i += 4; return true; }
    if (text.startsWith('false', i)) { i += 5; return false; }
    if (text.startsWith('null', i)) { i += 4; return null; }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m === null || m[0].length === 0) return fail('unexpected character');
    i += m[0].length;
    return Number(m[0]);
  };

  const object = (depth: number): JsonObject => {
    i++; // {
    const out = Object.create(null) as JsonObject;
    ws();
    if (text.charCodeAt(i) === 0x7d) { i++; return out; }
    for (;;) {
      ws();
      if (text.charCodeAt(i) !== 0x22) return fail('expected a property name');
      const keyAt = i;
      const key = string();
      if (Object.hasOwn(out, key)) {
        i = keyAt;
        return fail(`duplicate key "${key.length > 100 ? `${key.slice(0, 100)}…` : key}"`);
      }
      ws();
      if (text.charCodeAt(i) !== 0x3a) return fail('expected ":"');
      i++;
      out[key] = value(depth);
      ws();
      const c = text.charCodeAt(i);
      if (c === 0x2c) { i++; continue; }
      if (c === 0x7d) { i++; return out; }
      return fail('expected "," or "}"');
    }
  };

  const array = (depth: number): unknown[] => {
    i++; // [
    const out: unknown[] = [];
    ws();
    if (text.charCodeAt(i) === 0x5d) { i++; return out; }
    for (;;) {
      out.push(value(depth));
      ws();
      const c = text.charCodeAt(i);
      if (c === 0x2c) { i++; continue; }
      if (c === 0x5d) { i++; return out; }
      return fail('expected "," or "]"');
    }
  };

  try {
    const result = value(0);
    ws();
    if (i < n) fail('unexpected data after the JSON value');
    return { ok: true, value: result };
  } catch (err) {
    if (err instanceof JsonError) return { ok: false, message: `The body is not valid JSON: ${err.message}.` };
    throw err;
  }
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
