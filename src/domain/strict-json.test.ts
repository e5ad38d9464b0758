import { describe, expect, it } from 'vitest';
import { isJsonObject, ownMember, parseStrictJson } from './strict-json.js';

/** The parsed value, failing the test with the parser's message when it refused. */
function parsed(text: string): unknown {
  const r = parseStrictJson(text);
  if (!r.ok) throw new Error(`refused ${JSON.stringify(text.slice(0, 200))}: ${r.message}`);
  return r.value;
}

/** The refusal message, failing the test when the text was accepted. */
function refused(text: string, maxDepth?: number): string {
  const r = maxDepth === undefined ? parseStrictJson(text) : parseStrictJson(text, maxDepth);
  if (r.ok) throw new Error(`accepted ${JSON.stringify(text.slice(0, 200))} as ${JSON.stringify(r.value)}`);
  expect(typeof r.message).toBe('string');
  expect(r.message.length).toBeGreaterThan(0);
  return r.message;
}

const nestedArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
const nestedObjects = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

describe('parseStrictJson: valid JSON parses as JSON.parse does', () => {
  const cases: Array<[string, string]> = [
    ['an empty object', '{}'],
    ['an empty array', '[]'],
    ['an object', '{"a":1,"b":"two","c":true,"d":false,"e":null,"f":[1,2],"g":{"h":{}}}'],
    ['an array of every kind', '[1,"s",true,false,null,[],{},[[]],{"x":[{}]}]'],
    ['true', 'true'],
    ['false', 'false'],
    ['null', 'null'],
    ['a string', '"hello"'],
    ['an empty string', '""'],
    ['zero', '0'],
    ['a negative integer', '-42'],
    ['a fraction', '3.14159'],
    ['a negative fraction', '-0.5'],
    ['an exponent', '1e10'],
    ['an upper-case exponent with a sign', '2.5E+3'],
    ['a negative exponent', '-1.25e-7'],
    ['zero with an exponent', '0e0'],
    ['a number past double precision', '12345678901234567890123'],
    ['a number too large for a double', '1e400'],
    ['the smallest subnormal', '5e-324'],
    ['every simple escape', '"\\"\\\\\\/\\b\\f\\n\\r\\t"'],
    ['a unicode escape', '"\\u0041\\u00e9\\u4e2d"'],
    ['upper- and lower-case hex digits in an escape', '"\\u00E9\\u00e9\\uABCD\\uabcd"'],
    ['a surrogate pair as escapes', '"\\ud83d\\ude00"'],
    ['a lone surrogate escape', '"\\ud800"'],
    ['an escaped NUL', '"a\\u0000b"'],
    ['raw non-ASCII text', '"ü ✓ 中文 😀"'],
    ['U+2028 and U+2029 raw in a string', '"\u2028\u2029"'],
    ['DEL raw in a string', '"\u007f"'],
    ['escapes mixed with raw text', '"pre\\tfix\\u0020mid\\"dle\\\\end"'],
    ['whitespace everywhere', ' \t\r\n{ \t"a" \r\n:\n [ 1 ,\t2 ] , "b"\r:\t{ } }\n\t '],
    ['whitespace around a scalar', '\n\n  17  \r\n'],
    ['an escaped key', '{"\\u0061ction":"x"}'],
    ['equal keys in different objects', '{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}'],
  ];
  for (const [what, text] of cases) {
    it(`parses ${what}`, () => {
      expect(parsed(text)).toEqual(JSON.parse(text));
    });
  }

  it('parses -0 as negative zero, like JSON.parse', () => {
    expect(Object.is(parsed('-0'), -0)).toBe(true);
  });

  it('keeps a surrogate pair written as escapes as one astral character', () => {
    expect(parsed('"\\ud83d\\ude00"')).toBe('😀');
  });

  it('decodes a key written with escapes, so it names the same property', () => {
    const v = parsed('{"\\u0061ction":"page.view"}') as Record<string, unknown>;
    expect(Object.keys(v)).toEqual(['action']);
    expect(v.action).toBe('page.view');
  });

  it('keeps the order of keys', () => {
    expect(Object.keys(parsed('{"z":1,"a":2,"m":3}') as object)).toEqual(['z', 'a', 'm']);
  });

  it('parses a long flat array (length is not depth)', () => {
    const text = `[${Array.from({ length: 100_000 }, (_, i) => i).join(',')}]`;
    const v = parsed(text) as number[];
    expect(v).toHaveLength(100_000);
    expect(v[99_999]).toBe(99_999);
  });

  it('parses a long string', () => {
    const s = 'x'.repeat(500_000);
    expect(parsed(JSON.stringify(s))).toBe(s);
  });
});

