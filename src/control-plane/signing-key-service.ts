import { exportJWK, generateKeyPair } from 'jose';
import type { Config } from '../config/schema.js';
import type { Actor } from '../domain/entities.js';
import { newAuditId, randomBase62 } from '../domain/ids.js';
import { publicSigningKey, type SigningAlgorithm, type SigningKeyRecord } from '../domain/signing-key.js';
import type { KeyStore, WriteOp } from '../store/types.js';

const SYSTEM: Actor = { type: 'admin', name: 'keygate' };

async function generate(alg: SigningAlgorithm, now: number): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return {
    id: `sk_${randomBase62(16)}`,
    alg,
    publicJwk: { ...(await exportJWK(publicKey)) },
    privateJwk: { ...(await exportJWK(privateKey)) },
    createdAt: new Date(now).toISOString(),
    retiredAt: null,
    version: 1,
  };
}

/**
 * Token signing keys: one active key of the configured algorithm, made on first start and
 * kept in the store so every node signs and verifies with the same keys. Rotation retires
 * the active key; retired keys keep verifying (and stay in the JWKS) until their last
 * token has expired.
 */
export class SigningKeyService {
  constructor(private readonly store: KeyStore, private readonly config: Config, private readonly now: () => number = Date.now) {}

  /** Makes sure an active key of the configured algorithm exists; retires active keys of another one. */
  async ensureActive(): Promise<void> {
    const keys = await this.store.listSigningKeys();
    const alg = this.config.tokens.algorithm;
    if (keys.some((k) => k.retiredAt === null && k.alg === alg)) return;
    await this.replaceActive(keys, SYSTEM, 'signing-key.create');
  }

  async rotate(actor: Actor): Promise<ReturnType<typeof publicSigningKey>> {
    return publicSigningKey(await this.replaceActive(await this.store.listSigningKeys(), actor, 'signing-key.rotate'));
  }

  async list(): Promise<Array<ReturnType<typeof publicSigningKey>>> {
    return (await this.store.listSigningKeys()).map(publicSigningKey);
  }

  private async replaceActive(existing: SigningKeyRecord[], actor: Actor, action: string): Promise<SigningKeyRecord> {
    const now = this.now();
    const next = await generate(this.config.tokens.algorithm, now);
    const ops: WriteOp[] = [{ op: 'put', entity: { type: 'signing-key', value: next } }];
    for (const k of existing) {
      if (k.retiredAt === null) {
        ops.push({ op: 'put', entity: { type: 'signing-key', value: { ...k, retiredAt: new Date(now).toISOString(), version: k.version + 1 } } });
      } else if (Date.parse(k.retiredAt) + (this.config.tokens.ttlSeconds + 300) * 1000 < now) {
        // Every token it signed has expired: it no longer needs to verify anything.
        ops.push({ op: 'delete', type: 'signing-key', id: k.id });
      }
    }
    await this.store.commit({
      ops,
      audit: [{ id: newAuditId(), at: new Date(now).toISOString(), actor, action, target: { type: 'signing-key', id: next.id }, before: null, after: publicSigningKey(next) }],
      expect: existing.map((k) => ({ type: 'signing-key' as const, id: k.id, token: String(k.version) })),
    });
    return next;
  }
}
