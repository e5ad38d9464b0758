import { describe, expect, it } from 'vitest';
import type { KeyRecord, KeyType } from '../../domain/api-key.js';
import { compilePolicy } from '../../domain/compiled-policy.js';
import type { AdmittedContext } from '../pipeline/context.js';
import { keyTypeStage } from './key-type.js';

function keyRecord(type: KeyType): KeyRecord {
  return {
    id: 'key_1', workspaceId: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', name: 'k', description: '', groupId: null, ownerId: null,
    type, environment: 'live', prefix: 'kg_live_abcd', enabled: true,
    permissions: ['*'], permissionsLocked: false, ipAllowlist: [], eventAllowlist: [], eventDenylist: [],
    profileAttributeAllowlist: [], basicAuth: false, simpleAuth: { enabled: false, salt: null },
    rateLimit: null, quota: null, createdAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:00:00.000Z',
    expiresAt: null, version: 1, secretHash: 'h', retiredSecrets: [], seq: 1,
  };
}

const ctxFor = (type: KeyType) => ({ policy: compilePolicy(keyRecord(type), null) }) as unknown as AdmittedContext;

describe('keyTypeStage', () => {
  it('admits a workspace key on a workspace-only route', () => {
    expect(keyTypeStage(['workspace'])(ctxFor('workspace'))).toBeNull();
  });

  it('refuses a profile key on a workspace-only route', () => {
    expect(keyTypeStage(['workspace'])(ctxFor('profile'))).toBe('KEY_TYPE_NOT_ALLOWED');
  });

  it('admits a profile key on a profile-only route', () => {
    expect(keyTypeStage(['profile'])(ctxFor('profile'))).toBeNull();
  });

  it('refuses a workspace key on a profile-only route', () => {
    expect(keyTypeStage(['profile'])(ctxFor('workspace'))).toBe('KEY_TYPE_NOT_ALLOWED');
  });

  it('admits both key types on a route allowing both', () => {
    const stage = keyTypeStage(['workspace', 'profile']);
    expect(stage(ctxFor('workspace'))).toBeNull();
    expect(stage(ctxFor('profile'))).toBeNull();
  });
});