describe('parseStrictJson: invalid JSON is refused with a message, never thrown', () => {
  const cases: Array<[string, string]> = [
    ['empty text', ''],
    ['only whitespace', ' \n\t '],
    ['a trailing comma in an object', '{"a":1,}'],
    ['a trailing comma in an array', '[1,2,]'],
    ['a leading comma in an array', '[,1]'],
    ['a lone comma in an object', '{,}'],
    ['two commas', '[1,,2]'],
    ['a missing comma', '[1 2]'],
    ['a missing colon', '{"a" 1}'],
    ['a missing value', '{"a":}'],
    ['an unquoted key', '{a:1}'],
    ['a number as a key', '{1:1}'],
    ['single-quoted strings', "{'a':'b'}"],
    ['a single-quoted scalar', "'a'"],
    ['a leading zero', '01'],
    ['a negative leading zero', '-01'],
    ['a leading zero in an array', '[00]'],
    ['a lone minus', '-'],
    ['a plus sign', '+1'],
    ['a fraction without an integer part', '.5'],
    ['a fraction without digits', '1.'],
    ['an exponent without digits', '1e'],
    ['an exponent with only a sign', '1e+'],
    ['a hexadecimal number', '0x10'],
    ['NaN', 'NaN'],
    ['Infinity', 'Infinity'],
    ['-Infinity', '-Infinity'],
    ['a bare word', 'hello'],
    ['undefined', 'undefined'],
    ['a capitalised literal', 'True'],
    ['a truncated literal', 'tru'],
    ['a truncated null', 'nul'],
    ['a literal followed by letters', 'truex'],
    ['an unterminated string', '"abc'],
    ['an unterminated string ending in a backslash', '"abc\\'],
    ['an escaped closing quote leaving the string open', '"abc\\"'],
    ['an unterminated key', '{"a'],
    ['an unterminated object', '{"a":1'],
    ['an unterminated array', '[1,2'],
    ['a raw newline in a string', '"a\nb"'],
    ['a raw tab in a string', '"a\tb"'],
    ['a raw NUL in a string', '"a\u0000b"'],
    ['a raw carriage return in a key', '{"a\rb":1}'],
    ['a raw control character in a string', '"\u001f"'],
    ['an unknown escape', '"\\x41"'],
    ['an escaped single quote', '"\\\'"'],
    ['a short unicode escape', '"\\u12"'],
    ['a unicode escape with a non-hex digit', '"\\u12G4"'],
    ['an escaped raw newline', '"\\\n"'],
    ['trailing garbage after an object', '{"a":1}x'],
    ['a second value', '{} {}'],
    ['a second scalar', '1 2'],
    ['an extra closing bracket', '[]]'],
    ['an extra closing brace', '{}}'],
    ['a mismatched bracket', '[1}'],
    ['a mismatched brace', '{"a":1]'],
    ['text after a string', '""x'],
    ['a comment', '/* c */ {}'],
    ['a line comment after the value', '{"a":1} // c'],
    ['a byte order mark', '\ufeff{}'],
    ['a non-breaking space as whitespace', '\u00a0{}'],
    ['a vertical tab as whitespace', '\u000b{}'],
    ['a form feed as whitespace', '\f{}'],
  ];
  for (const [what, text] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => JSON.parse(text), 'JSON.parse agrees it is invalid').toThrow();
      refused(text);
    });
  }

  it('says where the problem is', () => {
    expect(refused('[1,2,]')).toMatch(/position \d+/);
    expect(refused('{"a":1')).toMatch(/end/);
  });
});

describe('parseStrictJson: duplicate keys', () => {
  const cases: Array<[string, string]> = [
    ['at the top level', '{"action":"denied","action":"ok"}'],
    ['with equal values', '{"a":1,"a":1}'],
    ['not adjacent', '{"a":1,"b":2,"a":3}'],
    ['in a nested object', '{"x":{"a":1,"a":2}}'],
    ['deep inside arrays and objects', '[1,{"x":[{"y":{"z":1,"z":2}}]}]'],
    ['in one element of a batch', '[{"action":"a"},{"action":"b","action":"c"}]'],
    ['the empty key twice', '{"":1,"":2}'],
    ['spelled with a unicode escape', '{"action":1,"\\u0061ction":2}'],
    ['spelled with an escape first', '{"\\u0061ction":1,"action":2}'],
    ['both spelled with different escapes', '{"\\u0061ction":1,"\\u0061\\u0063tion":2}'],
    ['spelled with an upper-case hex escape', '{"é":1,"\\u00E9":2}'],
    ['spelled with a simple escape', '{"a/b":1,"a\\/b":2}'],
    ['spelled as a surrogate pair', '{"😀":1,"\\ud83d\\ude00":2}'],
    ['named like an Object.prototype member', '{"toString":1,"toString":2}'],
    ['named __proto__', '{"__proto__":1,"__proto__":2}'],
  ];
  for (const [what, text] of cases) {
    it(`refuses a duplicate key ${what}`, () => {
      expect(refused(text)).toMatch(/duplicate key/);
    });
  }

  it('names the duplicate key as decoded', () => {
    expect(refused('{"action":1,"\\u0061ction":2}')).toContain('"action"');
  });

  it('cuts a very long duplicate key short in the message', () => {
    const key = 'k'.repeat(10_000);
    const message = refused(`{"${key}":1,"${key}":2}`);
    expect(message.length).toBeLessThan(400);
  });

  it('does not take keys named like Object.prototype members for duplicates', () => {
    const text = '{"toString":1,"constructor":2,"hasOwnProperty":3,"valueOf":4,"__defineGetter__":5}';
    expect(parsed(text)).toEqual(JSON.parse(text));
  });
});

