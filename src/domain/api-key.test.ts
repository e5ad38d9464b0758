import { describe, expect, it } from 'vitest';
import { deriveStatus, toApiKey, type KeyRecord } from './api-key.js';

const NOW = Date.parse('2025-06-01T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

function keyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: 'key_0123456789abcdefghijkl',
    workspaceId: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
    name: 'ios-app',
    description: 'the app',
    groupId: null,
    ownerId: null,
    type: 'profile',
    environment: 'live',
    prefix: 'kg_live_3xYz',
    enabled: true,
    permissions: ['events.create', 'profiles.*'],
    permissionsLocked: false,
    ipAllowlist: ['10.0.0.0/8'],
    eventAllowlist: [],
    eventDenylist: ['transaction.charge'],
    profileAttributeAllowlist: ['firstName'],
    basicAuth: false,
    simpleAuth: { enabled: true, salt: 'SALT-sensitive-7f3c91d2e4' },
    rateLimit: { limit: 100, windowSeconds: 1 },
    quota: { limit: 1000, period: 'month' },
    createdAt: iso(NOW - 86_400_000),
    updatedAt: iso(NOW - 3_600_000),
    expiresAt: iso(NOW + 86_400_000),
    version: 3,
    secretHash: 'HASH-current-sensitive-Qw8zLm',
    retiredSecrets: [{ hash: 'HASH-retired-sensitive-Xp4kTn', expiresAt: iso(NOW + 60_000) }],
    seq: 987654321,
    ...overrides,
  };
}

describe('deriveStatus', () => {
  it('is active for an enabled key of an active owner that has not expired', () => {
    expect(deriveStatus({ enabled: true, expiresAt: iso(NOW + 1) }, true, NOW)).toBe('active');
  });

  it('is active for a key that never expires', () => {
    expect(deriveStatus({ enabled: true, expiresAt: null }, true, NOW)).toBe('active');
  });

  it('is expired once expiresAt has passed', () => {
    expect(deriveStatus({ enabled: true, expiresAt: iso(NOW - 1) }, true, NOW)).toBe('expired');
  });

  it('counts an expiry exactly at now as expired', () => {
    expect(deriveStatus({ enabled: true, expiresAt: iso(NOW) }, true, NOW)).toBe('expired');
  });

  it('is suspended when the owner is disabled, even if the key has also expired', () => {
    expect(deriveStatus({ enabled: true, expiresAt: null }, false, NOW)).toBe('suspended');
    expect(deriveStatus({ enabled: true, expiresAt: iso(NOW - 1000) }, false, NOW)).toBe('suspended');
  });

  it('is disabled when the key is disabled, whatever the owner and expiry', () => {
    expect(deriveStatus({ enabled: false, expiresAt: null }, true, NOW)).toBe('disabled');
    expect(deriveStatus({ enabled: false, expiresAt: iso(NOW - 1000) }, true, NOW)).toBe('disabled');
    expect(deriveStatus({ enabled: false, expiresAt: null }, false, NOW)).toBe('disabled');
    expect(deriveStatus({ enabled: false, expiresAt: iso(NOW - 1000) }, false, NOW)).toBe('disabled');
  });
});

