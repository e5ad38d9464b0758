import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AdminTokenRecord } from '../../domain/entities.js';
import { SigningKeyCipher } from '../../domain/signing-key-cipher.js';
import { requireRedis, startRedis, type RedisServer } from '../../../test/support/redis-server.js';
import { audit, group, keyRecord, owner, putKey, signingKey, workspace } from '../../../test/support/store-contract/index.js';
import { EmbeddedStore } from '../embedded/embedded-store.js';
import { RedisConnection } from '../redis/connection.js';
import { RedisStore } from '../redis/redis-store.js';
import type { KeyStore } from '../types.js';
import { exportLines, StoreChangedError } from './export.js';
import { checkExport, importExport, ImportRefusedError } from './import.js';

const logger = pino({ level: 'silent' });
const PEPPER = 'transfer-pepper-0123456789';
const cipher = SigningKeyCipher.fromSecrets({ pepper: PEPPER });
const opts = { pepper: PEPPER, cipher, keygateVersion: '0.0.0-test' };

const roots: string[] = [];
const stores: KeyStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function embedded(): Promise<EmbeddedStore> {
  const root = mkdtempSync(join(tmpdir(), 'keygate-transfer-'));
  roots.push(root);
  const store = new EmbeddedStore({ path: join(root, 'data'), logger });
  await store.open();
  stores.push(store);
  return store;
}

async function collect(store: KeyStore): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of exportLines(store, opts)) lines.push(line);
  return lines;
}

const from = (lines: string[]) => async function* (): AsyncGenerator<string> {
  yield* lines;
};

/** A store with every kind of record: two workspaces, a group, an owner, keys (one rotated, one simple-auth), usage, activity, audit. */
async function populate(store: KeyStore) {
  const ws = [workspace(), workspace()];
  const grp = group();
  const own = owner(undefined, { permissions: ['events.*'] });
  const sig = { ...signingKey(), privateJwk: undefined, sealedPrivateJwk: cipher.seal({ id: 'sig-1', alg: 'EdDSA' }, { kty: 'OKP', d: 'x' }), id: 'sig-1' };
  const token: AdminTokenRecord = {
    id: 'adm_ci', name: 'ci', scopes: ['keys:write'], workspaces: [ws[0]!.id], createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z',
    createdBy: { type: 'admin', name: 'ops' }, secretHash: `t-${randomBytes(6).toString('hex')}`,
  };
  const keys = [
    keyRecord({ workspaceId: ws[0]!.id, groupId: grp.id, ownerId: own.id, secretHash: `h-${randomBytes(6).toString('hex')}` }),
    keyRecord({
      workspaceId: ws[1]!.id, secretHash: `h-${randomBytes(6).toString('hex')}`, version: 3,
      retiredSecrets: [{ hash: `r-${randomBytes(6).toString('hex')}`, expiresAt: '2099-01-01T00:00:00.000Z' }],
    }),
    keyRecord({ workspaceId: ws[1]!.id, type: 'profile', simpleAuth: { enabled: true, salt: 'salt-abc' }, secretHash: `h-${randomBytes(6).toString('hex')}` }),
  ];
  await store.commit({
    ops: [
      ...ws.map((w) => ({ op: 'put' as const, entity: { type: 'workspace' as const, value: w } })),
      { op: 'put', entity: { type: 'group', value: grp } },
      { op: 'put', entity: { type: 'owner', value: own } },
      { op: 'put', entity: { type: 'signing-key', value: sig } },
      { op: 'put', entity: { type: 'admin-token', value: token } },
    ],
    audit: [audit('workspace.create', ws[0]!.id)],
  });
  for (const k of keys) await store.commit(putKey(k, { audit: [audit('key.create', k.id)] }));
  await store.recordUsage([{ keyId: keys[0]!.id, byOutcome: { OK: 5, PERMISSION_DENIED: 2 }, lastUsedAt: '2026-01-02T03:04:05.000Z' }]);
  const request = (keyId: string, at: string, requestId: string, status: number, outcome: string) =>
    ({ keyId, at, requestId, method: 'GET', route: 'list-events', status, outcome, clientIp: '203.0.113.7' });
  await store.recordActivity([
    request(keys[0]!.id, '2026-01-02T03:04:01.000Z', 'req-1', 200, 'OK'),
    request(keys[0]!.id, '2026-01-02T03:04:05.000Z', 'req-2', 403, 'PERMISSION_DENIED'),
    { ...request(keys[1]!.id, '2026-01-02T03:04:03.000Z', 'req-3', 200, 'OK'), clientIp: null },
  ], 100);
  return { ws, grp, own, sig, token, keys };
}

const bySeqless = (k: { seq?: number }) => {
  const { seq: _seq, ...rest } = k;
  return rest;
};

