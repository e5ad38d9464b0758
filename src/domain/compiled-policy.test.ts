import { describe, expect, it } from 'vitest';
import { keyRecord } from '../../test/support/fixtures.js';
import { parseIp } from './cidr.js';
import { compilePolicy } from './compiled-policy.js';

describe('compilePolicy', () => {
  it('shares compiled matchers between keys with equal lists, and keeps them apart when the lists differ', () => {
    const a = compilePolicy(keyRecord({ id: 'key_a', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8'], eventAllowlist: ['page.*'] }), null);
    const b = compilePolicy(keyRecord({ id: 'key_b', permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8'], eventAllowlist: ['page.*'] }), null);
    const c = compilePolicy(keyRecord({ id: 'key_c', permissions: ['events.create'], ipAllowlist: ['192.168.0.0/16'], eventAllowlist: ['cart.*'] }), null);
    expect(a.allows).toBe(b.allows);
    expect(a.ipAllowed).toBe(b.ipAllowed);
    expect(a.eventAllowed).toBe(b.eventAllowed);
    expect(a.allows).not.toBe(c.allows);
    expect(c.allows('events.create')).toBe(true);
    expect(c.allows('events.read')).toBe(false);
    expect(c.ipAllowed(parseIp('10.1.2.3')!)).toBe(false);
    expect(a.ipAllowed(parseIp('10.1.2.3')!)).toBe(true);
    expect(c.eventAllowed!('page.view')).toBe(false);
  });

  it("keeps an owner's bound apart from the same key list without an owner", () => {
    const rec = keyRecord({ permissions: ['events.*'] });
    const alone = compilePolicy(rec, null);
    const bound = compilePolicy(rec, { id: 'own_1', name: 'o', status: 'active', permissions: ['events.read'], createdAt: rec.createdAt, updatedAt: rec.createdAt, version: 1 });
    expect(alone.allows('events.create')).toBe(true);
    expect(bound.allows('events.create')).toBe(false);
    expect(bound.allows('events.read')).toBe(true);
  });

  it('answers the status from its own fields', () => {
    const now = Date.parse('2026-01-01T00:00:00.000Z');
    expect(compilePolicy(keyRecord({ expiresAt: '2025-12-31T00:00:00.000Z' }), null).status(now)).toBe('expired');
    expect(compilePolicy(keyRecord({ enabled: false, expiresAt: null }), null).status(now)).toBe('disabled');
    expect(compilePolicy(keyRecord({ expiresAt: null }), null).status(now)).toBe('active');
  });
});
