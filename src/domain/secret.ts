import { createHash, createHmac, createSecretKey, hash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { randomBase62, toBase62 } from './ids.js';

export type Environment = 'live' | 'test';

// 24 base62 characters carry 24·log2(62) ≈ 142.9 bits, above the contract's 128-bit floor.
const RANDOM_LENGTH = 24;
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32, so a CRC-32 always fits
const PREFIX_RANDOM_CHARS = 4;
/** Every secret has this many characters. */
export const SECRET_LENGTH = 3 + 5 + RANDOM_LENGTH + 1 + CHECKSUM_LENGTH;

const IS_BASE62 = new Uint8Array(128);
for (const c of '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') IS_BASE62[c.charCodeAt(0)] = 1;

function base62Run(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || IS_BASE62[c] === 0) return false;
  }
  return true;
}

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
  // `kg_<live|test>_<24 base62>_<6 base62>`, checked by hand: this runs on every request.
  if (candidate.length !== SECRET_LENGTH || !candidate.startsWith('kg_')) return null;
  const env = candidate.slice(3, 7);
  if ((env !== 'live' && env !== 'test') || candidate.charCodeAt(7) !== 0x5f || candidate.charCodeAt(32) !== 0x5f) return null;
  if (!base62Run(candidate, 8, 32) || !base62Run(candidate, 33, SECRET_LENGTH)) return null;
  // The checksum is a public function of the rest, so comparing it leaks nothing secret.
  return checksumOf(candidate.slice(0, 32)) === candidate.slice(33) ? env : null;
}

const pepperKeys = new Map<string, KeyObject>();

/** Only this peppered hash of a secret is ever stored. */
export function hashSecret(pepper: string, secret: string): string {
  let key = pepperKeys.get(pepper);
  if (key === undefined) pepperKeys.set(pepper, (key = createSecretKey(Buffer.from(pepper, 'utf8'))));
  return createHmac('sha256', key).update(secret).digest('base64url');
}

/**
 * A short one-way tag of a stored secret hash, carried in tokens to name the secret they were
 * minted from without exposing any part of the hash itself.
 */
export function secretFingerprint(secretHash: string): string {
  return hash('sha256', `keygate-sfp:${secretHash}`, 'base64url').slice(0, 16);
}

/**
 * Constant-time equality of two strings. Both sides are digested first so neither the
 * content nor the length of the expected value shows in the timing. The digest is of the
 * UTF-16 code units: as UTF-8, every lone surrogate and U+FFFD encode alike, so "\ud800"
 * would equal "\ufffd".
 */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf16le').digest();
  const db = createHash('sha256').update(b, 'utf16le').digest();
  return timingSafeEqual(da, db);
}
