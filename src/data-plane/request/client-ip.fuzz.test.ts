import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fuzz, hostileString } from '../../../test/support/fuzz.js';
import { parseIp } from '../../domain/cidr.js';
import { createClientIpResolver } from './client-ip.js';

const TRUSTED = ['10.0.0.0/8', 'fd00::/8'];
const resolve = createClientIpResolver(TRUSTED);
const resolveUntrusting = createClientIpResolver([]);

const trustedIp = fc.oneof(
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255)).map(([a, b, c]) => `10.${a}.${b}.${c}`),
  fc.ipV6().map((a) => parseIp(a)).filter((ip) => ip?.kind() === 'ipv6').map((ip) => {
    const bytes = ip!.toByteArray();
    bytes[0] = 0xfd;
    return parseIp(Buffer.from(bytes).toString('hex').match(/.{4}/g)!.join(':'))!.toString();
  }),
);
const untrustedIp = fc.oneof(fc.ipV4(), fc.ipV6()).filter((a) => {
  const ip = parseIp(a);
  return ip !== null && !(ip.kind() === 'ipv4' ? a.startsWith('10.') : ip.toByteArray()[0] === 0xfd);
});
const junkEntry = fc.oneof(hostileString('0123456789.:abcdef ,[]%', 20), fc.ipV4Extended(), fc.constantFrom('unknown', '', '_hidden', '1.2.3.4:80', '[::1]'));
const entry = fc.oneof(trustedIp, untrustedIp, junkEntry);
/** X-Forwarded-For as one header or several, with odd spacing. */
const forwardedFor = fc.oneof(
  fc.constant(undefined),
  fc.array(entry, { maxLength: 6 }).chain((es) => fc.constantFrom(',', ', ', ' ,', ',,').map((sep) => es.join(sep))),
  fc.array(fc.array(entry, { maxLength: 3 }).map((es) => es.join(',')), { minLength: 1, maxLength: 3 }),
);
const peer = fc.oneof(fc.constant(undefined), trustedIp, untrustedIp, untrustedIp.map((a) => `::ffff:${a}`).filter((a) => parseIp(a) !== null), junkEntry);

const text = (ip: ReturnType<typeof resolve>): string | null => (ip === null ? null : `${ip.kind()} ${ip.toNormalizedString()}`);

describe('client IP (property-based)', () => {
  it('answers any peer and X-Forwarded-For with an address or null, never an exception', () => {
    fc.assert(fc.property(peer, forwardedFor, (p, xff) => {
      resolve(p, xff);
      resolveUntrusting(p, xff);
    }), fuzz(500));
  });

  it('never believes X-Forwarded-For from a peer that is not a trusted proxy', () => {
    fc.assert(fc.property(peer, forwardedFor, (p, xff) => {
      const peerIp = p === undefined ? null : parseIp(p);
      expect(text(resolveUntrusting(p, xff))).toBe(text(peerIp));
      const peerTrusted = peerIp !== null && peerIp.toByteArray()[0] === (peerIp.kind() === 'ipv4' ? 10 : 0xfd);
      if (!peerTrusted) expect(text(resolve(p, xff))).toBe(text(peerIp));
    }), fuzz(500));
  });

  it('takes the rightmost untrusted X-Forwarded-For entry behind trusted proxies, whatever is left of it', () => {
    fc.assert(fc.property(trustedIp, fc.array(entry, { maxLength: 4 }), untrustedIp, fc.array(trustedIp, { maxLength: 4 }), (p, left, client, hops) => {
      const xff = [...left, client, ...hops].join(', ');
      expect(text(resolve(p, xff))).toBe(text(parseIp(client)));
    }), fuzz(500));
  });

  it('answers with the peer or an address read from X-Forwarded-For, never anything else', () => {
    fc.assert(fc.property(peer, forwardedFor, (p, xff) => {
      const got = text(resolve(p, xff));
      if (got === null) return;
      const entries = xff === undefined ? [] : (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((e) => e.trim());
      const candidates = [p, ...entries].map((e) => (e === undefined ? null : text(parseIp(e))));
      expect(candidates).toContain(got);
    }), fuzz(500));
  });
});
