import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../domain/api-key.js';
import { parseIp } from '../../domain/cidr.js';
import { compilePolicy } from '../../domain/compiled-policy.js';
import type { AdmittedContext } from '../pipeline/context.js';
import { ipAllowlistStage } from './ip-allowlist.js';

function keyRecord(ipAllowlist: string[]): KeyRecord {
  return {
    id: 'key_1', workspaceId: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', name: 'k', description: '', groupId: null, ownerId: null,
    type: 'workspace', environment: 'live', prefix: 'kg_live_abcd', enabled: true,
    permissions: ['*'], permissionsLocked: false, ipAllowlist, eventAllowlist: [], eventDenylist: [],
    profileAttributeAllowlist: [], basicAuth: false, simpleAuth: { enabled: false, salt: null },
    rateLimit: null, quota: null, createdAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:00:00.000Z',
    expiresAt: null, version: 1, secretHash: 'h', retiredSecrets: [], seq: 1,
  };
}

function check(allowlist: string[], client: string | null) {
  const ctx = {
    policy: compilePolicy(keyRecord(allowlist), null),
    clientIp: client === null ? null : parseIp(client),
  } as unknown as AdmittedContext;
  if (client !== null && ctx.clientIp === null) throw new Error(`bad test address ${client}`);
  return ipAllowlistStage()(ctx);
}

describe('ipAllowlistStage', () => {
  it('lets any client through when the key has no allowlist', () => {
    expect(check([], '203.0.113.7')).toBeNull();
  });

  it('lets an unknown client through when the key has no allowlist', () => {
    expect(check([], null)).toBeNull();
  });

  it('admits a client inside an allowed range', () => {
    expect(check(['10.0.0.0/8', '192.0.2.1'], '10.20.30.40')).toBeNull();
  });

  it('admits a client equal to an allowed bare address', () => {
    expect(check(['10.0.0.0/8', '192.0.2.1'], '192.0.2.1')).toBeNull();
  });

  it('refuses a client outside every allowed range', () => {
    expect(check(['10.0.0.0/8', '192.0.2.1'], '192.0.2.2')).toBe('IP_NOT_ALLOWED');
  });

  it('refuses an unknown client when the key has an allowlist', () => {
    expect(check(['10.0.0.0/8'], null)).toBe('IP_NOT_ALLOWED');
  });

  it('admits an IPv6 client inside an allowed IPv6 range', () => {
    expect(check(['2001:db8::/32'], '2001:db8:1::5')).toBeNull();
  });

  it('refuses an IPv6 client against an IPv4-only allowlist', () => {
    expect(check(['10.0.0.0/8'], '2001:db8::1')).toBe('IP_NOT_ALLOWED');
  });

  it('admits an IPv4-mapped client against the IPv4 range it maps to', () => {
    expect(check(['10.0.0.0/8'], '::ffff:10.1.2.3')).toBeNull();
  });
});
