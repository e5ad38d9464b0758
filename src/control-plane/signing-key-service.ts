import { exportJWK, generateKeyPair } from 'jose';
import type { Config } from '../config/schema.js';
import type { Actor } from '../domain/entities.js';
import { newAuditId, randomBase62 } from '../domain/ids.js';
import { publicSigningKey, type SigningAlgorithm, type SigningKeyRecord } from '../domain/signing-key.js';
import { KeygateError } from '../errors.js';
import type { KeyStore, WriteOp } from '../store/types.js';

const SYSTEM: Actor = { type: 'admin', name: 'keygate' };

async function generate(alg: SigningAlgorithm, now: number, id = `sk_${randomBase62(16)}`): Promise<SigningKeyRecord> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return {
    id,
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
    const alg = this.config.tokens.algorithm;
    for (let attempt = 0; ; attempt++) {
      const keys = await this.store.listSigningKeys();
      if (keys.some((k) => k.retiredAt === null && k.alg === alg)) return;
      try {
        // Nodes starting together on a fresh shared store race for the first key: its id is
        // fixed, so exactly one creates it and the others see CONFLICT and read it.
        await this.replaceActive(keys, SYSTEM, 'signing-key.create', keys.length === 0 ? `sk_first_${alg}` : undefined);
        return;
      } catch (err) {
        if (!(err instanceof KeygateError && err.code === 'CONFLICT') || attempt >= 3) throw err;
      }
    }
  }

  async rotate(actor: Actor): Promise<ReturnType<typeof publicSigningKey>> {
    return publicSigningKey(await this.replaceActive(await this.store.listSigningKeys(), actor, 'signing-key.rotate'));
  }

  async list(): Promise<Array<ReturnType<typeof publicSigningKey>>> {
    return (await this.store.listSigningKeys()).map(publicSigningKey);
  }

  private async replaceActive(existing: SigningKeyRecord[], actor: Actor, action: string, id?: string): Promise<SigningKeyRecord> {
    const now = this.now();
    const next = await generate(this.config.tokens.algorithm, now, id);
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
      expect: [
        { type: 'signing-key' as const, id: next.id, token: null },
        ...existing.map((k) => ({ type: 'signing-key' as const, id: k.id, token: String(k.version) })),
      ],
    });
    return next;
  }
}
