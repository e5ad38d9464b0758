import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonContentType, isJsonWithForeignCharset } from './json-body.js';

describe('isJsonContentType', () => {
  it('accepts JSON media types without a charset or with charset utf-8 in any case, quoted or not', () => {
    for (const type of [
      'application/json', 'application/json;', 'Application/JSON', 'application/vnd.x+json', 'application/json; charset=utf-8',
      'application/json;charset=UTF-8', 'application/json; charset="utf-8"', 'application/json ; CHARSET="Utf-8"',
      'application/merge-patch+json; charset=UTF-8', 'application/json; profile="https://example.com/s"; charset=utf-8',
      'application/json; charset=utf-8 ',
    ]) expect(isJsonContentType(type), type).toBe(true);
  });

  it('refuses a JSON media type whose charset is anything but utf-8 (utf-7, utf-16, UTF-16LE, ibm037, quoted or not) (regression)', () => {
    for (const type of [
      'application/json; charset=utf-7', 'application/json;charset=UTF-7', 'application/json; charset="utf-7"', 'application/json; charset=utf-16',
      'application/json; charset=UTF-16LE', 'application/json; charset=ibm037', 'application/vnd.x+json; Charset="IBM037"',
      'application/json; charset=utf8', 'application/json; charset=latin1', 'application/json; charset=""',
      'application/json; charset=utf-8; charset=utf-7', 'application/json; charset=utf-7; charset=utf-8',
    ]) {
      expect(isJsonContentType(type), type).toBe(false);
      expect(isJsonWithForeignCharset(type), type).toBe(true);
    }
  });

  it('refuses parameters it cannot read, and a quoted value naming a charset, which a looser parser could take for one', () => {
    for (const type of ['application/json; charset', 'application/json; charset =utf-8', 'application/json; x', 'application/json; a="b;charset=utf-7"', 'application/json; a="unterminated']) {
      expect(isJsonContentType(type), type).toBe(false);
    }
  });

  it('refuses media types that are not JSON, without calling them a charset problem', () => {
    for (const type of [undefined, '', 'text/plain', 'text/plain; charset=utf-7', 'application/jsonp', 'json', 'multipart/form-data; boundary=x']) {
      expect(isJsonContentType(type), String(type)).toBe(false);
      expect(isJsonWithForeignCharset(type), String(type)).toBe(false);
    }
  });

  it('refuses every charset token but utf-8, quoted or not, among any other parameters (property)', () => {
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/);
    const param = fc.tuple(token.filter((n) => n.toLowerCase() !== 'charset'), token);
    const charsets = fc.oneof(token, fc.constantFrom('utf-8', 'UTF-8', 'Utf-8', 'utf-7', 'utf8', 'utf-16le'));
    fc.assert(fc.property(charsets, fc.boolean(), fc.array(param, { maxLength: 3 }), fc.array(param, { maxLength: 3 }), (charset, quoted, before, after) => {
      const params = (ps: Array<[string, string]>): string => ps.map(([n, v]) => `; ${n}=${v}`).join('');
      const type = `application/json${params(before)}; charset=${quoted ? `"${charset}"` : charset}${params(after)}`;
      return isJsonContentType(type) === (charset.toLowerCase() === 'utf-8');
    }), { seed: 20261203, numRuns: 2_000 });
  });
});
