import { describe, expect, it } from 'vitest';
import { createClientIpResolver } from './client-ip.js';

/** The resolved address as text, or null. */
function ip(resolve: ReturnType<typeof createClientIpResolver>, peer: string | undefined, xff?: string | string[]): string | null {
  return resolve(peer, xff)?.toString() ?? null;
}

describe('createClientIpResolver without trusted proxies', () => {
  const resolve = createClientIpResolver([]);

  it('answers the socket peer', () => {
    expect(ip(resolve, '203.0.113.7')).toBe('203.0.113.7');
  });

  it('reads an IPv4-mapped IPv6 peer as IPv4', () => {
    const r = resolve('::ffff:10.1.2.3', undefined);
    expect(r?.kind()).toBe('ipv4');
    expect(r?.toString()).toBe('10.1.2.3');
  });

  it('answers an IPv6 peer as IPv6', () => {
    expect(ip(resolve, '2001:db8::1')).toBe('2001:db8::1');
  });

  it('ignores X-Forwarded-For', () => {
    expect(ip(resolve, '203.0.113.7', '198.51.100.1')).toBe('203.0.113.7');
  });

  it('answers null when the peer is unknown', () => {
    expect(resolve(undefined, '198.51.100.1')).toBeNull();
  });
});

describe('createClientIpResolver with trusted proxies', () => {
  const resolve = createClientIpResolver(['10.0.0.0/8']);

  it('takes the rightmost X-Forwarded-For entry when the peer is trusted', () => {
    expect(ip(resolve, '10.0.0.1', '198.51.100.1, 203.0.113.9')).toBe('203.0.113.9');
  });

  it('reads an IPv4-mapped trusted peer as trusted', () => {
    expect(ip(resolve, '::ffff:10.0.0.1', '203.0.113.9')).toBe('203.0.113.9');
  });

  it('skips several trusted hops to reach the rightmost untrusted entry', () => {
    expect(ip(resolve, '10.0.0.1', '198.51.100.1, 203.0.113.9, 10.2.2.2, 10.3.3.3')).toBe('203.0.113.9');
  });

  it('answers the leftmost entry when every hop is trusted', () => {
    expect(ip(resolve, '10.0.0.1', '10.9.9.9, 10.2.2.2')).toBe('10.9.9.9');
  });

  it('stops at an unparseable entry and answers the last trusted hop', () => {
    expect(ip(resolve, '10.0.0.1', '198.51.100.1, garbage, 10.2.2.2')).toBe('10.2.2.2');
  });

  it('answers the trusted peer when the rightmost entry is unparseable', () => {
    expect(ip(resolve, '10.0.0.1', '198.51.100.1, unknown')).toBe('10.0.0.1');
  });

  it('treats an entry with a port as unparseable', () => {
    expect(ip(resolve, '10.0.0.1', '198.51.100.1:4711')).toBe('10.0.0.1');
  });

  it('answers an untrusted peer and ignores its X-Forwarded-For', () => {
    expect(ip(resolve, '203.0.113.7', '198.51.100.1')).toBe('203.0.113.7');
  });

  it('answers the trusted peer when there is no X-Forwarded-For', () => {
    expect(ip(resolve, '10.0.0.1')).toBe('10.0.0.1');
  });

  it('reads X-Forwarded-For given as several header values as one list', () => {
    expect(ip(resolve, '10.0.0.1', ['198.51.100.1', '203.0.113.9, 10.2.2.2'])).toBe('203.0.113.9');
  });

  it('walks across header values when the last value holds only trusted hops', () => {
    expect(ip(resolve, '10.0.0.1', ['198.51.100.1', '10.2.2.2'])).toBe('198.51.100.1');
  });

  it('reads an IPv4-mapped X-Forwarded-For entry as IPv4', () => {
    const r = resolve('10.0.0.1', '::ffff:198.51.100.1');
    expect(r?.kind()).toBe('ipv4');
    expect(r?.toString()).toBe('198.51.100.1');
  });

  it('answers null when the peer is unknown', () => {
    expect(resolve(undefined, '198.51.100.1')).toBeNull();
  });
});
