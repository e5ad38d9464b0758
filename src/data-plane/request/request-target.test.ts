import { describe, expect, it } from 'vitest';
import { parseRequestTarget } from './request-target.js';

describe('parseRequestTarget', () => {
  describe('accepts', () => {
    it('accepts a plain origin-form path with no query', () => {
      expect(parseRequestTarget('/v1/events')).toEqual({ path: '/v1/events', search: '' });
    });

    it('accepts a query carrying an encoded slash, since only the path is checked for it', () => {
      expect(parseRequestTarget('/v1/events?x=1&y=%2F')).toEqual({ path: '/v1/events', search: '?x=1&y=%2F' });
    });

    it('accepts the root path', () => {
      expect(parseRequestTarget('/')).toEqual({ path: '/', search: '' });
    });

    it('accepts a segment that merely contains dots, like a file name', () => {
      expect(parseRequestTarget('/v1/file.json')).toEqual({ path: '/v1/file.json', search: '' });
    });

    it('accepts a segment that starts with three dots, which is not a dot segment', () => {
      expect(parseRequestTarget('/v1/.../x')).toEqual({ path: '/v1/.../x', search: '' });
    });
  });

  describe('keeps the target raw', () => {
    it('keeps percent-encoding in the path undecoded', () => {
      expect(parseRequestTarget('/v1/profiles/user%2042')?.path).toBe('/v1/profiles/user%2042');
    });

    it('keeps the query undecoded and with its leading question mark', () => {
      expect(parseRequestTarget('/a?q=%20b+c')?.search).toBe('?q=%20b+c');
    });

    it('splits path and query at the first question mark only', () => {
      expect(parseRequestTarget('/a?b?c')).toEqual({ path: '/a', search: '?b?c' });
    });

    it('does not collapse repeated slashes', () => {
      expect(parseRequestTarget('//v1//events')?.path).toBe('//v1//events');
    });
  });

  describe('refuses', () => {
    it('refuses a path with a ".." segment', () => {
      expect(parseRequestTarget('/v1/../admin')).toBeNull();
    });

    it('refuses a path ending in a ".." segment', () => {
      expect(parseRequestTarget('/v1/..')).toBeNull();
    });

    it('refuses a path with a "." segment', () => {
      expect(parseRequestTarget('/v1/./events')).toBeNull();
    });

    it('refuses a path ending in a "." segment', () => {
      expect(parseRequestTarget('/v1/.')).toBeNull();
    });

    it('refuses a lower-case encoded dot', () => {
      expect(parseRequestTarget('/v1/%2e%2e/admin')).toBeNull();
    });

    it('refuses an upper-case encoded dot', () => {
      expect(parseRequestTarget('/v1/%2E%2E/admin')).toBeNull();
    });

    it('refuses a dot segment mixing a plain and an encoded dot', () => {
      expect(parseRequestTarget('/v1/.%2e/admin')).toBeNull();
    });

    it('refuses a lower-case encoded slash in the path', () => {
      expect(parseRequestTarget('/v1/a%2fb')).toBeNull();
    });

    it('refuses an upper-case encoded slash in the path', () => {
      expect(parseRequestTarget('/v1/a%2Fb')).toBeNull();
    });

    it('refuses an encoded backslash', () => {
      expect(parseRequestTarget('/v1/a%5Cb')).toBeNull();
    });

    it('refuses a lower-case encoded backslash', () => {
      expect(parseRequestTarget('/v1/a%5cb')).toBeNull();
    });

    it('refuses a raw backslash', () => {
      expect(parseRequestTarget('/v1/a\\b')).toBeNull();
    });

    it('refuses a semicolon path parameter', () => {
      expect(parseRequestTarget('/v1/events;jsessionid=1')).toBeNull();
    });

    it('refuses an encoded NUL', () => {
      expect(parseRequestTarget('/v1/a%00b')).toBeNull();
    });

    it('refuses a raw NUL in the path', () => {
      expect(parseRequestTarget('/v1/a\0b')).toBeNull();
    });

    it('refuses a raw NUL in the query', () => {
      expect(parseRequestTarget('/v1/a?x=\0')).toBeNull();
    });

    it('refuses an absolute-form target', () => {
      expect(parseRequestTarget('http://h/x')).toBeNull();
    });

    it('refuses the asterisk-form target', () => {
      expect(parseRequestTarget('*')).toBeNull();
    });

    it('refuses an authority-form target', () => {
      expect(parseRequestTarget('example.com:443')).toBeNull();
    });

    it('refuses the empty string', () => {
      expect(parseRequestTarget('')).toBeNull();
    });

    it('refuses a fragment', () => {
      expect(parseRequestTarget('/v1/events#frag')).toBeNull();
    });
  });
});
