import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { randomBase62, toBase62 } from './ids.js';

export type Environment = 'live' | 'test';

// 24 base62 characters carry 24·log2(62) ≈ 142.9 bits, above the contract's 128-bit floor.
const RANDOM_LENGTH = 24;
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32, so a CRC-32 always fits
const PREFIX_RANDOM_CHARS = 4;
const SECRET_PATTERN = /^kg_(live|test)_([0-9A-Za-z]{24})_([0-9A-Za-z]{6})$/;

function checksumOf(body: string): string {
  return toBase62(crc32(body), CHECKSUM_LENGTH);
}

export interface GeneratedSecret {
  secret: string;
  /** The non-secret beginning shown in listings, e.g. `kg_live_3xYz`. */
  prefix: string;
}

export function generateSecret(env: Environment): GeneratedSecret {
  const random = randomBase62(RANDOM_LENGTH);
  const body = `kg_${env}_${random}`;
  return { secret: `${body}_${checksumOf(body)}`, prefix: `kg_${env}_${random.slice(0, PREFIX_RANDOM_CHARS)}` };
}

/**
 * Cheap structural check run before any hashing or lookup, so typos and random guesses
 * never reach the cache or the store. Returns the environment the secret claims.
 */
export function checkSecretFormat(candidate: string): Environment | null {
  if (candidate.length !== 3 + 5 + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH) return null;
  const m = SECRET_PATTERN.exec(candidate);
  if (!m) return null;
  const body = candidate.slice(0, candidate.length - CHECKSUM_LENGTH - 1);
  const given = Buffer.from(m[3]!);
  const expected = Buffer.from(checksumOf(body));
  if (!timingSafeEqual(given, expected)) return null;
  return m[1] as Environment;
}

/** Only this peppered hash of a secret is ever stored. */
export function hashSecret(pepper: string, secret: string): string {
  return createHmac('sha256', pepper).update(secret).digest('base64url');
}

/**
 * Constant-time equality of two strings. Both sides are digested first so neither the
 * content nor the length of the expected value shows in the timing.
 */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}
