// A JSON parser for bodies a policy is checked against. JSON.parse keeps the last of two
// equal keys, so `{"action":"denied","action":"ok"}` would be checked as one thing and may be
// read as another upstream; this parser refuses duplicates (compared after unescaping), and
// refuses nesting past a depth limit.
//
// The common case — a valid body without duplicates — is decided natively: JSON.parse, one
// regular-expression pass counting the property names in the text, and a walk counting the
// properties parsed (and the depth). A duplicate is the only way the two counts differ. Any
// body that fails that check goes through the parser below, which says what is wrong and where.

export type StrictJson = { ok: true; value: unknown } | { ok: false; message: string };

/**
 * A JSON object as parsed here. "__proto__" is an ordinary own key (JSON.parse defines, it
 * never assigns); read members with `ownMember`, so a name like "toString" is only ever the
 * body's own.
 */
export type JsonObject = Record<string, unknown>;

/** The body's own member `name`, never an inherited one. */
export function ownMember(obj: JsonObject, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

/**
 * In a valid JSON text an unescaped '"' followed by ':' (spaces between allowed) can only end
 * a property name: a string value is followed by ',', '}', ']' or the end, and a '"' inside a
 * string is escaped. Escaped means preceded by an odd run of backslashes.
 */
const PROPERTY_NAME_END = /(?<!\\)(?:\\\\)*"[ \t\n\r]*:/g;

function propertyNamesInText(text: string): number {
  return text.match(PROPERTY_NAME_END)?.length ?? 0;
}

/** Properties in a parsed value, or -1 when it nests deeper than `maxDepth`. */
function propertiesParsed(v: unknown, depthLeft: number): number {
  if (typeof v !== 'object' || v === null) return 0;
  if (depthLeft === 0) return -1;
  let count = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const c = propertiesParsed(v[i], depthLeft - 1);
      if (c < 0) return -1;
      count += c;
    }
    return count;
  }
  for (const key in v) {
    const c = propertiesParsed((v as JsonObject)[key], depthLeft - 1);
    if (c < 0) return -1;
    count += c + 1;
  }
  return count;
}

export function parseStrictJson(text: string, maxDepth = 64): StrictJson {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return parseCarefully(text, maxDepth);
  }
  const parsed = propertiesParsed(value, maxDepth);
  if (parsed >= 0 && parsed === propertyNamesInText(text)) return { ok: true, value };
  return parseCarefully(text, maxDepth);
}

class JsonError extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
/** What makes a string need the careful path: an escape, or a control character (an error). */
const SPECIAL = /[\\\u0000-\u001f]/;

/** The careful parser: the same answer for valid bodies, and a precise message for the rest. */
function parseCarefully(text: string, maxDepth: number): StrictJson {
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
