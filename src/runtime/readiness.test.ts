import { describe, expect, it } from 'vitest';
import type { KeyStore } from '../store/types.js';
import { Readiness } from './readiness.js';

/** A store whose health and feed confirmation the test sets. */
function fakeStore(state: { healthy: boolean; confirmedAt: number }): KeyStore {
  return { healthy: () => state.healthy, feedConfirmedAt: () => state.confirmedAt } as unknown as KeyStore;
}

describe('Readiness', () => {
  const now = 1_000_000;

  it('names the store as not loaded (embedded) or not connected (redis) before it opens', () => {
    expect(new Readiness('embedded', 30_000).reason(now)).toBe('store not loaded');
    expect(new Readiness('redis', 30_000).reason(now)).toBe('store not connected');
  });

  it('is "starting" once the store is open until the runtime says ready, then ready while the view is fresh', () => {
    const r = new Readiness('embedded', 30_000);
    r.store = fakeStore({ healthy: true, confirmedAt: now - 10 });
    expect(r.reason(now)).toBe('starting');
    r.phase = 'ready';
    expect(r.reason(now)).toBeNull();
  });

  it('says why when the store is unhealthy, never confirmed, or confirmed longer ago than maxStalenessMs', () => {
    const state = { healthy: false, confirmedAt: now };
    const r = new Readiness('redis', 30_000);
    r.store = fakeStore(state);
    r.phase = 'ready';
    expect(r.reason(now)).toBe('store unavailable');
    state.healthy = true;
    state.confirmedAt = 0;
    expect(r.reason(now)).toBe('store not connected');
    state.confirmedAt = now - 30_000;
    expect(r.reason(now)).toBeNull();
    state.confirmedAt = now - 31_200;
    expect(r.reason(now)).toBe('store view stale: last confirmed 31.2 s ago (bound 30 s)');
  });

  it('is "draining" once shutdown starts, whatever the store says', () => {
    const r = new Readiness('redis', 30_000);
    r.store = fakeStore({ healthy: false, confirmedAt: 0 });
    r.phase = 'draining';
    expect(r.reason(now)).toBe('draining');
  });
});
