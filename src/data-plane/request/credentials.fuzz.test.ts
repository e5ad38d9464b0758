import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, hostileString } from '../../../test/support/fuzz.js';
import { MAX_TOKEN_LENGTH, readCredential, scanHeaders } from './credentials.js';

const KINDS = ['none', 'ambiguous', 'invalid', 'secret', 'basic', 'token'];
const CREDENTIAL_NAMES = ['X-Api-Key', 'x-api-key', 'X-API-KEY', 'Authorization', 'authorization', 'AUTHORIZATION'];
const OTHER_NAMES = ['Host', 'Connection', 'Content-Type', 'Content-Length', 'Content-Encoding', 'Transfer-Encoding', 'X-Api-Keys', 'X_Api_Key', 'Authorisation', 'Cookie', ''];

/** Header values as they come off the wire: Latin-1 text, with the characters the parsers split on. */
const headerValue = hostileString(' :=.,;_-\t+/BbearicsBEARICkg_', 60).map((s) => s.replace(/[^\u0000-\u00ff]/g, 'x'));
const authorization = fc.oneof(
  headerValue,
  fc.tuple(fc.mixedCase(fc.constantFrom('Bearer', 'Basic', 'Digest')), fc.constantFrom(' ', '  ', '\t', ''), headerValue).map(([s, sp, v]) => `${s}${sp}${v}`),
  fc.tuple(fc.mixedCase(fc.constant('basic')), fc.base64String({ maxLength: 80 })).map(([s, v]) => `${s} ${v}`),
);
const headerName = fc.oneof(fc.constantFrom(...CREDENTIAL_NAMES), fc.constantFrom(...OTHER_NAMES));
const rawHeaders = fc.array(fc.tuple(headerName, fc.oneof(headerValue, authorization)), { maxLength: 6 }).map((pairs) => pairs.flat());

const guid = fc.uuid();
/** Standard base64, with its padding or without (both are read alike). */
const base64 = (bytes: Buffer, padded: boolean): string => (padded ? bytes.toString('base64') : bytes.toString('base64').replace(/=+$/, ''));
/** Secrets as an admin might have them: any text without leading/trailing whitespace. */
const secretText = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((s) => s.trim() === s && s !== '');