async function expectSameContents(source: KeyStore, target: KeyStore): Promise<void> {
  const sort = <T extends { id: string }>(l: T[]) => [...l].sort((a, b) => a.id.localeCompare(b.id));
  expect(sort(await target.listWorkspaces())).toEqual(sort(await source.listWorkspaces()));
  expect(sort(await target.listGroups())).toEqual(sort(await source.listGroups()));
  expect(sort(await target.listOwners())).toEqual(sort(await source.listOwners()));
  expect(sort(await target.listSigningKeys())).toEqual(sort(await source.listSigningKeys()));
  expect(sort(await target.listAdminTokens())).toEqual(sort(await source.listAdminTokens()));
  expect(await target.listAdminTokens()).toHaveLength((await source.listAdminTokens()).length);
  const srcKeys = await source.scanKeys(0, 1_000);
  expect((await target.scanKeys(0, 1_000)).map(bySeqless)).toEqual(srcKeys.map(bySeqless));
  for (const k of srcKeys) {
    expect(await target.getUsage(k.id)).toEqual(await source.getUsage(k.id));
    expect(await target.listActivity(k.id, 100)).toEqual(await source.listActivity(k.id, 100));
    for (const hash of [k.secretHash, ...k.retiredSecrets.map((r) => r.hash)]) {
      expect((await target.lookupKey('hash', hash))?.record.id).toBe(k.id);
    }
  }
  expect(await target.scanAudit(0, 1_000)).toEqual(await source.scanAudit(0, 1_000));
}

describe('export and import', () => {
  it('writes a header, every record and a trailer that counts them', async () => {
    const store = await embedded();
    await populate(store);
    const lines = await collect(store);
    const header = JSON.parse(lines[0]!);
    expect(header).toMatchObject({ format: 'keygate-export', version: 1, source: { driver: 'embedded' }, keygate: '0.0.0-test' });
    expect(typeof header.pepperFingerprint).toBe('string');
    expect(lines.join('\n')).not.toContain(PEPPER);
    const trailer = JSON.parse(lines[lines.length - 1]!);
    expect(trailer).toMatchObject({ end: true, records: lines.length - 2, counts: { workspace: 2, group: 1, owner: 1, 'signing-key': 1, 'admin-token': 1, key: 3, usage: 1, activity: 3, audit: 4 } });
    expect(lines.slice(1, -1).map((l) => JSON.parse(l).type)).toEqual([
      'workspace', 'workspace', 'group', 'owner', 'signing-key', 'admin-token', 'key', 'key', 'key', 'usage', 'activity', 'activity', 'activity', 'audit', 'audit', 'audit', 'audit',
    ]);
    // No store-internal position travels.
    expect(lines.filter((l) => JSON.parse(l).type === 'key').every((l) => !('seq' in JSON.parse(l).value))).toBe(true);
  });

  it('round-trips embedded → embedded with every record, usage count, activity record, secret hash and audit entry', async () => {
    const source = await embedded();
    const { keys } = await populate(source);
    const target = await embedded();
    const counts = await importExport(target, from(await collect(source)), opts);
    expect(counts.key).toBe(3);
    expect(counts.activity).toBe(3);
    await expectSameContents(source, target);
    expect((await target.listActivity(keys[0]!.id, 100)).map((r) => r.requestId)).toEqual(['req-2', 'req-1']);
  });

  it('keeps only the newest activity of each key the target keeps (its keys.activityPerKey)', async () => {
    const source = await embedded();
    const { keys } = await populate(source);
    const target = await embedded();
    await importExport(target, from(await collect(source)), { ...opts, activityPerKey: 1 });
    expect((await target.listActivity(keys[0]!.id, 100)).map((r) => r.requestId)).toEqual(['req-2']);
    expect((await target.listActivity(keys[1]!.id, 100)).map((r) => r.requestId)).toEqual(['req-3']);
  });

  it('seals a signing key an older build kept in clear, so no private half leaves the store in clear', async () => {
    const store = await embedded();
    const clear = signingKey('sig-clear');
    await store.commit({ ops: [{ op: 'put', entity: { type: 'signing-key', value: clear } }], audit: [] });
    const lines = await collect(store);
    const rec = JSON.parse(lines.find((l) => l.includes('"signing-key"'))!).value;
    expect(rec.privateJwk).toBeUndefined();
    expect(cipher.open(rec)).toEqual(clear.privateJwk);
    expect(lines.join('\n')).not.toContain('d-sig-clear');
  });

  it('refuses a store that is not empty, and writes nothing', async () => {
    const source = await embedded();
    await populate(source);
    const lines = await collect(source);
    const target = await embedded();
    await target.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: workspace() } }], audit: [] });
    const version = await target.currentVersion();
    await expect(importExport(target, from(lines), opts)).rejects.toThrow(/not empty \(store version 1: 1 workspace\)/);
    await expect(importExport(target, from(lines), opts)).rejects.toBeInstanceOf(ImportRefusedError);
    expect(await target.currentVersion()).toBe(version);
  });

  describe('refuses a stream, naming the line, before writing anything', () => {
    let lines: string[];
    beforeAll(async () => {
      const root = mkdtempSync(join(tmpdir(), 'keygate-transfer-'));
      const store = new EmbeddedStore({ path: join(root, 'data'), logger });
      await store.open();
      await populate(store);
      for await (const line of exportLines(store, opts)) (lines ??= []).push(line);
      await store.close();
      rmSync(root, { recursive: true, force: true });
    });
    const edit = (f: (l: string[]) => string[]) => f([...lines]);
    const keyLine = () => lines.findIndex((l) => l.includes('"type":"key"'));
    const cases: Array<[string, () => string[], RegExp, { pepper?: string; cipher?: SigningKeyCipher }?]> = [
      ['cut short (no trailer)', () => edit((l) => l.slice(0, -3)), /without its trailer/],
      ['altered (a key renamed)', () => edit((l) => { l[keyLine()] = l[keyLine()]!.replace('"name":"key ', '"name":"KEY '); return l; }), /SHA-256/],
      ['not an export', () => ['{"hello":1}'], /line 1: not a keygate export/],
      ['of a newer format', () => edit((l) => { l[0] = l[0]!.replace('"version":1', '"version":2'); return l; }), /line 1: export format version 2/],
      ['written under another pepper', () => lines, /another secrets.pepper/, { pepper: 'another-pepper-0123456789' }],
      ['whose signing key does not open with this deployment\'s encryption key', () => lines, /signing key sig-1: secrets.signingKeyEncryptionKey: cannot decrypt/, {
        cipher: SigningKeyCipher.fromSecrets({ pepper: PEPPER, signingKeyEncryptionKey: 'another-encryption-key-0123456789abcdef' }),
      }],
      ['with a key naming a workspace it does not hold', () => edit((l) => l.filter((x, i) => i === 0 || !x.includes('"type":"workspace"') || i > 1)), /workspaceId names workspace .* which the export does not hold/],
      ['with an activity record naming a key it does not hold', () => edit((l) => {
        const at = l.findIndex((x) => x.includes('"type":"activity"'));
        l[at] = l[at]!.replace(/"keyId":"[^"]*"/, '"keyId":"key_missing"');
        return l;
      }), /activity key_missing\/.*: keyId names key key_missing, which the export does not hold/],
      ['with a key missing its secret hash', () => edit((l) => { l[keyLine()] = l[keyLine()]!.replace(/"secretHash":"[^"]*",/, ''); return l; }), /line \d+: key\.secretHash: /],
      ['out of order', () => edit((l) => { const a = l.length - 2; [l[1], l[a]] = [l[a]!, l[1]!]; return l; }), /line 3: a workspace record after the audit records \(the stream is out of order\)/],
      ['with a record after the trailer', () => [...lines, lines[1]!], /content after the trailer/],
    ];
    for (const [what, make, message, over] of cases) {
      it(what, async () => {
        const target = await embedded();
        await expect(importExport(target, from(make()), { ...opts, ...over })).rejects.toThrow(message);
        expect(await target.currentVersion()).toBe(0);
      });
    }

    it('checkExport counts the records of a good stream', async () => {
      expect(await checkExport(from(lines)(), opts)).toMatchObject({ key: 3, workspace: 2, activity: 3, audit: 4 });
    });
  });

  it('gives no trailer when the store changes while it is read', async () => {
    const store = await embedded();
    await populate(store);
    const out: string[] = [];
    const run = async () => {
      for await (const line of exportLines(store, opts)) {
        out.push(line);
        if (out.length === 2) await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: workspace() } }], audit: [] });
      }
    };
    await expect(run()).rejects.toBeInstanceOf(StoreChangedError);
    expect(out.some((l) => l.includes('"end":true'))).toBe(false);
  });
});

