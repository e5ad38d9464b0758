import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { exportJWK, generateKeyPair } from 'jose';
import { SigningKeyCipher } from '../domain/signing-key-cipher.js';
import { signerAt, type SigningKeyRecord } from '../domain/signing-key.js';
import { EmbeddedStore } from '../store/embedded/embedded-store.js';
import { SigningKeyService } from './signing-key-service.js';

function config(extra = ''): Config {
  const parsed = parseConfigText(`
admin: { tokens: [{ name: ops, token: "test-admin-token-0123456789" }] }
secrets: { pepper: "test-pepper-0123456789abcdef"${extra.includes('signingKeyEncryptionKey') ? `, ${extra}` : ''} }
${extra.includes('signingKeyEncryptionKey') ? '' : extra}
`, {});
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  return parsed.config;
}

describe('SigningKeyService', () => {
  let dir: string;
  let store: EmbeddedStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keygate-signing-'));
    store = new EmbeddedStore({ path: join(dir, 'data'), logger: pino({ level: 'silent' }) });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes one active key on first start and none on the next', async () => {
    const service = new SigningKeyService(store, config());
    await service.ensureActive();
    await service.ensureActive();
    const keys = await store.listSigningKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ alg: 'EdDSA', retiredAt: null });
  });

  it('leaves exactly one active key when several nodes start together on an empty store', async () => {
    const services = [1, 2, 3, 4].map(() => new SigningKeyService(store, config()));
    await Promise.all(services.map((s) => s.ensureActive()));
    const active = (await store.listSigningKeys()).filter((k) => k.retiredAt === null);
    expect(active).toHaveLength(1);
  });

  it('retires the active key on rotation and keeps it listed', async () => {
    const service = new SigningKeyService(store, config());
    await service.ensureActive();
    const next = await service.rotate({ type: 'admin', name: 'ops' });
    const keys = await store.listSigningKeys();
    expect(keys).toHaveLength(2);
    expect(keys.filter((k) => k.retiredAt === null).map((k) => k.id)).toEqual([next.id]);
  });

  it('gives the first key of every deployment a random kid (regression)', async () => {
    await new SigningKeyService(store, config()).ensureActive();
    const other = new EmbeddedStore({ path: join(dir, 'other'), logger: pino({ level: 'silent' }) });
    await other.open();
    try {
      await new SigningKeyService(other, config()).ensureActive();
      const [a] = await store.listSigningKeys();
      const [b] = await other.listSigningKeys();
      expect(a!.id).toMatch(/^sk_[A-Za-z0-9]{22}$/);
      expect(b!.id).toMatch(/^sk_[A-Za-z0-9]{22}$/);
      expect(a!.id).not.toBe(b!.id);
    } finally {
      await other.close();
    }
  });

  it('stores the private half sealed only, and refuses to start with another encryption key rather than make a new key (regression)', async () => {
    await new SigningKeyService(store, config('signingKeyEncryptionKey: "operator-key-one-0123456789abcdefghij"')).ensureActive();
    const [stored] = await store.listSigningKeys();
    expect(stored).not.toHaveProperty('privateJwk');
    expect(stored!.sealedPrivateJwk).toMatch(/^v1\./);
    expect(JSON.stringify(stored)).not.toMatch(/"d"\s*:/);
    await expect(new SigningKeyService(store, config('signingKeyEncryptionKey: "operator-key-two-0123456789abcdefghij"')).ensureActive())
      .rejects.toThrow(`secrets.signingKeyEncryptionKey: cannot decrypt token signing key ${stored!.id}`);
    await expect(new SigningKeyService(store, config()).ensureActive()).rejects.toThrow(/^secrets\.pepper: cannot decrypt/);
    expect(await store.listSigningKeys()).toEqual([stored]);
  });

  it('loads a key an older build stored in clear and writes it back sealed, same kid (regression)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true, crv: 'Ed25519' });
    const legacy: SigningKeyRecord = {
      id: 'sk_first_EdDSA', alg: 'EdDSA', publicJwk: { ...(await exportJWK(publicKey)) }, privateJwk: { ...(await exportJWK(privateKey)) },
      createdAt: new Date().toISOString(), retiredAt: null, version: 1,
    };
    await store.commit({ ops: [{ op: 'put', entity: { type: 'signing-key', value: legacy } }], audit: [] });
    await new SigningKeyService(store, config()).ensureActive();
    const keys = await store.listSigningKeys();
    expect(keys.map((k) => k.id)).toEqual(['sk_first_EdDSA']);
    expect(keys[0]).not.toHaveProperty('privateJwk');
    expect(keys[0]).toMatchObject({ version: 2, retiredAt: null });
    expect(SigningKeyCipher.fromSecrets(config().secrets).open(keys[0]!)).toEqual(legacy.privateJwk);
    // Nor is the clear record left in the journal it was written to.
    const files = ['journal.log', 'snapshot.json'].map((f) => join(dir, 'data', f)).filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(f, 'utf8')).not.toContain(legacy.privateJwk!.d as string);
  });

  it('makes a rotated key sign only after tokens.rotationDelaySeconds, the old one signing until then (regression)', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const service = new SigningKeyService(store, config('tokens: { rotationDelaySeconds: 300 }'), () => now);
    await service.ensureActive();
    const [first] = await store.listSigningKeys();
    expect(first!.activeFrom).toBe(first!.createdAt);
    now += 1000;
    const next = await service.rotate({ type: 'admin', name: 'ops' });
    expect(Date.parse(next.activeFrom) - Date.parse(next.createdAt)).toBe(300_000);
    const keys = await store.listSigningKeys();
    expect(keys.find((k) => k.id === first!.id)!.retiredAt).toBe(next.activeFrom);
    expect(signerAt(keys, now)!.id).toBe(first!.id);
    expect(signerAt(keys, Date.parse(next.activeFrom))!.id).toBe(next.id);
    // A restart in between makes no further key.
    await service.ensureActive();
    expect(await store.listSigningKeys()).toHaveLength(2);
  });

  it('writes back the keys a node holds when the store has lost them, and does nothing when they are there', async () => {
    const service = new SigningKeyService(store, config());
    await service.ensureActive();
    const held = await store.listSigningKeys();
    expect(await service.reconcile(held)).toBeNull();
    const lost = new EmbeddedStore({ path: join(dir, 'lost'), logger: pino({ level: 'silent' }) });
    await lost.open();
    try {
      const restored = await new SigningKeyService(lost, config()).reconcile(held);
      expect(restored).toEqual([held[0]!.id]);
      expect((await lost.listSigningKeys()).map((k) => k.id)).toEqual([held[0]!.id]);
    } finally {
      await lost.close();
    }
  });

  it('leaves the keys alone when the store holds a signing key of another algorithm than this node is configured for', async () => {
    await new SigningKeyService(store, config()).ensureActive();
    const keys = await store.listSigningKeys();
    expect(await new SigningKeyService(store, config('tokens: { algorithm: ES256 }')).reconcile(keys)).toBeNull();
    expect(await store.listSigningKeys()).toEqual(keys);
  });
});