describe('parseStrictJson: __proto__ is an ordinary key', () => {
  it('keeps "__proto__" as an own key and does not change the prototype', () => {
    const v = parsed('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>;
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(Object.keys(v)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual({ polluted: true });
    expect((v as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(v)).not.toEqual({ polluted: true });
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect((Object.prototype as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('keeps "__proto__" spelled with escapes as the same ordinary key', () => {
    const v = parsed('{"\\u005f_proto__":[1]}') as Record<string, unknown>;
    expect(Object.hasOwn(v, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual([1]);
    expect(Array.isArray(Object.getPrototypeOf(v))).toBe(false);
  });

  it('does not pollute a prototype through a nested "__proto__"', () => {
    parsed('{"a":{"__proto__":{"polluted":1}},"b":[{"__proto__":{"polluted":2}}]}');
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('reads members as own members only, so a key named "toString" is there only when the body has it', () => {
    const v = parsed('{"a":1}') as Record<string, unknown>;
    expect(ownMember(v, 'toString')).toBeUndefined();
    expect(ownMember(v, 'constructor')).toBeUndefined();
    expect(ownMember(v, '__proto__')).toBeUndefined();
    expect(ownMember(parsed('{"toString":"x"}') as Record<string, unknown>, 'toString')).toBe('x');
    expect(isJsonObject(v)).toBe(true);
  });

  it('answers the same through the fast and the careful path (a duplicate deep inside sends a body down the careful one)', () => {
    const body = JSON.stringify({ events: [{ action: 'a', n: 1 }, { action: 'b', props: { x: 'y:"z"', '\\"': 2 } }] });
    expect(parsed(body)).toEqual(JSON.parse(body));
    expect(refused(body.replace('"n":1', '"n":1,"n":2'))).toContain('duplicate key "n"');
    // A ":" inside string values is not a property name, nor an escaped quote before one.
    expect(parsed('["a:", "b" , ":", {"k":":"}]')).toEqual(['a:', 'b', ':', { k: ':' }]);
    const tricky = String.raw`{"a\\" : 1, "b": "x\": y", "c\\\\": "\\\":", "d" :"\"" }`;
    expect(parsed(tricky)).toEqual(JSON.parse(tricky));
    expect(refused(String.raw`{"a\\":1,"a\u005c":2}`)).toContain('duplicate key');
  });
});

describe('parseStrictJson: nesting depth', () => {
  it('accepts 64 nested arrays', () => {
    expect(parsed(nestedArrays(64))).toEqual(JSON.parse(nestedArrays(64)));
  });

  it('refuses 65 nested arrays', () => {
    expect(refused(nestedArrays(65))).toMatch(/nesting deeper than 64/);
  });

  it('accepts 64 nested objects and refuses 65', () => {
    expect(parsed(nestedObjects(64))).toEqual(JSON.parse(nestedObjects(64)));
    expect(refused(nestedObjects(65))).toMatch(/nesting deeper than 64/);
  });

  it('counts arrays and objects together', () => {
    const mixed = (depth: number): string => {
      let open = '';
      let close = '';
      for (let d = 0; d < depth; d++) {
        if (d % 2 === 0) { open += '['; close = `]${close}`; } else { open += '{"k":'; close = `}${close}`; }
      }
      return `${open}0${close}`;
    };
    const ok = mixed(64);
    expect(parsed(ok)).toEqual(JSON.parse(ok));
    refused(mixed(65));
  });

  it('does not count scalars, and counts depth, not the number of containers', () => {
    const wide = `[${Array.from({ length: 1000 }, () => nestedArrays(63)).join(',')}]`;
    expect((parsed(wide) as unknown[]).length).toBe(1000);
  });

  it('honours a smaller limit given by the caller', () => {
    expect(parsed(nestedArrays(2))).toEqual([[]]);
    expect(parseStrictJson(nestedArrays(2), 2).ok).toBe(true);
    refused(nestedArrays(3), 2);
  });

  it('refuses 100 000 nested "[" quickly, without a stack overflow', () => {
    const text = '['.repeat(100_000);
    const t0 = performance.now();
    const r = parseStrictJson(text);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(r.ok).toBe(false);
  });

  it('refuses 100 000 balanced nested arrays and objects quickly, without a stack overflow', () => {
    for (const text of [nestedArrays(100_000), nestedObjects(100_000), '[{"a":'.repeat(50_000)]) {
      const t0 = performance.now();
      expect(() => parseStrictJson(text)).not.toThrow();
      expect(parseStrictJson(text).ok).toBe(false);
      expect(performance.now() - t0).toBeLessThan(400);
    }
  });
});

// A small deterministic generator (mulberry32): the same values on every run.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHAR_POOL = [
  'a', 'b', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0000', '\u0001', '\u001f', '\u007f',
  'é', 'ü', '中', '\u2028', '\u2029', '😀', '𝄞', '\ud800', '\udfff', '\ufeff', '\uffff', '{', '}', '[', ']', ':', ',',
];

function randomString(r: () => number): string {
  const n = Math.floor(r() * 8);
  let s = '';
  for (let k = 0; k < n; k++) s += CHAR_POOL[Math.floor(r() * CHAR_POOL.length)]!;
  return s;
}

function randomNumber(r: () => number): number {
  switch (Math.floor(r() * 7)) {
    case 0: return Math.floor(r() * 1000);
    case 1: return -Math.floor(r() * 1e9) - 1;
    case 2: return (r() - 0.5) * 1e6;
    case 3: return r() * 1e300;
    case 4: return r() * 1e-300;
    case 5: return [Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.1, 1e21, 1e-7][Math.floor(r() * 7)]!;
    default: return Math.floor((r() - 0.5) * 2 ** 53);
  }
}

function randomValue(r: () => number, depth: number): unknown {
  const kind = Math.floor(r() * (depth >= 6 ? 5 : 7));
  switch (kind) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return randomNumber(r);
    case 3:
    case 4: return randomString(r);
    case 5: return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
    default: {
      // Built without a prototype, so a generated "__proto__" key is an ordinary key here too.
      const o = Object.create(null) as Record<string, unknown>;
      const n = Math.floor(r() * 5);
      for (let k = 0; k < n; k++) o[r() < 0.1 ? '__proto__' : randomString(r)] = randomValue(r, depth + 1);
      return o;
    }
  }
}

describe('parseStrictJson: generated values', () => {
  it('parses 2000 generated values, serialised by JSON.stringify, back to equal values', () => {
    const r = rng(0x5eed);
    for (let k = 0; k < 2000; k++) {
      const value = randomValue(r, 0);
      const indent = [undefined, 0, 1, 2, '\t', 4][k % 6];
      const text = JSON.stringify(value, null, indent);
      const got = parseStrictJson(text);
      expect(got.ok, text).toBe(true);
      if (got.ok) {
        expect(got.value, text).toEqual(value);
        expect(got.value, text).toEqual(JSON.parse(text));
      }
    }
  });

  it('agrees with JSON.parse on 5000 mutated texts, refusing more only for duplicate keys or depth', () => {
    const r = rng(0xbad5eed);
    const alphabet = ['"', '\\', ',', ':', '[', ']', '{', '}', ' ', '0', '1', '-', '.', 'e', 'u', 'a', 't', 'n', '\n', '\u0001'];
    let agreedValid = 0;
    for (let k = 0; k < 5000; k++) {
      const base = JSON.stringify(randomValue(r, 0));
      const at = Math.floor(r() * (base.length + 1));
      const op = Math.floor(r() * 3);
      const ch = alphabet[Math.floor(r() * alphabet.length)]!;
      const text = op === 0 ? base.slice(0, at) + base.slice(at + 1)
        : op === 1 ? base.slice(0, at) + ch + base.slice(at)
          : base.slice(0, at) + ch + base.slice(at + 1);
      let expected: { ok: true; value: unknown } | { ok: false };
      try {
        expected = { ok: true, value: JSON.parse(text) as unknown };
      } catch {
        expected = { ok: false };
      }
      const got = parseStrictJson(text);
      if (!expected.ok) {
        expect(got.ok, `accepted invalid JSON ${JSON.stringify(text)}`).toBe(false);
      } else if (got.ok) {
        agreedValid++;
        expect(got.value, text).toEqual(expected.value);
      } else {
        expect(got.message, text).toMatch(/duplicate key|nesting deeper/);
      }
    }
    expect(agreedValid).toBeGreaterThan(100);
  });
});
