import { exportJWK, generateKeyPair } from 'jose';
import type { Config } from '../config/schema.js';
import type { Actor, AuditEntry } from '../domain/entities.js';
import { newAuditId, randomBase62 } from '../domain/ids.js';
import { SigningKeyCipher } from '../domain/signing-key-cipher.js';
import {
  activeFromMs, publicSigningKey, signsNowOrLater, type PublicSigningKey, type SigningAlgorithm, type SigningKeyRecord,
} from '../domain/signing-key.js';
import { KeygateError } from '../errors/catalogue.js';
import type { KeyStore, WriteBatch, WriteOp } from '../store/types.js';

const SYSTEM: Actor = { type: 'admin', name: 'keygate' };
/** Optimistic writes racing other nodes are retried this often before the error stands. */
const ATTEMPTS = 8;

const isConflict = (err: unknown): boolean => err instanceof KeygateError && err.code === 'CONFLICT';

/** A record without the private half in clear, only sealed. */
function sealed(record: SigningKeyRecord, cipher: SigningKeyCipher): SigningKeyRecord {
  const { privateJwk, ...rest } = record;
  return privateJwk === undefined ? record : { ...rest, sealedPrivateJwk: cipher.seal(record, privateJwk) };
}

/**
 * Token signing keys: one active key of the configured algorithm, made on first start and
 * kept in the store (private half sealed) so every node signs and verifies with the same
 * keys. A rotated key is published at once and signs only after `tokens.rotationDelaySeconds`
 * (verifiers that cached the JWKS have fetched it again by then); the key it replaces signs
 * until that moment, then verifies (and stays in the JWKS) until its last token has expired.
 */
export class SigningKeyService {
  private readonly cipher: SigningKeyCipher;

  constructor(private readonly store: KeyStore, private readonly config: Config, private readonly now: () => number = Date.now) {
    this.cipher = SigningKeyCipher.fromSecrets(config.secrets);
  }

  /**
   * At start: checks that every stored key opens with this deployment's encryption key (a
   * wrong key is an error, never a silent new key), seals keys an older build stored in
   * clear, and makes sure a key of the configured algorithm signs (retiring keys of another).
   */
  async ensureActive(): Promise<void> {
    const alg = this.config.tokens.algorithm;
    for (let attempt = 0; ; attempt++) {
      const keys = await this.store.listSigningKeys();
      for (const k of keys) this.cipher.open(k);
      try {
        const clear = keys.filter((k) => k.privateJwk !== undefined);
        if (clear.length > 0) {
          await this.commit(clear.map((k) => ({ ...sealed(k, this.cipher), version: k.version + 1 })), clear, [], 'signing-key.seal');
          // The embedded store's journal still holds the records in clear: fold it into a snapshot now.
          await (this.store as KeyStore & { compactNow?: () => Promise<void> }).compactNow?.();
          continue;
        }
        const now = this.now();
        const open = keys.filter((k) => k.retiredAt === null);
        if (open.length > 1) {
          // Nodes starting together on an empty store each made a first key: every node
          // signs with the same one of them (`signerAt`), the others are retired.
          await this.retireAllBut(open, now);
          continue;
        }
        if (keys.some((k) => k.alg === alg && signsNowOrLater(k, now))) return;
        await this.replaceActive(keys, SYSTEM, 'signing-key.create');
      } catch (err) {
        if (!isConflict(err) || attempt >= ATTEMPTS) throw err;
      }
    }
  }

  async rotate(actor: Actor): Promise<PublicSigningKey> {
    return publicSigningKey(await this.replaceActive(await this.store.listSigningKeys(), actor, 'signing-key.rotate'));
  }

  async list(): Promise<PublicSigningKey[]> {
    return (await this.store.listSigningKeys()).map(publicSigningKey);
  }

  /**
   * The store lost its signing keys (a Redis flushed or restarted without persistence) while
   * this node still holds them: writes back the ones it holds (same `kid`s, so every token
   * they signed still verifies), or makes a new key when it holds none. Another node doing
   * the same at once is fine: the first write wins, the others find the keys back.
   * Returns the ids written back, or null when there was nothing to do.
   */
  async reconcile(held: readonly SigningKeyRecord[]): Promise<string[] | null> {
    for (let attempt = 0; ; attempt++) {
      const keys = await this.store.listSigningKeys();
      const now = this.now();
      // Any key that signs is enough: a node configured for another algorithm is not the judge
      // of which key signs (that is ensureActive's, at start), only of whether one is there.
      if (keys.some((k) => signsNowOrLater(k, now))) return null;
      const stored = new Set(keys.map((k) => k.id));
      const lost = held.filter((k) => !stored.has(k.id)
        && (k.retiredAt === null || Date.parse(k.retiredAt) + (this.config.tokens.ttlSeconds + 300) * 1000 > now));
      try {
        if (lost.length === 0 || !lost.some((k) => signsNowOrLater(k, now))) {
          await this.ensureActive();
          return [];
        }
        const restored = lost.map((k) => ({ ...sealed(k, this.cipher), version: 1 }));
        await this.store.commit({
          ops: restored.map((value) => ({ op: 'put', entity: { type: 'signing-key', value } })),
          audit: restored.map((k) => this.audit(SYSTEM, 'signing-key.restore', k, now)),
          expect: restored.map((k) => ({ type: 'signing-key' as const, id: k.id, token: null })),
        });
        return restored.map((k) => k.id);
      } catch (err) {
        if (!isConflict(err) || attempt >= ATTEMPTS) throw err;
      }
    }
  }

