import ipaddr from 'ipaddr.js';

// Strict CIDR parsing. ipaddr.js alone accepts legacy forms (`10.1`, octal `010.0.0.1`,
// zone ids); an allowlist must mean exactly what an admin reads, so those are refused.
const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;
const PREFIX = /^(0|[1-9]\d{0,2})$/;
const TRAILING_QUAD = /:([\d.]+)$/;

/** IPv6 text, with any embedded dotted quad (`::ffff:10.0.0.1`) held to the strict IPv4 form. */
function isStrictIpv6(text: string): boolean {
  if (!IPV6_CHARS.test(text) || !text.includes(':') || !ipaddr.IPv6.isValid(text)) return false;
  const quad = TRAILING_QUAD.exec(text);
  return quad === null || !quad[1]!.includes('.') || dottedQuad(quad[1]!) !== null;
}

/**
 * ipaddr.js reads `::a.b.c.d` (and `::0.0.0.0`) as the mapped `::ffff:a.b.c.d`, so one address
 * would read two ways (`::10.0.0.1` as 10.0.0.1, `::a00:1` as IPv6). An embedded dotted quad
 * is rewritten as its two hex groups first.
 */
function parseIpv6(text: string): ipaddr.IPv6 {
  const quad = TRAILING_QUAD.exec(text);
  if (quad === null || !quad[1]!.includes('.')) return ipaddr.IPv6.parse(text);
  const [a, b, c, d] = quad[1]!.split('.').map(Number) as [number, number, number, number];
  return ipaddr.IPv6.parse(`${text.slice(0, quad.index + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`);
}

export type ParsedIp = ipaddr.IPv4 | ipaddr.IPv6;

export interface Cidr {
  readonly address: ParsedIp;
  readonly prefix: number;
  readonly text: string;
}

/**
 * Strict dotted-quad IPv4 (four decimal octets of 0-255, no leading zeros), read character by
 * character; null when `text` is not one. A request behind a trusted proxy reads one or more
 * of these from X-Forwarded-For.
 */
function dottedQuad(text: string): ipaddr.IPv4 | null {
  const n = text.length;
  if (n < 7 || n > 15) return null;
  const octets = [0, 0, 0, 0];
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part === 3) return null;
      octets[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return null;
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return null;
    } else return null;
  }
  if (digits === 0 || part !== 3) return null;
  octets[3] = value;
  return new ipaddr.IPv4(octets);
}

/** Parses one IP address strictly; IPv4-mapped IPv6 (`::ffff:10.1.2.3`) is read as IPv4. */
export function parseIp(text: string): ParsedIp | null {
  const v4 = dottedQuad(text);
  if (v4 !== null) return v4;
  if (!isStrictIpv6(text)) return null;
  const v6 = parseIpv6(text);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). Returns a reason on error. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? null : text.slice(slash + 1);
  if (addrText.includes('%')) return `"${text}": zone ids are not allowed`;
  let address: ParsedIp;
  const v4 = dottedQuad(addrText);
  if (v4 !== null) {
    address = v4;
  } else if (isStrictIpv6(addrText)) {
    address = parseIpv6(addrText);
  } else {
    return `"${text}" is not a valid IP address or CIDR (IPv4 needs four decimal octets without leading zeros)`;
  }
  const max = address.kind() === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== null) {
    if (!PREFIX.test(prefixText) || Number(prefixText) > max) return `"${text}": prefix length must be 0 to ${max}`;
    prefix = Number(prefixText);
  }
  // A mapped IPv6 range is matched as the IPv4 range it covers, since client IPs are read that way.
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && prefix >= 96) {
    return { address: (address as ipaddr.IPv6).toIPv4Address(), prefix: prefix - 96, text };
  }
  return { address, prefix, text };
}

export type IpMatcher = (ip: ParsedIp) => boolean;

/** Compiles a validated list once; an empty list allows every address. */
export function compileIpAllowlist(entries: readonly string[]): IpMatcher {
  const v4: Array<[ipaddr.IPv4, number]> = [];
  const v6: Array<[ipaddr.IPv6, number]> = [];
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (typeof cidr === 'string') throw new Error(`invalid CIDR in a validated list: ${cidr}`);
    if (cidr.address.kind() === 'ipv4') v4.push([cidr.address as ipaddr.IPv4, cidr.prefix]);
    else v6.push([cidr.address as ipaddr.IPv6, cidr.prefix]);
  }
  if (v4.length === 0 && v6.length === 0) return () => true;
  return (ip) => {
    if (ip.kind() === 'ipv4') {
      const a = ip as ipaddr.IPv4;
      for (const [range, bits] of v4) if (a.match(range, bits)) return true;
      return false;
    }
    const a = ip as ipaddr.IPv6;
    for (const [range, bits] of v6) if (a.match(range, bits)) return true;
    return false;
  };
}
