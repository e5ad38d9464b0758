import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { EmbeddedStore } from '../store/embedded/embedded-store.js';
import { SigningKeyService } from './signing-key-service.js';

function config(): Config {
  const parsed = parseConfigText(`
admin: { tokens: [{ name: ops, token: "test-admin-token-0123456789" }] }
secrets: { pepper: "test-pepper-0123456789abcdef" }
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
});