describe.skipIf(!requireRedis())('export and import across store kinds', () => {
  let server: RedisServer;
  beforeAll(async () => { server = await startRedis(); });
  afterAll(async () => { await server?.cleanup(); });

  async function redis(): Promise<RedisStore> {
    const connection = new RedisConnection({ url: server.url, keyPrefix: `transfer-${randomBytes(6).toString('hex')}:`, logger, fastTimeoutMs: 2_000 });
    const store = new RedisStore({ connection, logger, feedBlockMs: 200 });
    await store.open();
    stores.push(store);
    return store;
  }

  it('embedded → Redis keeps every record, secret hash, usage count and audit entry', async () => {
    const source = await embedded();
    await populate(source);
    const target = await redis();
    await importExport(target, from(await collect(source)), opts);
    await expectSameContents(source, target);
  });

  it('Redis → embedded too', async () => {
    const source = await redis();
    await populate(source);
    const target = await embedded();
    await importExport(target, from(await collect(source)), opts);
    await expectSameContents(source, target);
  });

  it('refuses a Redis prefix that already holds records', async () => {
    const target = await redis();
    await target.commit({ ops: [{ op: 'put', entity: { type: 'group', value: group() } }], audit: [] });
    const source = await embedded();
    await populate(source);
    await expect(importExport(target, from(await collect(source)), opts)).rejects.toThrow(/not empty \(store version 1: 1 group\)/);
  });
});
