import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../domain/api-key.js';
import { compilePolicy } from '../../domain/compiled-policy.js';
import type { Owner } from '../../domain/entities.js';
import type { AdmittedContext } from '../pipeline/context.js';
import { keyStatusStage } from './key-status.js';
import { keyRecord as baseKeyRecord } from '../../../test/support/fixtures.js';

const NOW = Date.parse('2030-01-01T00:00:00.000Z');

function keyRecord(over: Partial<KeyRecord> = {}): KeyRecord {
  return baseKeyRecord({ secretHash: 'h', ...over });
}

function owner(status: Owner['status']): Owner {
  return { id: 'own_1', name: 'o', status, permissions: ['*'], createdAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:00:00.000Z', version: 1 };
}

function run(rec: KeyRecord, own: Owner | null = null, now = NOW) {
  const ctx = { policy: compilePolicy(rec, own), now } as unknown as AdmittedContext;
  return keyStatusStage()(ctx);
}

describe('keyStatusStage', () => {
  it('lets an active key through', () => {
    expect(run(keyRecord())).toBeNull();
  });

  it('lets a key with a future expiry through', () => {
    expect(run(keyRecord({ expiresAt: new Date(NOW + 1000).toISOString() }))).toBeNull();
  });

  it('lets a key whose owner is active through', () => {
    expect(run(keyRecord({ ownerId: 'own_1' }), owner('active'))).toBeNull();
  });

  it('refuses a disabled key with KEY_DISABLED', () => {
    expect(run(keyRecord({ enabled: false }))).toBe('KEY_DISABLED');
  });

  it('refuses a key whose owner is disabled with KEY_SUSPENDED', () => {
    expect(run(keyRecord({ ownerId: 'own_1' }), owner('disabled'))).toBe('KEY_SUSPENDED');
  });

  it('refuses an expired key with KEY_EXPIRED', () => {
    expect(run(keyRecord({ expiresAt: new Date(NOW - 1000).toISOString() }))).toBe('KEY_EXPIRED');
  });

  it('refuses a key at the very instant it expires', () => {
    expect(run(keyRecord({ expiresAt: new Date(NOW).toISOString() }))).toBe('KEY_EXPIRED');
  });

  it('judges expiry at the request time, not at compile time', () => {
    const rec = keyRecord({ expiresAt: new Date(NOW + 1000).toISOString() });
    expect(run(rec, null, NOW)).toBeNull();
    expect(run(rec, null, NOW + 1000)).toBe('KEY_EXPIRED');
  });

  it('answers KEY_DISABLED before the owner suspension', () => {
    expect(run(keyRecord({ enabled: false, ownerId: 'own_1' }), owner('disabled'))).toBe('KEY_DISABLED');
  });

  it('answers KEY_SUSPENDED before the expiry', () => {
    expect(run(keyRecord({ ownerId: 'own_1', expiresAt: new Date(NOW - 1000).toISOString() }), owner('disabled'))).toBe('KEY_SUSPENDED');
  });
});

describe('keyStatusStage and inactivity', () => {
  it('refuses a key expired for inactivity with KEY_EXPIRED and a message saying so, whatever its expiresAt', () => {
    const result = run(keyRecord({ inactiveSince: new Date(NOW + 86_400_000).toISOString(), expiresAt: null }));
    expect(result).toMatchObject({ code: 'KEY_EXPIRED', status: 403 });
    expect((result as { message: string }).message).toMatch(/unused/);
  });

  it('lets the owner\'s suspension and a disable win over inactivity', () => {
    expect(run(keyRecord({ inactiveSince: new Date(NOW).toISOString(), enabled: false }))).toBe('KEY_DISABLED');
    expect(run(keyRecord({ inactiveSince: new Date(NOW).toISOString(), ownerId: 'own_1' }), owner('disabled'))).toBe('KEY_SUSPENDED');
  });
});
