import { randomBytes } from 'node:crypto';
import { SignJWT, importJWK, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import type { KeyType } from '../../domain/api-key.js';
import type { Environment } from '../../domain/secret.js';
import type { SigningKeyCipher } from '../../domain/signing-key-cipher.js';
import { nextSignerChange, signerAt, signsNowOrLater, type SigningAlgorithm, type SigningKeyRecord } from '../../domain/signing-key.js';

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
/** What verifiers may cache the JWKS for, at most (`Cache-Control: max-age`). */
const JWKS_MAX_AGE_SECONDS = 300;
const ALGORITHMS: SigningAlgorithm[] = ['EdDSA', 'ES256'];

interface Verifier { alg: SigningAlgorithm; key: CryptoKey | Uint8Array }
type Signer = { kid: string; alg: SigningAlgorithm; key: CryptoKey | Uint8Array };

export interface TokenServiceOptions {
  /** The `aud` minted and required (default `keygate`). */
  audience?: string;
  /** Opens the sealed private halves of the store's records (default: none can be opened). */
  cipher?: SigningKeyCipher;
  /** How long a rotated key is published before it signs; the JWKS max-age never exceeds it. */
  rotationDelaySeconds?: number;
}

/**
 * Mints and verifies the gateway's JWTs with the store's signing keys. Verification trusts
 * only keys it holds, by `kid`, with their own algorithm: `alg: none`, HMAC algorithms and
 * keys named by `jku`, `x5u` or an embedded `jwk` never verify. A token must name this
 * gateway's issuer and audience and live no longer than `ttlSeconds`.
 */
export class TokenService {
  /** Every key that signs now or will: the signer is chosen among them by time. */
  private signers: Array<SigningKeyRecord & { signer: Signer }> = [];
  private signer: Signer | null = null;
  /** When the signer must be chosen again (a rotated key starts, or the current one retires). */
  private signerChangesAt = Infinity;
  private verifiers = new Map<string, Verifier>();
  private jwks = '{"keys":[]}';
  /** Bumped whenever the key set changes, so a refusal cached under the old set is retried. */
  generation = 0;
  readonly audience: string;
  /** The JWKS response's Cache-Control: a verifier's copy is never older than the publication delay. */
  readonly jwksCacheControl: string;
  private readonly cipher: SigningKeyCipher | null;

  constructor(private readonly issuer: string, readonly ttlSeconds: number, options: TokenServiceOptions = {}) {
    this.audience = options.audience ?? 'keygate';
    this.cipher = options.cipher ?? null;
    this.jwksCacheControl = `public, max-age=${Math.min(JWKS_MAX_AGE_SECONDS, options.rotationDelaySeconds ?? JWKS_MAX_AGE_SECONDS)}`;
  }

  get ready(): boolean {
    const now = Date.now();
    if (now >= this.signerChangesAt) this.chooseSigner(now);
    return this.signer !== null;
  }

  async setKeys(records: readonly SigningKeyRecord[], now = Date.now()): Promise<void> {
    const verifiers = new Map<string, Verifier>();
    const published: Record<string, unknown>[] = [];
    const signers: TokenService['signers'] = [];
    for (const r of records) {
      // A retired key verifies until the last token it signed has expired.
      if (r.retiredAt !== null && Date.parse(r.retiredAt) + (this.ttlSeconds + CLOCK_SKEW_SECONDS) * 1000 < now) continue;
      verifiers.set(r.id, { alg: r.alg, key: await importJWK(r.publicJwk, r.alg) });
      published.push({ ...r.publicJwk, kid: r.id, alg: r.alg, use: 'sig' });
      if (signsNowOrLater(r, now)) {
        const privateJwk = this.cipher !== null ? this.cipher.open(r) : r.privateJwk;
        if (privateJwk === undefined) continue;
        signers.push({ ...r, signer: { kid: r.id, alg: r.alg, key: await importJWK(privateJwk, r.alg) } });
      }
    }
    this.verifiers = verifiers;
    this.signers = signers;
    this.chooseSigner(now);
    this.jwks = JSON.stringify({ keys: published });
    this.generation++;
  }

  private chooseSigner(now: number): void {
    this.signer = signerAt(this.signers, now)?.signer ?? null;
    this.signerChangesAt = nextSignerChange(this.signers, now);
  }

  jwksJson(): string {
    return this.jwks;
  }

  async mint(claims: TokenClaims, now = Date.now()): Promise<{ token: string; expiresIn: number }> {
    if (now >= this.signerChangesAt) this.chooseSigner(now);
    const signer = this.signer;
    if (!signer) throw new Error('no signing key');
    const iat = Math.floor(now / 1000);
    const payload: JWTPayload = { ws: claims.ws, typ: claims.typ, env: claims.env, kv: claims.kv, key: claims.key, sfp: claims.sfp };
    if (claims.profile !== null) payload.prof = claims.profile;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(claims.profile ?? claims.key)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.ttlSeconds)
      .setJti(randomBytes(16).toString('base64url'))
      .sign(signer.key);
    return { token, expiresIn: this.ttlSeconds };
  }

  /**
   * The token's claims when its signature, issuer, audience, `exp` and `nbf` hold and its
   * lifetime is one this gateway mints: `exp - iat` at most `ttlSeconds`, `iat` not ahead of
   * `now` by more than the clock skew, `exp` not beyond `now + ttlSeconds` (plus skew). A
   * token signed with a leaked or misused key cannot outlive the configured lifetime.
   */
  async verify(token: string, now = Date.now()): Promise<VerifiedToken | null> {
    try {
      const { payload } = await jwtVerify(token, (header) => {
        const v = header.kid === undefined ? undefined : this.verifiers.get(header.kid);
        if (!v || header.alg !== v.alg) throw new Error('unknown signing key');
        return v.key;
      }, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'key', 'sfp'],
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(now),
      });
      const { key, sfp, prof, exp, iat } = payload as JWTPayload & { key?: unknown; sfp?: unknown; prof?: unknown };
      if (typeof key !== 'string' || typeof sfp !== 'string' || (prof !== undefined && typeof prof !== 'string') || typeof exp !== 'number') return null;
      const nowSeconds = now / 1000;
      if (typeof iat !== 'number' || exp - iat > this.ttlSeconds || iat > nowSeconds + CLOCK_SKEW_SECONDS
        || exp > nowSeconds + this.ttlSeconds + CLOCK_SKEW_SECONDS) return null;
      return { keyId: key, profile: typeof prof === 'string' ? prof : null, secretFingerprint: sfp, expiresAt: exp * 1000 };
    } catch {
      return null;
    }
  }
}
