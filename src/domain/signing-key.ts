// Keys the gateway signs its short-lived tokens with. The private half lives in the store
// only sealed (AES-256-GCM, see signing-key-cipher.ts) and in gateway memory: no admin
// response, log or token ever carries it.

export type SigningAlgorithm = 'EdDSA' | 'ES256';

export interface SigningKeyRecord {
  /** The JWS `kid`: random, so no two deployments share one. */
  id: string;
  alg: SigningAlgorithm;
  publicJwk: Record<string, unknown>;
  /** The private JWK sealed with the store encryption key (`SigningKeyCipher`). */
  sealedPrivateJwk?: string;
  /** The private JWK in clear: only in records written by builds that did not seal it; rewritten sealed at start. */
  privateJwk?: Record<string, unknown>;
  createdAt: string;
  /**
   * When it starts signing. A rotated key is published (JWKS) first and signs only once
   * verifiers that cached the JWKS have fetched it again. Absent in older records: `createdAt`.
   */
  activeFrom?: string;
  /** When it stops (or stopped) signing; it still verifies (and is published) until its last token expires. */
  retiredAt: string | null;
  /** A version for optimistic concurrency, like every other record. */
  version: number;
}

export interface PublicSigningKey { id: string; alg: SigningAlgorithm; createdAt: string; activeFrom: string; retiredAt: string | null }

/** What the admin API may show of a signing key. */
export function publicSigningKey(k: SigningKeyRecord): PublicSigningKey {
  return { id: k.id, alg: k.alg, createdAt: k.createdAt, activeFrom: k.activeFrom ?? k.createdAt, retiredAt: k.retiredAt };
}

/** When the key starts signing, ms since the epoch. */
export function activeFromMs(k: SigningKeyRecord): number {
  return Date.parse(k.activeFrom ?? k.createdAt);
}

/** Whether the key signs at `now`, or will later (not retired by then). */
export function signsNowOrLater(k: SigningKeyRecord, now: number): boolean {
  return k.retiredAt === null || Date.parse(k.retiredAt) > now;
}

/**
 * The key that signs at `now`: of those active then, the one that became active last (ties:
 * the greater id), so every node holding the same records picks the same key.
 */
export function signerAt<T extends SigningKeyRecord>(keys: readonly T[], now: number): T | null {
  let best: T | null = null;
  for (const k of keys) {
    if (activeFromMs(k) > now || !signsNowOrLater(k, now)) continue;
    if (best === null || activeFromMs(k) > activeFromMs(best) || (activeFromMs(k) === activeFromMs(best) && k.id > best.id)) best = k;
  }
  return best;
}

/** The first instant after `now` at which `signerAt` may answer differently (Infinity: never). */
export function nextSignerChange(keys: readonly SigningKeyRecord[], now: number): number {
  let next = Infinity;
  for (const k of keys) {
    const from = activeFromMs(k);
    if (from > now && from < next) next = from;
    if (k.retiredAt !== null) {
      const until = Date.parse(k.retiredAt);
      if (until > now && until < next) next = until;
    }
  }
  return next;
}
