import { describe, expect, it } from 'vitest';
import type { AdmittedContext } from '../pipeline/context.js';
import { profileScopeStage } from './profile-scope.js';

function check(profile: string | null, params: Record<string, string>, param = 'id') {
  const ctx = { profile, params } as unknown as AdmittedContext;
  return profileScopeStage(param)(ctx);
}

describe('profileScopeStage', () => {
  it('does not restrict a request that speaks for no profile', () => {
    expect(check(null, { id: 'someone-else' })).toBeNull();
  });

  it('does not restrict a request without a profile even when the param is malformed', () => {
    expect(check(null, { id: '%E0%A4%A' })).toBeNull();
  });

  it('admits a profile naming itself in the param', () => {
    expect(check('user-42', { id: 'user-42' })).toBeNull();
  });

  it('admits a profile naming itself percent-encoded in the param', () => {
    expect(check('user 42', { id: 'user%2042' })).toBeNull();
  });

  it('admits a profile with non-ASCII characters named percent-encoded', () => {
    expect(check('zoë', { id: 'zo%C3%AB' })).toBeNull();
  });

  it('refuses a profile naming another profile', () => {
    expect(check('user-42', { id: 'user-43' })).toBe('PROFILE_SCOPE');
  });

  it('refuses a profile whose name differs only by case', () => {
    expect(check('user-42', { id: 'USER-42' })).toBe('PROFILE_SCOPE');
  });

  it('refuses a param that is a prefix of the profile', () => {
    expect(check('user-42', { id: 'user-4' })).toBe('PROFILE_SCOPE');
  });

  it('refuses malformed percent-encoding', () => {
    expect(check('user 42', { id: 'user%2' })).toBe('PROFILE_SCOPE');
  });

  it('refuses percent-encoding that is not valid UTF-8', () => {
    expect(check('x', { id: '%E0%A4%A' })).toBe('PROFILE_SCOPE');
  });

  it('refuses when the route param is absent', () => {
    expect(check('user-42', { other: 'user-42' })).toBe('PROFILE_SCOPE');
  });

  it('reads the param the route names', () => {
    expect(check('user-42', { id: 'other', profileId: 'user-42' }, 'profileId')).toBeNull();
  });
});