describe('toApiKey', () => {
  it('never exposes the secret hash, the retired hashes, the seq or the simple-auth salt', () => {
    const rec = keyRecord();
    const json = JSON.stringify(toApiKey(rec, true, null, NOW));
    expect(json).not.toContain(rec.secretHash);
    expect(json).not.toContain(rec.retiredSecrets[0]!.hash);
    expect(json).not.toContain(String(rec.seq));
    expect(json).not.toContain(rec.simpleAuth.salt!);
    for (const field of ['secretHash', 'retiredSecrets', 'seq', 'salt']) expect(json).not.toContain(`"${field}"`);
  });

  it('shows simpleAuth as just {enabled}', () => {
    expect(toApiKey(keyRecord(), true, null, NOW).simpleAuth).toEqual({ enabled: true });
    expect(toApiKey(keyRecord({ simpleAuth: { enabled: false, salt: null } }), true, null, NOW).simpleAuth).toEqual({ enabled: false });
  });

  it('has exactly the fields of the contract key shape, and the effective permissions it is given', () => {
    const key = toApiKey(keyRecord(), true, null, NOW, ['events.create']);
    expect(key.effectivePermissions).toEqual(['events.create']);
    expect(Object.keys(key).sort()).toEqual([
      'basicAuth', 'createdAt', 'description', 'effectivePermissions', 'environment', 'eventAllowlist', 'eventDenylist', 'expiredReason', 'expiresAt', 'groupId',
      'id', 'ipAllowlist', 'lastUsedAt', 'name', 'ownerId', 'permissions', 'permissionsLocked', 'prefix',
      'profileAttributeAllowlist', 'quota', 'rateLimit', 'rotatedAt', 'rotationDue', 'simpleAuth', 'status', 'type', 'updatedAt', 'version',
      'workspaceId',
    ]);
  });

  it('carries the public fields over unchanged', () => {
    const rec = keyRecord();
    const key = toApiKey(rec, true, '2025-06-01T11:00:00.000Z', NOW);
    expect(key).toMatchObject({
      id: rec.id,
      workspaceId: rec.workspaceId,
      name: rec.name,
      description: rec.description,
      type: 'profile',
      environment: 'live',
      prefix: 'kg_live_3xYz',
      permissions: ['events.create', 'profiles.*'],
      ipAllowlist: ['10.0.0.0/8'],
      eventDenylist: ['transaction.charge'],
      profileAttributeAllowlist: ['firstName'],
      rateLimit: { limit: 100, windowSeconds: 1 },
      quota: { limit: 1000, period: 'month' },
      expiresAt: rec.expiresAt,
      lastUsedAt: '2025-06-01T11:00:00.000Z',
      version: 3,
    });
  });

  it('derives the status from the record, the owner and the time', () => {
    expect(toApiKey(keyRecord(), true, null, NOW).status).toBe('active');
    expect(toApiKey(keyRecord(), false, null, NOW).status).toBe('suspended');
    expect(toApiKey(keyRecord({ enabled: false }), true, null, NOW).status).toBe('disabled');
    expect(toApiKey(keyRecord({ expiresAt: iso(NOW) }), true, null, NOW).status).toBe('expired');
  });

  it('returns copies, so changing the view leaves the record alone', () => {
    const rec = keyRecord();
    const key = toApiKey(rec, true, null, NOW);
    key.permissions.push('*');
    key.ipAllowlist.push('0.0.0.0/0');
    key.rateLimit!.limit = 1;
    expect(rec.permissions).toEqual(['events.create', 'profiles.*']);
    expect(rec.ipAllowlist).toEqual(['10.0.0.0/8']);
    expect(rec.rateLimit).toEqual({ limit: 100, windowSeconds: 1 });
  });
});

describe('key hygiene fields', () => {
  const DAY = 86_400_000;

  it('marks a key whose secret is older than the reminder, counting from its last rotation', () => {
    const created = iso(NOW - 100 * DAY);
    expect(toApiKey(keyRecord({ createdAt: created }), true, null, NOW, [], 90).rotationDue).toBe(true);
    expect(toApiKey(keyRecord({ createdAt: created }), true, null, NOW, [], 120).rotationDue).toBe(false);
    const rotated = toApiKey(keyRecord({ createdAt: created, rotatedAt: iso(NOW - 10 * DAY) }), true, null, NOW, [], 90);
    expect(rotated.rotationDue).toBe(false);
    expect(rotated.rotatedAt).toBe(iso(NOW - 10 * DAY));
  });

  it('says why a key is expired: its expiresAt, or inactivity even before its expiresAt', () => {
    expect(toApiKey(keyRecord({ expiresAt: iso(NOW - 1) }), true, null, NOW).expiredReason).toBe('expiresAt');
    const idle = toApiKey(keyRecord({ expiresAt: iso(NOW + DAY), inactiveSince: iso(NOW + 5 * DAY) }), true, null, NOW);
    expect(idle.status).toBe('expired');
    expect(idle.expiredReason).toBe('inactivity');
    expect(toApiKey(keyRecord(), true, null, NOW).expiredReason).toBeNull();
    expect(toApiKey(keyRecord({ inactiveSince: iso(NOW), enabled: false }), true, null, NOW).expiredReason).toBeNull();
  });
});
