import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { SigningKeyRecord } from './signing-key.js';

const VERSION = 'v1';
// Distinct labels: the pepper's derived key is never the key its hashes use, and an
// operator key and the pepper never derive the same AES key.
const INFO_OPERATOR = 'keygate/signing-key-encryption/v1/operator-key';
const INFO_PEPPER = 'keygate/signing-key-encryption/v1/pepper';

/** The store holds a signing key sealed with a key other than this deployment's. */
export class SigningKeyDecryptionError extends Error {}

/**
 * Seals the private half of a token signing key for the store: AES-256-GCM under a key the
 * operator supplies (`secrets.signingKeyEncryptionKey`) or, by default, derived from the
 * pepper with HKDF-SHA256, so a leaked data directory or Redis dump cannot mint tokens.
 * The record's `kid` and algorithm are the additional data: a sealed half moved onto another
 * record does not open.
 */
export class SigningKeyCipher {
  private constructor(private readonly key: Buffer, readonly source: 'secrets.signingKeyEncryptionKey' | 'secrets.pepper') {}

  static fromSecrets(secrets: { pepper: string; signingKeyEncryptionKey?: string | undefined }): SigningKeyCipher {
    const operator = secrets.signingKeyEncryptionKey;
    return operator !== undefined
      ? new SigningKeyCipher(Buffer.from(hkdfSync('sha256', operator, Buffer.alloc(0), INFO_OPERATOR, 32)), 'secrets.signingKeyEncryptionKey')
      : new SigningKeyCipher(Buffer.from(hkdfSync('sha256', secrets.pepper, Buffer.alloc(0), INFO_PEPPER, 32)), 'secrets.pepper');
  }

  seal(record: Pick<SigningKeyRecord, 'id' | 'alg'>, privateJwk: Record<string, unknown>): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(aad(record));
    const body = Buffer.concat([cipher.update(JSON.stringify(privateJwk), 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** The record's private JWK: opened when sealed, as stored when an older build wrote it in clear. */
  open(record: SigningKeyRecord): Record<string, unknown> {
    if (record.sealedPrivateJwk === undefined) {
      if (record.privateJwk !== undefined) return record.privateJwk;
      throw new SigningKeyDecryptionError(`token signing key ${record.id} has no private half in the store`);
    }
    const [version, iv, body, tag] = record.sealedPrivateJwk.split('.');
    try {
      if (version !== VERSION || iv === undefined || body === undefined || tag === undefined) throw new Error('unknown format');
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(aad(record));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const text = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new SigningKeyDecryptionError(
        `${this.source}: cannot decrypt token signing key ${record.id} kept in the store; it was encrypted with another key `
        + '(set secrets.signingKeyEncryptionKey, or the pepper, to the value it was written with)',
      );
    }
  }
}

function aad(record: Pick<SigningKeyRecord, 'id' | 'alg'>): Buffer {
  return Buffer.from(`keygate signing key\n${record.id}\n${record.alg}`, 'utf8');
}