describe('credentials (property-based)', () => {
  it('reads any raw header list without throwing, into one of the credential kinds', () => {
    fc.assert(fc.property(rawHeaders, (raw) => {
      const credential = readCredential(scanHeaders(raw));
      expect(KINDS).toContain(credential.kind);
    }), fuzz(600));
  });

  it('finds every X-Api-Key and Authorization header whatever the case of its name, and calls two or more ambiguous', () => {
    fc.assert(fc.property(rawHeaders, (raw) => {
      const scan = scanHeaders(raw);
      const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      expect(scan.apiKeys.length).toBe(names.filter((n) => n === 'x-api-key').length);
      expect(scan.authorizations.length).toBe(names.filter((n) => n === 'authorization').length);
      const count = scan.apiKeys.length + scan.authorizations.length;
      const kind = readCredential(scan).kind;
      expect(kind === 'none').toBe(count === 0);
      expect(kind === 'ambiguous').toBe(count > 1);
    }), fuzz(600));
  });

  it('reads an X-Api-Key value as its secret, trimmed, and an empty one as invalid', () => {
    fc.assert(fc.property(headerValue, (value) => {
      const credential = readCredential(scanHeaders(['X-Api-Key', value]));
      if (value.trim() === '') expect(credential).toEqual({ kind: 'invalid' });
      else expect(credential).toEqual({ kind: 'secret', secret: value.trim(), via: 'x-api-key' });
    }), fuzz(600));
  });

  it('reads a Bearer secret whatever the case of the scheme (RFC 9110 §11.1)', () => {
    fc.assert(fc.property(fc.mixedCase(fc.constant('bearer')), fc.stringMatching(/^kg_[!-~]{0,40}$/), (scheme, secret) => {
      expect(readCredential(scanHeaders(['Authorization', `${scheme} ${secret}`]))).toEqual({ kind: 'secret', secret, via: 'bearer' });
    }), fuzz(500));
  });

  it('reads a Bearer JWT-shaped value as a token only below the length cap', () => {
    const b64url = fc.stringMatching(/^[A-Za-z0-9_-]{1,3000}$/);
    fc.assert(fc.property(fc.mixedCase(fc.constant('bearer')), b64url, b64url, b64url, (scheme, h, p, s) => {
      const token = `${h}.${p}.${s}`;
      const credential = readCredential(scanHeaders(['Authorization', `${scheme} ${token}`]));
      if (token.startsWith('kg_')) expect(credential.kind).toBe('secret');
      else expect(credential).toEqual(token.length <= MAX_TOKEN_LENGTH ? { kind: 'token', token } : { kind: 'invalid' });
    }), fuzz(300));
  });

  it('reads back the workspace GUID and secret of any Basic credential, padded or not, whatever the case of the scheme and the GUID', () => {
    fc.assert(fc.property(fc.mixedCase(fc.constant('basic')), fc.mixedCase(guid), secretText, fc.boolean(), (scheme, ws, secret, padded) => {
      const encoded = base64(Buffer.from(`${ws}:${secret}`, 'utf8'), padded);
      expect(readCredential(scanHeaders(['Authorization', `${scheme} ${encoded}`])))
        .toEqual({ kind: 'basic', workspaceId: ws.toLowerCase(), secret });
    }), fuzz(600));
  });

  it('refuses as invalid a Basic credential with partial padding, padding inside, a lone trailing character or the URL-safe alphabet', () => {
    const spoil = fc.constantFrom('partial-padding', 'padding-inside', 'lone-character', 'url-safe');
    fc.assert(fc.property(guid, secretText, spoil, (ws, secret, how) => {
      const encoded = base64(Buffer.from(`${ws}:${secret}`, 'utf8'), true);
      const bare = encoded.replace(/=+$/, '');
      let spoiled: string;
      switch (how) {
        case 'partial-padding': fc.pre(encoded.endsWith('==')); spoiled = encoded.slice(0, -1); break;
        case 'padding-inside': spoiled = `${encoded.slice(0, 4)}=${encoded.slice(4)}`; break;
        // Whole quanta and one character more: no base64 text is that long.
        case 'lone-character': spoiled = `${bare.padEnd(Math.ceil(bare.length / 4) * 4, 'A')}A`; break;
        case 'url-safe': fc.pre(/[+/]/.test(encoded)); spoiled = encoded.replace(/\+/g, '-').replace(/\//g, '_'); break;
      }
      expect(readCredential(scanHeaders(['Authorization', `Basic ${spoiled}`])), spoiled).toEqual({ kind: 'invalid' });
    }), fuzz(600));
  });

  it('refuses as invalid any Basic credential, padded or not, whose user is not a GUID or whose secret is empty', () => {
    const user = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((u) => !u.includes(':'));
    fc.assert(fc.property(user, fc.oneof(secretText, fc.constant('')), fc.boolean(), (name, secret, padded) => {
      fc.pre(secret === '' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name));
      const encoded = base64(Buffer.from(`${name}:${secret}`, 'utf8'), padded);
      expect(readCredential(scanHeaders(['Authorization', `Basic ${encoded}`]))).toEqual({ kind: 'invalid' });
    }), fuzz(600));
  });

  it('never reads a Basic credential, padded or not, out of bytes that are not UTF-8', () => {
    fc.assert(fc.property(guid, fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.boolean(), (ws, bytes, padded) => {
      const raw = Buffer.concat([Buffer.from(`${ws}:`), bytes]);
      const credential = readCredential(scanHeaders(['Authorization', `Basic ${base64(raw, padded)}`]));
      const valid = Buffer.from(raw.toString('utf8'), 'utf8').equals(raw);
      if (!valid) expect(credential).toEqual({ kind: 'invalid' });
      else expect(credential.kind).toBe('basic');
    }), fuzz(600));
  });
});
