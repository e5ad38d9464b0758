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
});
