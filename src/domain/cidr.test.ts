import { describe, expect, it } from 'vitest';
import { compileIpAllowlist, parseCidr, parseIp, type Cidr, type ParsedIp } from './cidr.js';

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (typeof parsed === 'string') throw new Error(`expected ${text} to parse: ${parsed}`);
  return parsed;
}

function ip(text: string): ParsedIp {
  const parsed = parseIp(text);
  if (parsed === null) throw new Error(`expected ${text} to parse as an IP`);
  return parsed;
}

describe('parseCidr', () => {
  it.each([
    ['010.0.0.1'],
    ['10.1'],
    ['10.0.0.0/33'],
    ['::/129'],
    ['fe80::1%eth0'],
    ['1.2.3.4/'],
    ['1.2.3.4/08'],
    ['256.0.0.1'],
    ['abc'],
    [''],
    ['1.2.3.4 '],
    [' 1.2.3.4'],
    ['1.2.3.4/-1'],
    ['1.2.3.4/+8'],
    ['1.2.3.4/8/8'],
    ['0x0a.0.0.1'],
    ['1.2.3'],
    ['1.2.3.4.5'],
    ['2001:db8::/032'],
    ['::ffff:010.0.0.1'],
    [':::1'],
    ['1:2:3:4:5:6:7:8:9'],
    ['/8'],
  ])('rejects %j with a reason naming it', (text) => {
    const parsed = parseCidr(text);
    expect(typeof parsed).toBe('string');
    expect(parsed).toContain(`"${text}"`);
  });

  it('accepts 10.0.0.0/8 as an IPv4 /8', () => {
    const c = cidr('10.0.0.0/8');
    expect(c.address.kind()).toBe('ipv4');
    expect(c.address.toString()).toBe('10.0.0.0');
    expect(c.prefix).toBe(8);
    expect(c.text).toBe('10.0.0.0/8');
  });

  it('accepts 2001:db8::/32 as an IPv6 /32', () => {
    const c = cidr('2001:db8::/32');
    expect(c.address.kind()).toBe('ipv6');
    expect(c.prefix).toBe(32);
  });

  it('reads a bare IPv4 address as a /32', () => {
    const c = cidr('1.2.3.4');
    expect(c.address.kind()).toBe('ipv4');
    expect(c.prefix).toBe(32);
  });

  it('reads a bare IPv6 address as a /128', () => {
    const c = cidr('::1');
    expect(c.address.kind()).toBe('ipv6');
    expect(c.prefix).toBe(128);
  });

  it('accepts the catch-all ranges ::/0 and 0.0.0.0/0', () => {
    expect(cidr('::/0').prefix).toBe(0);
    expect(cidr('::/0').address.kind()).toBe('ipv6');
    expect(cidr('0.0.0.0/0').prefix).toBe(0);
    expect(cidr('0.0.0.0/0').address.kind()).toBe('ipv4');
  });

  it('accepts the extreme prefix lengths /32 and /128', () => {
    expect(cidr('1.2.3.4/32').prefix).toBe(32);
    expect(cidr('2001:db8::1/128').prefix).toBe(128);
  });

  it('reads the IPv4-mapped range ::ffff:10.0.0.0/104 as the IPv4 range 10.0.0.0/8', () => {
    const c = cidr('::ffff:10.0.0.0/104');
    expect(c.address.kind()).toBe('ipv4');
    expect(c.address.toString()).toBe('10.0.0.0');
    expect(c.prefix).toBe(8);
    expect(c.text).toBe('::ffff:10.0.0.0/104');
  });

  it('accepts upper-case hexadecimal in IPv6 addresses', () => {
    expect(cidr('2001:DB8::/32').prefix).toBe(32);
  });
});

