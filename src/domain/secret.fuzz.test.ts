import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyCodeUnit, fuzz, hostileString } from '../../test/support/fuzz.js';
import { checkSecretFormat, generateSecret, safeEqual, SECRET_LENGTH } from './secret.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const environment = fc.constantFrom('live' as const, 'test' as const);

describe('secret format (property-based)', () => {
  it('answers any string with an environment or null, never an exception', () => {
    const candidate = fc.oneof(
      hostileString('kg_livetest' + BASE62.slice(0, 12), SECRET_LENGTH + 2),
      fc.string({ unit: anyCodeUnit, minLength: SECRET_LENGTH, maxLength: SECRET_LENGTH }),
      fc.tuple(environment, fc.string({ unit: anyCodeUnit, minLength: 31, maxLength: 31 })).map(([env, rest]) => `kg_${env}_${rest}`),
    );
    fc.assert(fc.property(candidate, (s) => {
      expect([null, 'live', 'test']).toContain(checkSecretFormat(s));
    }), fuzz(1000));
  });

  it('accepts every generated secret with its environment, and refuses it after any one-character change', () => {
    fc.assert(fc.property(environment, fc.nat(), fc.string({ unit: anyCodeUnit, minLength: 1, maxLength: 1 }), (env, at, replacement) => {
      const { secret } = generateSecret(env);
      expect(checkSecretFormat(secret)).toBe(env);
      const i = at % secret.length;
      fc.pre(secret[i] !== replacement);
      const changed = secret.slice(0, i) + replacement + secret.slice(i + 1);
      expect(checkSecretFormat(changed)).toBeNull();
    }), fuzz(1000));
  });

  it('compares any two strings exactly as === does, lone surrogates and U+FFFD included (regression)', () => {
    // A small alphabet, so equal and nearly equal pairs are common; lone surrogates are in it
    // because a JSON body or a config file can carry them ("\ud800").
    const text = fc.string({ unit: fc.constantFrom('a', '\u00e9', '\ud800', '\udc00', '\ufffd'), maxLength: 4 });
    fc.assert(fc.property(text, text, fc.boolean(), (a, b, same) => {
      const other = same ? a : b;
      expect(safeEqual(a, other)).toBe(a === other);
    }), fuzz(1000));
  });
});
