import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { fuzz, hostileString } from '../../test/support/fuzz.js';
import { compileIpAllowlist, parseCidr, parseIp, type ParsedIp } from './cidr.js';

const IPV4_STRICT = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const v4 = fc.ipV4();
const v6 = fc.ipV6();
const anyIpText = fc.oneof(v4, v6, fc.ipV4Extended(), v4.map((a) => `::ffff:${a}`), fc.mixedCase(v6));
/** Address-like junk: digits, dots, colons, hex letters, slashes, zone ids, spaces. */
const junk = hostileString('0123456789abcdefABCDEF.:/%x ', 30);

const text = (ip: ParsedIp): string => `${ip.kind()} ${ip.toNormalizedString()}`;

/** The bits of an address as a string of 0s and 1s (the oracle for prefix matching). */
function bits(ip: ParsedIp): string {
  return ip.toByteArray().map((b) => b.toString(2).padStart(8, '0')).join('');
}

describe('IP addresses (property-based)', () => {
  it('answers any text with an address or null, never an exception', () => {
    fc.assert(fc.property(fc.oneof(anyIpText, junk), (text) => {
      const ip = parseIp(text);
      expect(ip === null || ip.kind() === 'ipv4' || ip.kind() === 'ipv6').toBe(true);
    }), fuzz(600));
  });

  it('reads every dotted-quad and IPv6 address, and parse → print → parse is stable', () => {
    fc.assert(fc.property(fc.oneof(v4, v6, fc.mixedCase(v6)), (text) => {
      const ip = parseIp(text);
      expect(ip, text).not.toBeNull();
      const again = parseIp(ip!.toString());
      expect(again!.kind()).toBe(ip!.kind());
      expect(again!.toNormalizedString()).toBe(ip!.toNormalizedString());
    }), fuzz(500));
  });

  it('reads as IPv4 exactly the strict dotted quads, each as ipaddr.js reads it', () => {
    const quadish = hostileString('0123456789.', 17);
    const edges = fc.constantFrom('01.2.3.4', '1.2.3.04', '1.2.3.00', '256.1.1.1', '1.2.3.255', '1.2.3.1000', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.',
      '0.0.0.0', '255.255.255.255', '1.2.3.4 ', '١.2.3.4', '1.2.3.4\n');
    fc.assert(fc.property(fc.oneof(v4, fc.ipV4Extended(), quadish, edges), (t) => {
      const ip = parseIp(t);
      if (IPV4_STRICT.test(t)) expect(ip !== null && text(ip), t).toBe(text(ipaddr.IPv4.parse(t)));
      else expect(ip === null || ip.kind() === 'ipv6', t).toBe(true);
    }), fuzz(2000));
  });

  it('reads an IPv4-mapped IPv6 address as the IPv4 address', () => {
    fc.assert(fc.property(v4, fc.mixedCase(fc.constant('ffff')), (a, ffff) => {
      expect(parseIp(`::${ffff}:${a}`)!.toString()).toBe(parseIp(a)!.toString());
    }), fuzz(600));
  });

  it('reads an IPv6 address with an embedded dotted quad as the same address as with its two hex groups (regression)', () => {
    const head = fc.constantFrom('::', '::ffff:', '1::', '2001:db8::', '::ffff:0:', '64:ff9b::', 'fe80::1:');
    fc.assert(fc.property(head, v4, (h, quad) => {
      const [a, b, c, d] = quad.split('.').map(Number) as [number, number, number, number];
      const hex = `${h}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
      const dotted = parseIp(`${h}${quad}`);
      expect(dotted, `${h}${quad}`).not.toBeNull();
      expect(text(dotted!), `${h}${quad}`).toBe(text(parseIp(hex)!));
      const cidr = parseCidr(`${h}${quad}/120`);
      const cidrHex = parseCidr(`${hex}/120`);
      if (typeof cidr === 'string' || typeof cidrHex === 'string') throw new Error(`${String(cidr)} ${String(cidrHex)}`);
      expect([text(cidr.address), cidr.prefix]).toEqual([text(cidrHex.address), cidrHex.prefix]);
    }), fuzz(500));
  });

  it('refuses every legacy IPv4 form (octal, hex, fewer parts) that is not the dotted quad it reads as', () => {
    fc.assert(fc.property(fc.ipV4Extended(), (text) => {
      const ip = parseIp(text);
      if (ip !== null) {
        expect(IPV4_STRICT.test(text), text).toBe(true);
        expect(ip.toString()).toBe(text);
      }
    }), fuzz(500));
  });
});

describe('CIDR lists (property-based)', () => {
  const prefixFor = (addr: string): fc.Arbitrary<number> => fc.integer({ min: 0, max: addr.includes(':') ? 128 : 32 });
  const cidrText = fc.oneof(v4, v6).chain((a) => prefixFor(a).map((p) => `${a}/${p}`));

  it('answers any text with a CIDR or a reason, never an exception', () => {
    fc.assert(fc.property(fc.oneof(cidrText, anyIpText, junk, fc.tuple(anyIpText, junk).map(([a, j]) => `${a}/${j}`)), (text) => {
      const cidr = parseCidr(text);
      expect(typeof cidr === 'string' || typeof cidr.prefix === 'number').toBe(true);
    }), fuzz(600));
  });

  it('prints a parsed CIDR back as address/prefix, and parse → print → parse is stable', () => {
    fc.assert(fc.property(fc.oneof(cidrText, v4.chain((a) => fc.integer({ min: 96, max: 128 }).map((p) => `::ffff:${a}/${p}`))), (text) => {
      const cidr = parseCidr(text);
      if (typeof cidr === 'string') throw new Error(cidr);
      const printed = `${cidr.address.toString()}/${cidr.prefix}`;
      const again = parseCidr(printed);
      if (typeof again === 'string') throw new Error(again);
      expect(again.address.toNormalizedString()).toBe(cidr.address.toNormalizedString());
      expect(again.prefix).toBe(cidr.prefix);
      expect(again.address.kind()).toBe(cidr.address.kind());
    }), fuzz(500));
  });

  it('matches an address exactly when its first prefix bits equal the range’s', () => {
    const family = fc.constantFrom('ipv4' as const, 'ipv6' as const);
    const pair = family.chain((f) => f === 'ipv4'
      ? fc.tuple(v4, v4, fc.integer({ min: 0, max: 32 }), fc.nat(32))
      : fc.tuple(v6, v6, fc.integer({ min: 0, max: 128 }), fc.nat(128)));
    fc.assert(fc.property(pair, ([rangeText, other, prefix, keep]) => {
      const range = parseIp(rangeText)!;
      fc.pre(range.kind() === parseIp(other)!.kind());
      // The candidate shares a random number of leading bits with the range, so both answers are common.
      const rb = bits(range);
      const ob = bits(parseIp(other)!);
      const cb = rb.slice(0, keep) + ob.slice(keep);
      const bytes = cb.match(/.{8}/g)!.map((b) => parseInt(b, 2));
      const candidate = ipaddr.fromByteArray(bytes) as ParsedIp;
      fc.pre(parseIp(candidate.toString())?.kind() === range.kind());
      const matcher = compileIpAllowlist([`${rangeText}/${prefix}`]);
      expect(matcher(candidate)).toBe(cb.slice(0, prefix) === rb.slice(0, prefix));
    }), fuzz(500));
  });

  it('refuses any CIDR with a prefix out of range or not in plain decimal', () => {
    const badPrefix = fc.oneof(
      fc.integer({ min: 129, max: 100000 }).map(String),
      fc.integer({ min: 0, max: 32 }).map((n) => `0${n}`),
      fc.constantFrom('', '+1', '-1', ' 8', '8 ', '1e1', '0x10', '８'),
    );
    fc.assert(fc.property(fc.oneof(v4, v6), badPrefix, (a, p) => {
      expect(typeof parseCidr(`${a}/${p}`)).toBe('string');
    }), fuzz(600));
    fc.assert(fc.property(v4, fc.integer({ min: 33, max: 128 }), (a, p) => {
      expect(typeof parseCidr(`${a}/${p}`)).toBe('string');
    }), fuzz(500));
  });
});