describe('parseIp', () => {
  it('reads ::ffff:10.1.2.3 as the IPv4 address 10.1.2.3', () => {
    const a = ip('::ffff:10.1.2.3');
    expect(a.kind()).toBe('ipv4');
    expect(a.toString()).toBe('10.1.2.3');
  });

  it('reads the hex form of a mapped address as IPv4 too', () => {
    const a = ip('::ffff:a01:203');
    expect(a.kind()).toBe('ipv4');
    expect(a.toString()).toBe('10.1.2.3');
  });

  it('reads plain IPv4 and IPv6 addresses', () => {
    expect(ip('192.168.1.1').kind()).toBe('ipv4');
    expect(ip('2001:db8::1').kind()).toBe('ipv6');
  });

  it.each([['010.0.0.1'], ['10.1'], ['fe80::1%eth0'], ['256.1.1.1'], ['abc'], [''], ['10.0.0.0/8'], ['1.2.3.4 ']])(
    'refuses %j',
    (text) => {
      expect(parseIp(text)).toBeNull();
    },
  );
});

describe('compileIpAllowlist', () => {
  it('allows every address when the list is empty', () => {
    const allowed = compileIpAllowlist([]);
    expect(allowed(ip('1.2.3.4'))).toBe(true);
    expect(allowed(ip('2001:db8::1'))).toBe(true);
  });

  it('allows addresses inside an IPv4 range and refuses those outside', () => {
    const allowed = compileIpAllowlist(['10.0.0.0/8', '192.168.1.0/24']);
    expect(allowed(ip('10.0.0.0'))).toBe(true);
    expect(allowed(ip('10.255.255.255'))).toBe(true);
    expect(allowed(ip('192.168.1.77'))).toBe(true);
    expect(allowed(ip('11.0.0.1'))).toBe(false);
    expect(allowed(ip('9.255.255.255'))).toBe(false);
    expect(allowed(ip('192.168.2.1'))).toBe(false);
  });

  it('treats a bare address as exactly that address', () => {
    const allowed = compileIpAllowlist(['1.2.3.4']);
    expect(allowed(ip('1.2.3.4'))).toBe(true);
    expect(allowed(ip('1.2.3.5'))).toBe(false);
  });

  it('allows addresses inside an IPv6 range and refuses those outside', () => {
    const allowed = compileIpAllowlist(['2001:db8::/32']);
    expect(allowed(ip('2001:db8::1'))).toBe(true);
    expect(allowed(ip('2001:db8:ffff:ffff::1'))).toBe(true);
    expect(allowed(ip('2001:db9::1'))).toBe(false);
    expect(allowed(ip('::1'))).toBe(false);
  });

  it('matches a mapped IPv6 client address against an IPv4 range', () => {
    const allowed = compileIpAllowlist(['10.0.0.0/8']);
    expect(allowed(ip('::ffff:10.1.2.3'))).toBe(true);
    expect(allowed(ip('::ffff:11.1.2.3'))).toBe(false);
  });

  it('matches an IPv4 client against a range written in mapped IPv6 form', () => {
    const allowed = compileIpAllowlist(['::ffff:10.0.0.0/104']);
    expect(allowed(ip('10.9.8.7'))).toBe(true);
    expect(allowed(ip('11.9.8.7'))).toBe(false);
  });

  it('does not let an IPv4 address match an IPv6-only list', () => {
    const allowed = compileIpAllowlist(['2001:db8::/32', '::/0']);
    expect(allowed(ip('10.1.2.3'))).toBe(false);
    expect(allowed(ip('::ffff:10.1.2.3'))).toBe(false);
  });

  it('does not let an IPv6 address match an IPv4-only list', () => {
    const allowed = compileIpAllowlist(['0.0.0.0/0']);
    expect(allowed(ip('2001:db8::1'))).toBe(false);
    expect(allowed(ip('1.2.3.4'))).toBe(true);
  });

  it('throws on an entry that is not a valid CIDR', () => {
    expect(() => compileIpAllowlist(['10.1'])).toThrow();
  });
});
