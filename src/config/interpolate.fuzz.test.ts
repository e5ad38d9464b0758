import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyCodeUnit, fuzz, hostileString } from '../../test/support/fuzz.js';
import { interpolate } from './interpolate.js';

const ENV = { HOST: 'db.internal', EMPTY: '', PORT: '6379', NESTED: '${HOST}', DOLLAR: '$${x}' };
const name = fc.constantFrom('HOST', 'EMPTY', 'PORT', 'NESTED', 'DOLLAR', 'MISSING', '_X1');
/** Text with the characters placeholders are made of, often. */
const text = hostileString('${}:-$A_', 24);
const noDollar = fc.string({ unit: anyCodeUnit, maxLength: 24 }).map((s) => s.replace(/\$/g, ''));

/** Config-shaped values: nested objects (with awkward keys) and arrays of strings, numbers, booleans, null. */
const configValue = (leaf: fc.Arbitrary<string>): fc.Arbitrary<unknown> => fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, fc.integer(), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 3 }),
  object: fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 5 }), fc.constantFrom('__proto__', 'constructor', 'toString')), tie('value')), { maxLength: 3 }).map((entries) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  }),
})).value;

/** Own enumerable keys and values, recursively, whatever the prototype. */
const shape = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v;
};

describe('config interpolation (property-based)', () => {
  it('answers any string with a value or an error naming its path, never an exception', () => {
    fc.assert(fc.property(text, (s) => {
      const { value, errors } = interpolate({ a: [s] }, ENV);
      if (errors.length > 0) expect(errors).toEqual(['a[0]: malformed ${...} placeholder']);
      else expect(typeof (value as { a: string[] }).a[0]).toBe('string');
    }), fuzz(1000));
  });

  it('leaves any value with no "$" in it exactly as it was, own keys such as "__proto__" included (regression)', () => {
    fc.assert(fc.property(configValue(noDollar), (v) => {
      const { value, errors } = interpolate(v, ENV);
      expect(errors).toEqual([]);
      expect(shape(value)).toEqual(shape(v));
    }), fuzz(1000));
  });

  it('round-trips any text whose "${" are written "$${" (regression)', () => {
    fc.assert(fc.property(text, (s) => {
      const { value, errors } = interpolate(s.split('${').join('$${'), ENV);
      expect(errors).toEqual([]);
      expect(value).toBe(s);
    }), fuzz(1000));
  });

  it('replaces ${NAME} and ${NAME:-default} by the variable, or the default when it is unset or empty, and never re-reads what it inserted', () => {
    const fallback = fc.option(fc.string({ unit: anyCodeUnit, maxLength: 8 }).map((d) => d.replace(/[}$]/g, '')));
    fc.assert(fc.property(noDollar, name, fallback, noDollar, (before, n, d, after) => {
      const placeholder = d === null ? `\${${n}}` : `\${${n}:-${d}}`;
      const { value, errors } = interpolate(`${before}${placeholder}${after}`, ENV);
      expect(errors).toEqual([]);
      const env = (ENV as Record<string, string | undefined>)[n];
      expect(value).toBe(before + (env !== undefined && env !== '' ? env : d ?? '') + after);
    }), fuzz(1000));
  });
});
