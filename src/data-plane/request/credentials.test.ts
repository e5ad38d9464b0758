import { describe, expect, it } from 'vitest';
import { chunkedOnly, readCredential, scanHeaders, type HeaderScan } from './credentials.js';

const WS = '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
const SECRET = 'kg_live_abcdefghijklmnopqrstuvwx_ABC123';

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/** A scan carrying just the credential headers given. */
function scan(parts: { apiKeys?: string[]; authorizations?: string[] }): HeaderScan {
  return { hosts: 1, host: 'h', apiKeys: parts.apiKeys ?? [], authorizations: parts.authorizations ?? [], connection: null, hasBody: false, contentTypes: 0, contentType: null, contentEncoding: null, transferEncoding: null,
    requestIds: 0, requestId: null, traceparents: 0, traceparent: null, tracestate: null };
}

describe('scanHeaders', () => {
  it('reports nothing for an empty header list', () => {
    expect(scanHeaders([])).toEqual({
      hosts: 0, host: null, apiKeys: [], authorizations: [], connection: null, hasBody: false, contentTypes: 0, contentType: null, contentEncoding: null, transferEncoding: null,
      requestIds: 0, requestId: null, traceparents: 0, traceparent: null, tracestate: null,
    });
  });

  it('reads the Host header and counts it once', () => {
    const s = scanHeaders(['Host', 'example.com']);
    expect(s.hosts).toBe(1);
    expect(s.host).toBe('example.com');
  });

  it('joins Transfer-Encoding values, and tells whether chunked is the only coding (RFC 9112 §6.1, §6.3)', () => {
    expect(scanHeaders(['Transfer-Encoding', 'gzip', 'transfer-encoding', 'chunked']).transferEncoding).toBe('gzip,chunked');
    for (const te of ['chunked', 'Chunked', 'chunked ', ' CHUNKED']) expect(chunkedOnly(te), te).toBe(true);
    for (const te of ['xchunked', 'gzip', 'identity', 'chunked, gzip', 'gzip, chunked', 'gzip,chunked', 'chunked,chunked', 'chunkedx', 'x chunked', '"chunked"', '']) expect(chunkedOnly(te), te).toBe(false);
  });

  it('reads X-Request-Id, traceparent and tracestate in any case, counting the first two and joining tracestate values', () => {
    const s = scanHeaders(['X-Request-ID', 'abc', 'TraceParent', 'tp1', 'x-request-id', 'def', 'traceparent', 'tp2', 'Tracestate', 'a=1', 'tracestate', 'b=2', 'Content-Type', 'application/json']);
    expect([s.requestIds, s.requestId, s.traceparents, s.traceparent, s.tracestate, s.contentType]).toEqual([2, 'abc', 2, 'tp1', 'a=1,b=2', 'application/json']);
  });

  it('counts two Host headers', () => {
    expect(scanHeaders(['Host', 'a', 'host', 'b']).hosts).toBe(2);
  });

  it('matches header names case-insensitively', () => {
    const s = scanHeaders(['X-API-KEY', 'k1', 'x-api-key', 'k2', 'AUTHORIZATION', 'Bearer t', 'hOsT', 'h']);
    expect(s.apiKeys).toEqual(['k1', 'k2']);
    expect(s.authorizations).toEqual(['Bearer t']);
    expect(s.host).toBe('h');
  });

  it('collects every X-Api-Key and Authorization value in order', () => {
    const s = scanHeaders(['Authorization', 'Basic a', 'X-Api-Key', 'k', 'Authorization', 'Bearer b']);
    expect(s.authorizations).toEqual(['Basic a', 'Bearer b']);
    expect(s.apiKeys).toEqual(['k']);
  });

  it('joins several Connection header values with commas', () => {
    expect(scanHeaders(['Connection', 'keep-alive', 'connection', 'X-Foo']).connection).toBe('keep-alive,X-Foo');
  });

  it('leaves connection null when there is no Connection header', () => {
    expect(scanHeaders(['Host', 'h']).connection).toBeNull();
  });

  it('sees a body when Transfer-Encoding is present', () => {
    expect(scanHeaders(['Transfer-Encoding', 'chunked']).hasBody).toBe(true);
  });

  it('sees a body when Content-Length is not zero', () => {
    expect(scanHeaders(['content-length', '12']).hasBody).toBe(true);
  });

  it('sees no body for Content-Length: 0', () => {
    expect(scanHeaders(['Content-Length', '0']).hasBody).toBe(false);
  });

  it('sees no body for Content-Length: 0 with surrounding spaces', () => {
    expect(scanHeaders(['Content-Length', ' 0 ']).hasBody).toBe(false);
  });

  it('sees no body when neither Content-Length nor Transfer-Encoding is present', () => {
    expect(scanHeaders(['Host', 'h', 'Content-Type', 'application/json']).hasBody).toBe(false);
  });

  it('ignores unrelated headers of the same length as a watched one', () => {
    // "x-request" is 9 characters like "x-api-key"; "content-type" is not "content-length".
    const s = scanHeaders(['X-Request', 'v', 'Content-Typeee', '5', 'hots', 'x']);
    expect(s.apiKeys).toEqual([]);
    expect(s.hasBody).toBe(false);
    expect(s.hosts).toBe(0);
  });
});

