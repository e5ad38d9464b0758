import type { KeyStore } from '../store/types.js';

/** Where a serving process is in its life, as readiness reports it. */
export type Phase = 'starting' | 'ready' | 'draining';

/**
 * Whether this process should get traffic, and if not why: the one answer of `/readyz` on the
 * status and admin ports. Not ready while the store is not loaded (or, on Redis, not
 * connected), while the listeners are starting, while draining, and whenever it cannot confirm
 * that its view of the store is within `maxStalenessMs` (a hung or unreachable Redis: the feed
 * has not answered since).
 */
export class Readiness {
  phase: Phase = 'starting';
  /** Set once the store is open. */
  store: KeyStore | null = null;

  constructor(private readonly driver: 'embedded' | 'redis', private readonly maxStalenessMs: number) {}

  /** Null when ready, else the reason, for people: `store view stale: last confirmed 31.2 s ago (bound 30 s)`. */
  reason(now = Date.now()): string | null {
    if (this.phase === 'draining') return 'draining';
    const store = this.store;
    if (store === null) return this.driver === 'redis' ? 'store not connected' : 'store not loaded';
    if (this.phase === 'starting') return 'starting';
    if (!store.healthy()) return 'store unavailable';
    const confirmed = store.feedConfirmedAt();
    if (confirmed === 0) return 'store not connected';
    const age = now - confirmed;
    if (age > this.maxStalenessMs) return `store view stale: last confirmed ${(age / 1000).toFixed(1)} s ago (bound ${this.maxStalenessMs / 1000} s)`;
    return null;
  }
}
