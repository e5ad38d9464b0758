import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyCodeUnit, fuzz } from '../../../test/support/fuzz.js';
import { parseRequestTarget } from '../request/request-target.js';
import { envoyOriginal, forwardedOriginal, isDecisionPath } from './original-request.js';

const NAMES = ['X-Original-Method', 'X-Original-URI', 'X-Original-URL', 'X-Forwarded-Method', 'X-Forwarded-Uri', 'X-Api-Key', 'Host'];
/** A header name in any case, mostly one the parser reads. */
const name = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...NAMES), fc.boolean()).map(([n, upper]) => (upper ? n.toUpperCase() : n.toLowerCase())) },
  { weight: 1, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 20 }) },
);
const value = fc.oneof(
  fc.constantFrom('GET', 'post', '/v1/events', '/v1/a/../b', '/%2e%2e/x', 'https://h/v1/x?y', 'http://h', 'v1/x', '', ' GET ', '/a?b#c'),
  fc.string({ unit: anyCodeUnit, maxLength: 30 }),
);
const segment = fc.stringMatching(/^[A-Za-z0-9_~-]{1,8}$/);
const path = fc.array(segment, { minLength: 0, maxLength: 4 }).map((s) => `/${s.join('/')}`);
const query = fc.oneof(fc.constant(''), fc.stringMatching(/^\?[A-Za-z0-9=&%_-]{0,12}$/));
const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PROPFIND');
const cased = (n: string): fc.Arbitrary<string> => fc.constantFrom(n, n.toLowerCase(), n.toUpperCase());

describe('the original request a proxy names (property-based)', () => {
  it('reads any headers into a method and an acceptable path, or a 400 naming what is wrong; never throws', () => {
    fc.assert(fc.property(fc.array(fc.tuple(name, value), { maxLength: 6 }), (pairs) => {
      const r = forwardedOriginal(pairs.flat());
      if ('method' in r) {
        expect(r.method).toMatch(/^[!#$%&'*+.^_`|~0-9A-Z-]+$/);
        expect(parseRequestTarget(r.path + r.search)).toEqual({ path: r.path, search: r.search });
      } else {
        expect(r.code).toBe('BAD_REQUEST');
        expect(r.message).toMatch(/X-(Original|Forwarded)-/);
      }
    }), fuzz(2000));
  });

  it('gives back the method, path and query nginx (X-Original-URI), ingress-nginx (X-Original-URL) and Traefik (X-Forwarded-*) send, in any header case', () => {
    fc.assert(fc.property(method, path, query, fc.constantFrom('nginx', 'ingress', 'traefik'), cased('X-Original-Method'), cased('X-Original-URI'), cased('X-Forwarded-Uri'),
      (m, p, q, proxy, methodName, uriName, fwdUri) => {
        const headers = proxy === 'nginx' ? [methodName, m.toLowerCase(), uriName, p + q]
          : proxy === 'ingress' ? [methodName, m, 'X-Original-URL', `https://api.example.com:8443${p}${q}`]
            : ['X-Forwarded-Method', m, fwdUri, p + q, 'X-Forwarded-Host', 'api.example.com'];
        expect(forwardedOriginal(headers)).toEqual({ method: m, path: p, search: q });
      }), fuzz(1000));
  });

  it('prefers X-Original-* over X-Forwarded-* whenever one came', () => {
    fc.assert(fc.property(method, path, method, path, (m1, p1, m2, p2) => {
      expect(forwardedOriginal(['X-Forwarded-Method', m2, 'X-Forwarded-Uri', p2, 'X-Original-Method', m1, 'X-Original-URI', p1])).toEqual({ method: m1, path: p1, search: '' });
    }), fuzz(500));
  });

  it('takes Envoy\'s original path after the prefix, and owns only the decision paths', () => {
    fc.assert(fc.property(method, path, query, (m, p, q) => {
      expect(isDecisionPath(`/auth/envoy${p}`)).toBe(true);
      expect(envoyOriginal(m, `/auth/envoy${p === '/' ? '' : p}`, q)).toEqual({ method: m, path: p, search: q });
      expect(isDecisionPath(`/auth/envoyx${p}`)).toBe(false);
      expect(isDecisionPath(p)).toBe(false);
    }), fuzz(1000));
  });
});
