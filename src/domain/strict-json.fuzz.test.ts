import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyCodeUnit, fuzz } from '../../test/support/fuzz.js';
import { parseJsonBody } from './json-body.js';
import { parseStrictJson } from './strict-json.js';

/** Keys include the names that trip naive object handling. */
const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'a\\', '"', ':', '\\":', '\u2028', '') },
);
const scalar = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ unit: 'grapheme', maxLength: 8 }), fc.string({ unit: anyCodeUnit, maxLength: 4 }), fc.constantFrom('":', '\\', '\\":1', '"a":'),
);
/** JSON values without duplicate keys (an object built from entries keeps the last of equal keys). */
const { value: jsonValue } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }).map((entries) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  }),
}));

/** A printer with choices (whitespace, \u escapes) drawn from a stream of numbers. */
function print(v: unknown, choice: () => number): string {
  const ws = (): string => ['', ' ', '\n', '\t ', '\r\n'][choice() % 5]!;
  const str = (s: string): string => {
    let out = '"';
    for (const ch of s) {
      for (let i = 0; i < ch.length; i++) {
        const hex = ch.charCodeAt(i).toString(16).padStart(4, '0');
        // JSON.stringify escapes control characters and lone surrogates itself.
        out += choice() % 4 === 0 ? `\\u${choice() % 2 === 0 ? hex : hex.toUpperCase()}` : JSON.stringify(ch[i]!).slice(1, -1);
      }
    }
    return `${out}"`;
  };
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return ws() + JSON.stringify(v) + ws();
  if (typeof v === 'string') return ws() + str(v) + ws();
  if (Array.isArray(v)) return `${ws()}[${v.length === 0 ? ws() : v.map((x) => print(x, choice)).join(',')}]${ws()}`;
  const entries = Object.entries(v as Record<string, unknown>);
  return `${ws()}{${entries.length === 0 ? ws() : entries.map(([k, x]) => `${ws()}${str(k)}${ws()}:${print(x, choice)}`).join(',')}}${ws()}`;
}
const printed = fc.tuple(jsonValue, fc.array(fc.nat(), { minLength: 1, maxLength: 16 })).map(([v, picks]) => {
  let n = 0;
  return print(v, () => picks[n++ % picks.length]!);
});

/** The same value whatever the prototype: own keys in order, recursively. */
const canonical = (v: unknown): string => JSON.stringify(v);

describe('strict JSON reader (property-based)', () => {
  it('agrees with JSON.parse on every valid document without duplicate keys, however it is printed', () => {
    fc.assert(fc.property(printed, (text) => {
      const expected = JSON.parse(text) as unknown;
      const got = parseStrictJson(text);
      expect(got.ok, text).toBe(true);
      if (got.ok) expect(canonical(got.value)).toBe(canonical(expected));
    }), fuzz(600));
  });

  it('refuses every text JSON.parse refuses, and agrees with it on every text it accepts', () => {
    const piece = fc.oneof(
      fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', '"a"', '1', '-', '0', '.5', 'e', 'true', 'nul', ' ', '\u0000', '\\u12', '\\ud800', '"\\"', '01'),
      anyCodeUnit,
    );
    const mutated = fc.tuple(printed, fc.nat(), fc.nat(3), fc.array(piece, { maxLength: 3 })).map(([t, at, drop, ins]) => {
      const i = at % (t.length + 1);
      return t.slice(0, i) + ins.join('') + t.slice(i + drop);
    });
    fc.assert(fc.property(fc.oneof(mutated, fc.array(piece, { maxLength: 12 }).map((p) => p.join(''))), (text) => {
      let expected: { ok: true; value: unknown } | { ok: false };
      try {
        expected = { ok: true, value: JSON.parse(text) as unknown };
      } catch {
        expected = { ok: false };
      }
      const got = parseStrictJson(text);
      if (!expected.ok) expect(got.ok, text).toBe(false);
      if (got.ok) {
        expect(expected.ok, text).toBe(true);
        if (expected.ok) expect(canonical(got.value)).toBe(canonical(expected.value));
      } else {
        expect(got.message).toMatch(/^The body is not valid JSON: /);
      }
    }), fuzz(1000));
  });

  it('refuses an object with two equal keys however they are spelt (escapes included), at any depth', () => {
    const spellings = (k: string): fc.Arbitrary<string> => fc.array(fc.boolean(), { minLength: k.length, maxLength: k.length }).map((esc) =>
      `"${[...k].map((c, i) => (esc[i] || c.charCodeAt(0) < 0x20 || c === '"' || c === '\\' ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)).join('')}"`);
    const doc = fc.tuple(key.filter((k) => [...k].length === k.length), printed, printed, fc.array(fc.tuple(key, printed), { maxLength: 3 }), fc.nat(3), fc.boolean())
      .chain(([k, a, b, others, depth, asArray]) => fc.tuple(spellings(k), spellings(k)).map(([s1, s2]) => {
        const members = others.filter(([o]) => o !== k).map(([o, v]) => `${JSON.stringify(o)}:${v}`);
        let text = `{${[`${s1}:${a}`, ...members, `${s2}:${b}`].join(',')}}`;
        for (let d = 0; d < depth; d++) text = asArray ? `[1,${text}]` : `{"x${d}":${text}}`;
        return text;
      }));
    fc.assert(fc.property(doc, (text) => {
      const got = parseStrictJson(text);
      expect(got.ok, text).toBe(false);
      if (!got.ok) expect(got.message).toMatch(/duplicate key/);
    }), fuzz(500));
  });

  it('refuses nesting deeper than the limit and accepts it up to the limit', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 80 }), fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }), (depth, kinds) => {
      let text = '0';
      for (let d = 0; d < depth; d++) text = kinds[d] ? `[${text}]` : `{"k":${text}}`;
      expect(parseStrictJson(text).ok).toBe(depth <= 64);
    }), fuzz(300));
  });
});

describe('JSON bodies as bytes (property-based)', () => {
  it('answers any bytes with a value or a message, accepting exactly valid UTF-8 that JSON.parse accepts', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 30 }),
      printed.map((t) => new Uint8Array(Buffer.from(t, 'utf8'))),
      fc.tuple(printed, fc.uint8Array({ minLength: 1, maxLength: 3 }), fc.nat()).map(([t, b, at]) => {
        const buf = Buffer.from(t, 'utf8');
        const i = at % (buf.length + 1);
        return new Uint8Array(Buffer.concat([buf.subarray(0, i), b, buf.subarray(i)]));
      }),
    );
    fc.assert(fc.property(bytes, (b) => {
      const text = Buffer.from(b).toString('utf8');
      const isUtf8 = Buffer.from(text, 'utf8').equals(Buffer.from(b));
      let parses = true;
      try { JSON.parse(text); } catch { parses = false; }
      expect(parseJsonBody(b).ok).toBe(isUtf8 && parses);
    }), fuzz(600));
  });
});