describe('readCredential', () => {
  it('reads no credential when neither header is present', () => {
    expect(readCredential(scan({}))).toEqual({ kind: 'none' });
  });

  it('reads an X-Api-Key secret', () => {
    expect(readCredential(scan({ apiKeys: [SECRET] }))).toEqual({ kind: 'secret', secret: SECRET, via: 'x-api-key' });
  });

  it('trims whitespace around an X-Api-Key secret', () => {
    expect(readCredential(scan({ apiKeys: [`  ${SECRET} `] }))).toEqual({ kind: 'secret', secret: SECRET, via: 'x-api-key' });
  });

  it('reads an empty X-Api-Key as invalid', () => {
    expect(readCredential(scan({ apiKeys: [''] }))).toEqual({ kind: 'invalid' });
  });

  it('reads a whitespace-only X-Api-Key as invalid', () => {
    expect(readCredential(scan({ apiKeys: ['   '] }))).toEqual({ kind: 'invalid' });
  });

  it('reads two X-Api-Key headers as ambiguous', () => {
    expect(readCredential(scan({ apiKeys: [SECRET, SECRET] }))).toEqual({ kind: 'ambiguous' });
  });

  it('reads X-Api-Key together with Authorization as ambiguous', () => {
    expect(readCredential(scan({ apiKeys: [SECRET], authorizations: [`Bearer ${SECRET}`] }))).toEqual({ kind: 'ambiguous' });
  });

  it('reads two Authorization headers as ambiguous', () => {
    expect(readCredential(scan({ authorizations: [`Bearer ${SECRET}`, `Bearer ${SECRET}`] }))).toEqual({ kind: 'ambiguous' });
  });

  it('reads Bearer kg_… as a secret', () => {
    expect(readCredential(scan({ authorizations: [`Bearer ${SECRET}`] }))).toEqual({ kind: 'secret', secret: SECRET, via: 'bearer' });
  });

  it('reads the Bearer scheme name case-insensitively', () => {
    expect(readCredential(scan({ authorizations: [`bEaReR ${SECRET}`] }))).toEqual({ kind: 'secret', secret: SECRET, via: 'bearer' });
  });

  it('reads Bearer with a JWT-shaped value as a token', () => {
    const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJrZXlfMSJ9.c2lnbmF0dXJl';
    expect(readCredential(scan({ authorizations: [`Bearer ${jwt}`] }))).toEqual({ kind: 'token', token: jwt });
  });

  it('reads Bearer with a value that is neither a secret nor a JWT as invalid', () => {
    expect(readCredential(scan({ authorizations: ['Bearer not-a-token'] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Bearer with no value as invalid', () => {
    expect(readCredential(scan({ authorizations: ['Bearer '] }))).toEqual({ kind: 'invalid' });
  });

  it('reads an Authorization header without a scheme separator as invalid', () => {
    expect(readCredential(scan({ authorizations: [SECRET] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic with a valid GUID and secret as basic', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(`${WS}:${SECRET}`)}`] })))
      .toEqual({ kind: 'basic', workspaceId: WS, secret: SECRET });
  });

  it('lower-cases the workspace GUID of a Basic credential', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(`${WS.toUpperCase()}:${SECRET}`)}`] })))
      .toEqual({ kind: 'basic', workspaceId: WS, secret: SECRET });
  });

  it('reads the Basic scheme name case-insensitively', () => {
    expect(readCredential(scan({ authorizations: [`basic ${b64(`${WS}:${SECRET}`)}`] })))
      .toMatchObject({ kind: 'basic', secret: SECRET });
  });

  it('keeps everything after the first colon as the Basic secret', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(`${WS}:a:b:c`)}`] })))
      .toEqual({ kind: 'basic', workspaceId: WS, secret: 'a:b:c' });
  });

  it('reads Basic with an empty user as invalid', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(`:${SECRET}`)}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic with an empty password as invalid', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(`${WS}:`)}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic without any colon as invalid', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(WS)}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic with a user that is not a GUID as invalid', () => {
    expect(readCredential(scan({ authorizations: [`Basic ${b64(`admin:${SECRET}`)}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic with characters outside base64 as invalid', () => {
    const encoded = b64(`${WS}:${SECRET}`);
    const bad = `${encoded.slice(0, 4)}*${encoded.slice(5)}`;
    expect(bad.length).toBe(encoded.length);
    expect(readCredential(scan({ authorizations: [`Basic ${bad}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic in URL-safe base64 as invalid', () => {
    // "\xfb\xff" encodes to "+/8=" in standard base64 and "-_8=" in the URL-safe alphabet.
    expect(readCredential(scan({ authorizations: ['Basic -_8='] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic in unpadded base64 like the padded form, with one or two padding characters left out (regression)', () => {
    for (const secret of [SECRET, `${SECRET}x`]) {
      const encoded = b64(`${WS}:${secret}`);
      expect(encoded).toMatch(/[^=]={1,2}$/);
      expect(readCredential(scan({ authorizations: [`Basic ${encoded.replace(/=+$/, '')}`] }))).toEqual({ kind: 'basic', workspaceId: WS, secret });
    }
  });

  it('reads Basic with partial padding, or a lone character after the last whole quantum, as invalid', () => {
    const encoded = b64(`${WS}:${SECRET}`);
    expect(encoded.endsWith('==')).toBe(true);
    expect(readCredential(scan({ authorizations: [`Basic ${encoded.slice(0, -1)}`] }))).toEqual({ kind: 'invalid' });
    const whole = b64(`${WS}:${SECRET}xy`);
    expect(whole.length % 4).toBe(0);
    expect(whole).not.toContain('=');
    expect(readCredential(scan({ authorizations: [`Basic ${whole}Q`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads unpadded Basic whose decoded bytes are not valid UTF-8 as invalid', () => {
    const bytes = Buffer.concat([Buffer.from(`${WS}:`, 'utf8'), Buffer.from([0xff, 0xfe, 0x41, 0x42])]);
    const encoded = bytes.toString('base64');
    expect(encoded.endsWith('=')).toBe(true);
    expect(readCredential(scan({ authorizations: [`Basic ${encoded.replace(/=+$/, '')}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads the Basic scheme name in any case, unpadded too', () => {
    const encoded = b64(`${WS}:${SECRET}`).replace(/=+$/, '');
    for (const scheme of ['basic', 'BASIC', 'bAsIc']) {
      expect(readCredential(scan({ authorizations: [`${scheme} ${encoded}`] }))).toEqual({ kind: 'basic', workspaceId: WS, secret: SECRET });
    }
  });

  it('reads Basic with too much padding as invalid', () => {
    const encoded = b64(`${WS}:${SECRET}`);
    expect(readCredential(scan({ authorizations: [`Basic ${encoded}====`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic with padding in the middle as invalid', () => {
    const encoded = `${b64(`${WS}:`)}${b64(SECRET)}`;
    expect(encoded.slice(0, -1)).toContain('=');
    expect(readCredential(scan({ authorizations: [`Basic ${encoded}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads Basic whose decoded bytes are not valid UTF-8 as invalid', () => {
    const bytes = Buffer.concat([Buffer.from(`${WS}:`, 'utf8'), Buffer.from([0xff, 0xfe, 0x41])]);
    expect(readCredential(scan({ authorizations: [`Basic ${bytes.toString('base64')}`] }))).toEqual({ kind: 'invalid' });
  });

  it('reads an unknown scheme as invalid', () => {
    expect(readCredential(scan({ authorizations: [`Digest ${SECRET}`] }))).toEqual({ kind: 'invalid' });
  });
});

describe('token length', () => {
  it('refuses a JWT-shaped bearer value longer than 4096 characters before any verification (regression: memory growth from huge fake tokens)', () => {
    const huge = `eyJhbGciOiJFZERTQSJ9.${'a'.repeat(5000)}.sig`;
    expect(readCredential(scan({ authorizations: [`Bearer ${huge}`] }))).toEqual({ kind: 'invalid' });
    const normal = `eyJhbGciOiJFZERTQSJ9.${'a'.repeat(500)}.sig`;
    expect(readCredential(scan({ authorizations: [`Bearer ${normal}`] }))).toEqual({ kind: 'token', token: normal });
  });
});
