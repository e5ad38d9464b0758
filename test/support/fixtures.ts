// Shared test fixtures (excluded from the build).
import type { KeyRecord } from '../../src/domain/api-key.js';

export const TEST_WORKSPACE = '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';

/** A plain active workspace key with every permission; override any field. */
export function keyRecord(over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: 'key_1', workspaceId: TEST_WORKSPACE, name: 'k', description: '', groupId: null, ownerId: null,
    type: 'workspace', environment: 'live', prefix: 'kg_live_abcd', enabled: true,
    permissions: ['*'], permissionsLocked: false, ipAllowlist: [], eventAllowlist: [], eventDenylist: [],
    profileAttributeAllowlist: [], basicAuth: false, simpleAuth: { enabled: false, salt: null },
    rateLimit: null, quota: null, createdAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:00:00.000Z',
    expiresAt: null, version: 1, secretHash: 'unset', retiredSecrets: [], seq: 1,
    ...over,
  };
}