  private async retireAllBut(open: SigningKeyRecord[], now: number): Promise<void> {
    const winner = open.reduce((a, b) => (activeFromMs(b) > activeFromMs(a) || (activeFromMs(b) === activeFromMs(a) && b.id > a.id) ? b : a));
    const losers = open.filter((k) => k !== winner);
    await this.commit(losers.map((k) => ({ ...k, retiredAt: new Date(now).toISOString(), version: k.version + 1 })), losers, [], 'signing-key.retire');
  }

  private async replaceActive(existing: SigningKeyRecord[], actor: Actor, action: string): Promise<SigningKeyRecord> {
    const now = this.now();
    // The very first key signs at once; any later one is published first and signs once
    // every verifier's cached JWKS has expired.
    const current = existing.filter((k) => signsNowOrLater(k, now));
    const startsAt = current.length === 0 ? now : now + this.config.tokens.rotationDelaySeconds * 1000;
    const next = await this.generate(now, startsAt);
    const updates: SigningKeyRecord[] = [];
    const retiring: SigningKeyRecord[] = [];
    const deletes: SigningKeyRecord[] = [];
    for (const k of existing) {
      if (signsNowOrLater(k, startsAt)) {
        retiring.push(k);
        updates.push({ ...sealed(k, this.cipher), retiredAt: new Date(startsAt).toISOString(), version: k.version + 1 });
      } else if (k.retiredAt !== null && Date.parse(k.retiredAt) + (this.config.tokens.ttlSeconds + 300) * 1000 < now) {
        // Every token it signed has expired: it no longer needs to verify anything.
        deletes.push(k);
      }
    }
    await this.commit([next, ...updates], [...retiring, ...deletes], deletes, action, actor, next);
    return next;
  }

  /** Puts `puts`, deletes `deletes`, provided the records `expected` (as read) are unchanged and new ones still absent. */
  private async commit(
    puts: SigningKeyRecord[], expected: SigningKeyRecord[], deletes: SigningKeyRecord[], action: string, actor = SYSTEM, target = puts[0],
  ): Promise<void> {
    const now = this.now();
    const known = new Map(expected.map((k) => [k.id, k.version]));
    const ops: WriteOp[] = [
      ...puts.map((value): WriteOp => ({ op: 'put', entity: { type: 'signing-key', value } })),
      ...deletes.map((k): WriteOp => ({ op: 'delete', type: 'signing-key', id: k.id })),
    ];
    const batch: WriteBatch = {
      ops,
      audit: target === undefined ? [] : [this.audit(actor, action, target, now)],
      expect: [
        ...puts.filter((k) => !known.has(k.id)).map((k) => ({ type: 'signing-key' as const, id: k.id, token: null })),
        ...expected.map((k) => ({ type: 'signing-key' as const, id: k.id, token: String(known.get(k.id)) })),
      ],
    };
    await this.store.commit(batch);
  }

  private audit(actor: Actor, action: string, key: SigningKeyRecord, now: number): AuditEntry {
    return { id: newAuditId(), at: new Date(now).toISOString(), actor, action, target: { type: 'signing-key', id: key.id }, before: null, after: publicSigningKey(key) };
  }

  private async generate(now: number, activeFrom: number): Promise<SigningKeyRecord> {
    const alg: SigningAlgorithm = this.config.tokens.algorithm;
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
    // Random: two deployments never share a kid, and a key lost and made again is a new kid.
    const id = `sk_${randomBase62(22)}`;
    return {
      id,
      alg,
      publicJwk: { ...(await exportJWK(publicKey)) },
      sealedPrivateJwk: this.cipher.seal({ id, alg }, { ...(await exportJWK(privateKey)) }),
      createdAt: new Date(now).toISOString(),
      activeFrom: new Date(activeFrom).toISOString(),
      retiredAt: null,
      version: 1,
    };
  }
}
