import { randomBytes } from 'node:crypto';
import { SignJWT, importJWK, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import type { KeyType } from '../domain/api-key.js';
import type { Environment } from '../domain/secret.js';
import type { SigningAlgorithm, SigningKeyRecord } from '../domain/signing-key.js';

export interface TokenClaims {
  /** The key the token was minted from. */
  key: string;
  /** The profile, for tokens minted with simple authentication. */
  profile: string | null;
  ws: string;
  typ: KeyType;
  env: Environment;
  kv: number;
  /** The fingerprint of the secret it was minted from (see `secretFingerprint`). */
  sfp: string;
}

export interface VerifiedToken {
  keyId: string;
  profile: string | null;
  secretFingerprint: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

/** Tokens whose `exp` has passed by up to this much are still accepted: clocks differ. */
export const CLOCK_SKEW_SECONDS = 30;
const ALGORITHMS: SigningAlgorithm[] = ['EdDSA', 'ES256'];

interface Verifier { alg: SigningAlgorithm; key: CryptoKey | Uint8Array }

/**
 * Mints and verifies the gateway's JWTs with the store's signing keys. Verification trusts
 * only keys it holds, by `kid`, with their own algorithm: `alg: none`, HMAC algorithms and
 * keys named by `jku`, `x5u` or an embedded `jwk` never verify.
 */
export class TokenService {
  private signer: { kid: string; alg: SigningAlgorithm; key: CryptoKey | Uint8Array } | null = null;
  private verifiers = new Map<string, Verifier>();
  private jwks = '{"keys":[]}';
  /** Bumped whenever the key set changes, so a refusal cached under the old set is retried. */
  generation = 0;

  constructor(private readonly issuer: string, readonly ttlSeconds: number) {}

  get ready(): boolean {
    return this.signer !== null;
  }

  async setKeys(records: readonly SigningKeyRecord[], now = Date.now()): Promise<void> {
    const verifiers = new Map<string, Verifier>();
    const published: Record<string, unknown>[] = [];
    let signer: TokenService['signer'] = null;
    for (const r of records) {
      // A retired key verifies until the last token it signed has expired.
      if (r.retiredAt !== null && Date.parse(r.retiredAt) + (this.ttlSeconds + CLOCK_SKEW_SECONDS) * 1000 < now) continue;
      verifiers.set(r.id, { alg: r.alg, key: await importJWK(r.publicJwk, r.alg) });
      published.push({ ...r.publicJwk, kid: r.id, alg: r.alg, use: 'sig' });
      if (r.retiredAt === null) signer = { kid: r.id, alg: r.alg, key: await importJWK(r.privateJwk, r.alg) };
    }
    this.verifiers = verifiers;
    this.signer = signer;
    this.jwks = JSON.stringify({ keys: published });
    this.generation++;
  }

  jwksJson(): string {
    return this.jwks;
  }

  async mint(claims: TokenClaims, now = Date.now()): Promise<{ token: string; expiresIn: number }> {
    const signer = this.signer;
    if (!signer) throw new Error('no signing key');
    const iat = Math.floor(now / 1000);
    const payload: JWTPayload = { ws: claims.ws, typ: claims.typ, env: claims.env, kv: claims.kv, key: claims.key, sfp: claims.sfp };
    if (claims.profile !== null) payload.prof = claims.profile;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(claims.profile ?? claims.key)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(signer.key);
    return { token, expiresIn: this.ttlSeconds };
  }

  /** The token's claims when its signature, issuer, `exp` and `nbf` hold; null otherwise. */
  async verify(token: string): Promise<VerifiedToken | null> {
    try {
      const { payload } = await jwtVerify(token, (header) => {
        const v = header.kid === undefined ? undefined : this.verifiers.get(header.kid);
        if (!v || header.alg !== v.alg) throw new Error('unknown signing key');
        return v.key;
      }, {
        issuer: this.issuer,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'key', 'sfp'],
        clockTolerance: CLOCK_SKEW_SECONDS,
      });
      const { key, sfp, prof, exp } = payload as JWTPayload & { key?: unknown; sfp?: unknown; prof?: unknown };
      if (typeof key !== 'string' || typeof sfp !== 'string' || (prof !== undefined && typeof prof !== 'string') || typeof exp !== 'number') return null;
      return { keyId: key, profile: typeof prof === 'string' ? prof : null, secretFingerprint: sfp, expiresAt: exp * 1000 };
    } catch {
      return null;
    }
  }
}
