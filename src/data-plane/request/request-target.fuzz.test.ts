import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../config/schema.js';
import { anyCodeUnit, fuzz } from '../../../test/support/fuzz.js';
import { parseRequestTarget } from './request-target.js';
import { RouteTable } from '../pipeline/route-table.js';

/** Pieces of request targets, weighted towards what path tricks are made of. */
const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('/', '.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '%00', '%25', '%252e', '\\', ';', '?', '#', '%', '%e', '\0', 'v1', 'events', 'files', 'a', '..a', 'a.', '%41', '%C3%BC', '&', '=', ' ', '+') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 3 }) },
  { weight: 1, arbitrary: anyCodeUnit },
);
const target = fc.array(piece, { maxLength: 14 }).map((parts) => parts.join(''));
const originTarget = target.map((t) => `/${t}`);

/** Only well-formed %XX escapes are decoded, as a lenient upstream would. */
function decodeEscapes(segment: string): string {
  return segment.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

describe('request target (property-based)', () => {
  it('answers any request target with a parsed target or a refusal, never an exception', () => {
    fc.assert(fc.property(fc.oneof(target, originTarget), (raw) => {
      const parsed = parseRequestTarget(raw);
      expect(parsed === null || typeof parsed.path === 'string').toBe(true);
    }), fuzz(600));
  });

  it('keeps an accepted target byte for byte: path + query is the target, and parsing it again gives the same', () => {
    fc.assert(fc.property(originTarget, (raw) => {
      const parsed = parseRequestTarget(raw);
      fc.pre(parsed !== null);
      expect(parsed.path + parsed.search).toBe(raw);
      expect(parseRequestTarget(parsed.path + parsed.search)).toEqual(parsed);
      expect(parsed.path.startsWith('/')).toBe(true);
      expect(parsed.path.includes('?')).toBe(false);
    }), fuzz(600));
  });

  it('accepts no path an upstream could decode into a dot segment, a different segmentation, a backslash or NUL', () => {
    fc.assert(fc.property(originTarget, (raw) => {
      const parsed = parseRequestTarget(raw);
      fc.pre(parsed !== null);
      for (const segment of parsed.path.split('/')) {
        const decoded = decodeEscapes(segment);
        expect(decoded === '.' || decoded === '..', `segment ${JSON.stringify(segment)}`).toBe(false);
        expect(/[/\\\0]/.test(decoded), `segment ${JSON.stringify(segment)}`).toBe(false);
        expect(segment.includes(';')).toBe(false);
      }
      expect(raw.includes('#') || raw.includes('\0')).toBe(false);
    }), fuzz(600));
  });

  it('accepts every path made of ordinary segments, with any query without NUL or "#"', () => {
    const escape = fc.integer({ min: 1, max: 255 }).filter((c) => c !== 0x2e && c !== 0x2f && c !== 0x5c)
      .map((c) => `%${c.toString(16).padStart(2, '0')}`);
    const unit = fc.oneof(fc.constantFrom(..."ABCXYZabcxyz0189_~!$&'()*+,=:@-."), escape);
    const segment = fc.string({ unit, minLength: 1, maxLength: 8 }).filter((s) => s !== '.' && s !== '..');
    const query = fc.string({ unit: 'binary-ascii', maxLength: 20 }).filter((q) => !q.includes('\0') && !q.includes('#'));
    fc.assert(fc.property(fc.array(segment, { maxLength: 6 }), fc.option(query), (segments, q) => {
      const path = `/${segments.join('/')}`;
      const raw = q === null ? path : `${path}?${q}`;
      expect(parseRequestTarget(raw)).toEqual({ path, search: q === null ? '' : `?${q}` });
    }), fuzz(500));
  });
});

interface R { config: RouteConfig }
const route = (name: string, method: string, path: string): R => ({ config: { name, method, path } as RouteConfig });
const ROUTES = [
  route('send-events', 'POST', '/v1/events'),
  route('list-events', 'GET', '/v1/events'),
  route('profile', 'PATCH', '/v1/profiles/{profileId}'),
  route('profile-item', 'GET', '/v1/profiles/{profileId}/items/{itemId}'),
  route('files', 'GET', '/v1/files/*'),
  route('root-files', 'GET', '/*'),
  route('probe-events', 'HEAD', '/v1/events'),
  route('probe-item', 'HEAD', '/v1/profiles/{profileId}/items/{itemId}'),
];
const table = new RouteTable(ROUTES);

describe('route table (property-based)', () => {
  const method = fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'get', 'HEAD', '');
  const path = fc.array(fc.constantFrom('v1', 'events', 'profiles', 'items', 'files', '', 'x', '%2e', '{profileId}', 'a b'), { maxLength: 6 }).map((s) => `/${s.join('/')}`);

  it('matches any method and path without throwing; a match is of that method, or for a HEAD with no HEAD route of its own the GET route', () => {
    const headRoutes = new RouteTable(ROUTES.filter((r) => r.config.method === 'HEAD'));
    fc.assert(fc.property(method, fc.oneof(path, originTarget), (m, p) => {
      const match = table.match(m, p);
      if (m === 'HEAD') expect(match).toEqual(headRoutes.match('HEAD', p) ?? table.match('GET', p));
      else if (match !== null) expect(match.route.config.method).toBe(m);
    }), fuzz(500));
  });

  it('prints a matched path back from its route pattern and parameters (parse → print → parse is stable)', () => {
    fc.assert(fc.property(method, path, (m, p) => {
      const match = table.match(m, p);
      fc.pre(match !== null);
      const pattern = match.route.config.path;
      for (const value of Object.values(match.params)) {
        expect(value).not.toBe('');
        expect(value.includes('/')).toBe(false);
      }
      if (pattern.endsWith('/*')) {
        const base = pattern.slice(0, -2).replace(/\{(\w+)\}/g, (_, n: string) => match.params[n]!);
        expect(p === base || p.startsWith(`${base}/`)).toBe(true);
      } else {
        const printed = pattern.replace(/\{(\w+)\}/g, (_, n: string) => match.params[n]!);
        expect(printed).toBe(p);
        expect(table.match(m, printed)).toEqual(match);
      }
    }), fuzz(500));
  });
});
