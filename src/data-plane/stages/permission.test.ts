import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../domain/api-key.js';
import { compilePolicy } from '../../domain/compiled-policy.js';
import type { Owner } from '../../domain/entities.js';
import type { AdmittedContext } from '../pipeline/context.js';
import { permissionStage } from './permission.js';
import { keyRecord as baseKeyRecord } from '../../../test/support/fixtures.js';

function keyRecord(over: Partial<KeyRecord> = {}): KeyRecord {
  return baseKeyRecord({ permissions: [], secretHash: 'h', ...over });
}

function owner(permissions: string[]): Owner {
  return { id: 'own_1', name: 'o', status: 'active', permissions, createdAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:00:00.000Z', version: 1 };
}

/** The stage's answer for a route requiring `permission`, for a key holding `keyPerms` (and an owner holding `ownerPerms`). */
function check(permission: string, keyPerms: string[], ownerPerms: string[] | null = null) {
  const own = ownerPerms === null ? null : owner(ownerPerms);
  const ctx = { policy: compilePolicy(keyRecord({ permissions: keyPerms, ownerId: own ? own.id : null }), own) } as unknown as AdmittedContext;
  return permissionStage(permission)(ctx);
}

describe('permissionStage', () => {
  it('admits a key holding the exact permission', () => {
    expect(check('events.create', ['events.create'])).toBeNull();
  });

  it('refuses a key holding only a different permission', () => {
    expect(check('events.read', ['events.create'])).toBe('PERMISSION_DENIED');
  });

  it('refuses a key holding no permissions', () => {
    expect(check('events.create', [])).toBe('PERMISSION_DENIED');
  });

  it('admits a key holding *', () => {
    expect(check('profiles.delete', ['*'])).toBeNull();
  });

  it('admits a key holding the module pattern', () => {
    expect(check('events.read', ['events.*'])).toBeNull();
  });

  it('refuses a key whose module pattern names another module', () => {
    expect(check('profiles.read', ['events.*'])).toBe('PERMISSION_DENIED');
  });

  it('admits a key holding the action pattern', () => {
    expect(check('profiles.read', ['*.read'])).toBeNull();
  });

  it('refuses a key whose action pattern names another action', () => {
    expect(check('profiles.write', ['*.read'])).toBe('PERMISSION_DENIED');
  });

  it('does not treat a permission name as a prefix of a longer one', () => {
    expect(check('events.create_batch', ['events.create'])).toBe('PERMISSION_DENIED');
  });

  it('admits when both the key and its owner grant the permission', () => {
    expect(check('events.create', ['events.*'], ['events.create'])).toBeNull();
  });

  it('refuses when the key grants the permission but its owner does not', () => {
    expect(check('profiles.read', ['*'], ['events.create'])).toBe('PERMISSION_DENIED');
  });

  it('refuses when the owner grants the permission but the key does not', () => {
    expect(check('profiles.read', ['events.create'], ['*'])).toBe('PERMISSION_DENIED');
  });

  it('intersects a key module pattern with an owner action pattern', () => {
    expect(check('events.read', ['events.*'], ['*.read'])).toBeNull();
    expect(check('events.create', ['events.*'], ['*.read'])).toBe('PERMISSION_DENIED');
    expect(check('profiles.read', ['events.*'], ['*.read'])).toBe('PERMISSION_DENIED');
  });

  it('refuses everything when the owner holds no permissions', () => {
    expect(check('events.create', ['*'], [])).toBe('PERMISSION_DENIED');
  });
});
