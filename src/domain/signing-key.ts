// Keys the gateway signs its short-lived tokens with. The private half lives in the store
// and in gateway memory only: no admin response, log or token ever carries it.

export type SigningAlgorithm = 'EdDSA' | 'ES256';

export interface SigningKeyRecord {
  /** The JWS `kid`. */
  id: string;
  alg: SigningAlgorithm;
  publicJwk: Record<string, unknown>;
  privateJwk: Record<string, unknown>;
  createdAt: string;
  /** When it stopped signing; it still verifies (and is published) until its last token expires. */
  retiredAt: string | null;
  /** A version for optimistic concurrency, like every other record. */
  version: number;
}

/** What the admin API may show of a signing key. */
export function publicSigningKey(k: SigningKeyRecord): { id: string; alg: SigningAlgorithm; createdAt: string; retiredAt: string | null } {
  return { id: k.id, alg: k.alg, createdAt: k.createdAt, retiredAt: k.retiredAt };
}
