import { describe, expect, it } from 'vitest';
import type { KeyRecord } from '../domain/api-key.js';
import type { Owner } from '../domain/entities.js';
import { generateSecret, hashSecret } from '../domain/secret.js';
import type { Change } from '../store/types.js';
import type { KeySource } from '../store/key-source.js';
import { CredentialMemo, KeyResolver, type Resolution } from './key-resolver.js';
import { keyRecord } from '../../test/support/fixtures.js';

const PEPPER = 'unit-test-pepper';
const WS = '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b';
const NOW = Date.parse('2030-01-01T00:00:00.000Z');


function owner(id: string, over: Partial<Owner> = {}): Owner {
  return { id, name: id, status: 'active', permissions: ['*'], createdAt: '2029-01-01T00:00:00.000Z', updatedAt: '2029-01-01T00:00:00.000Z', version: 1, ...over };
}

/** A KeySource over in-memory records, indexed by current and retired hashes, counting its calls. */
class FakeSource implements KeySource {
  lookups = 0;
  lookupsById = 0;
  fail = false;
  records: KeyRecord[] = [];
  owners = new Map<string, Owner>();

  add(rec: KeyRecord): KeyRecord {
    this.records.push(rec);
    return rec;
  }

  private withOwner(rec: KeyRecord | undefined) {
    if (!rec) return null;
    return { record: rec, owner: rec.ownerId ? this.owners.get(rec.ownerId) ?? null : null };
  }

  async lookup(hash: string) {
    this.lookups++;
    if (this.fail) throw new Error('store down');
    return this.withOwner(this.records.find((r) => r.secretHash === hash || r.retiredSecrets.some((s) => s.hash === hash)));
  }

  async lookupById(keyId: string) {
    this.lookupsById++;
    if (this.fail) throw new Error('store down');
    return this.withOwner(this.records.find((r) => r.id === keyId));
  }
}

function setup(opts: { fresh?: () => boolean; now?: () => number; maxEntries?: number } = {}) {
  const source = new FakeSource();
  const stats = { hits: 0, misses: 0, storeErrors: 0 };
  const resolver = new KeyResolver({
    source,
    pepper: PEPPER,
    fresh: opts.fresh ?? (() => true),
    stats: { hit: () => stats.hits++, miss: () => stats.misses++, storeError: () => stats.storeErrors++ },
    now: opts.now ?? (() => NOW),
    ...(opts.maxEntries !== undefined ? { maxEntries: opts.maxEntries } : {}),
  });
  return { source, stats, resolver };
}

/** A fresh secret and a record stored under its hash. */
function storedKey(source: FakeSource, over: Partial<KeyRecord> = {}): { secret: string; rec: KeyRecord } {
  const { secret } = generateSecret('live');
  const rec = source.add(keyRecord({ secretHash: hashSecret(PEPPER, secret), ...over }));
  return { secret, rec };
}

const change = (kind: Change['kind'], id: string): Change => ({ version: 1, kind, id, op: 'put', at: NOW });

async function ok(res: Resolution | Promise<Resolution>) {
  const r = await res;
  if (!r.ok) throw new Error(`expected ok, got ${r.code}`);
  return r;
}

describe('KeyResolver.resolve', () => {
  it('calls the source on a miss and resolves the key', async () => {
    const { source, stats, resolver } = setup();
    const { secret, rec } = storedKey(source);
    const r = await ok(resolver.resolve(secret));
    expect(r.policy.keyId).toBe(rec.id);
    expect(source.lookups).toBe(1);
    expect(stats).toEqual({ hits: 0, misses: 1, storeErrors: 0 });
  });

  it('serves later resolves from the cache without calling the source', async () => {
    const { source, stats, resolver } = setup();
    const { secret, rec } = storedKey(source);
    await resolver.resolve(secret);
    const second = resolver.resolve(secret);
    expect(second).not.toBeInstanceOf(Promise);
    const third = await ok(resolver.resolve(secret));
    expect(third.policy.keyId).toBe(rec.id);
    expect(source.lookups).toBe(1);
    expect(stats).toEqual({ hits: 2, misses: 1, storeErrors: 0 });
    expect(resolver.size).toBe(1);
  });

  it('answers a hash equal to the peppered hash of the secret', async () => {
    const { source, resolver } = setup();
    const { secret } = storedKey(source);
    expect((await ok(resolver.resolve(secret))).hash).toBe(hashSecret(PEPPER, secret));
    expect((await ok(resolver.resolve(secret))).hash).toBe(hashSecret(PEPPER, secret));
  });

  it('answers UNAUTHENTICATED for an unknown secret', async () => {
    const { source, resolver } = setup();
    storedKey(source);
    expect(await resolver.resolve(generateSecret('live').secret)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
  });

  it('caches an unknown secret negatively', async () => {
    const { source, stats, resolver } = setup();
    const unknown = generateSecret('live').secret;
    await resolver.resolve(unknown);
    expect(await resolver.resolve(unknown)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
    expect(source.lookups).toBe(1);
    expect(stats.hits).toBe(1);
  });

  it('answers STORE_UNAVAILABLE when the source throws', async () => {
    const { source, stats, resolver } = setup();
    const { secret } = storedKey(source);
    source.fail = true;
    expect(await resolver.resolve(secret)).toEqual({ ok: false, code: 'STORE_UNAVAILABLE' });
    expect(stats.storeErrors).toBe(1);
  });

  it('does not cache a store failure', async () => {
    const { source, resolver } = setup();
    const { secret } = storedKey(source);
    source.fail = true;
    await resolver.resolve(secret);
    source.fail = false;
    expect((await resolver.resolve(secret)).ok).toBe(true);
    expect(source.lookups).toBe(2);
  });

  it('never answers ok from the cache when not fresh and the source throws', async () => {
    let fresh = true;
    const { source, resolver } = setup({ fresh: () => fresh });
    const { secret } = storedKey(source);
    await ok(resolver.resolve(secret));
    fresh = false;
    source.fail = true;
    expect(await resolver.resolve(secret)).toEqual({ ok: false, code: 'STORE_UNAVAILABLE' });
  });

  it('sends every resolve to the source while not fresh', async () => {
    const { source, stats, resolver } = setup({ fresh: () => false });
    const { secret } = storedKey(source);
    const unknown = generateSecret('live').secret;
    await resolver.resolve(secret);
    await resolver.resolve(secret);
    await resolver.resolve(unknown);
    await resolver.resolve(unknown);
    expect(source.lookups).toBe(4);
    expect(stats).toEqual({ hits: 0, misses: 4, storeErrors: 0 });
  });

  it('drops a key on a key change, so the next resolve calls the source again', async () => {
    const { source, resolver } = setup();
    const { secret, rec } = storedKey(source);
    await resolver.resolve(secret);
    resolver.apply([change('key', rec.id)]);
    expect(resolver.size).toBe(0);
    await resolver.resolve(secret);
    expect(source.lookups).toBe(2);
  });

  it('picks up the new state of a key after its change', async () => {
    const { source, resolver } = setup();
    const { secret, rec } = storedKey(source);
    expect((await ok(resolver.resolve(secret))).policy.enabled).toBe(true);
    rec.enabled = false;
    resolver.apply([change('key', rec.id)]);
    expect((await ok(resolver.resolve(secret))).policy.enabled).toBe(false);
  });

  it('keeps other keys cached on a key change', async () => {
    const { source, resolver } = setup();
    const a = storedKey(source, { id: 'key_a' });
    const b = storedKey(source, { id: 'key_b' });
    await resolver.resolve(a.secret);
    await resolver.resolve(b.secret);
    resolver.apply([change('key', 'key_a')]);
    await resolver.resolve(b.secret);
    expect(source.lookups).toBe(2);
  });

  it('drops every key of an owner on an owner change', async () => {
    const { source, resolver } = setup();
    source.owners.set('own_1', owner('own_1'));
    const a = storedKey(source, { id: 'key_a', ownerId: 'own_1' });
    const b = storedKey(source, { id: 'key_b', ownerId: 'own_1' });
    const c = storedKey(source, { id: 'key_c', ownerId: null });
    for (const s of [a, b, c]) await resolver.resolve(s.secret);
    resolver.apply([change('owner', 'own_1')]);
    expect(resolver.size).toBe(1);
    for (const s of [a, b, c]) await resolver.resolve(s.secret);
    expect(source.lookups).toBe(5);
  });

  it('reflects an owner suspension after the owner change', async () => {
    const { source, resolver } = setup();
    source.owners.set('own_1', owner('own_1'));
    const { secret } = storedKey(source, { ownerId: 'own_1' });
    expect((await ok(resolver.resolve(secret))).policy.status(NOW)).toBe('active');
    source.owners.set('own_1', owner('own_1', { status: 'disabled' }));
    resolver.apply([change('owner', 'own_1')]);
    expect((await ok(resolver.resolve(secret))).policy.status(NOW)).toBe('suspended');
  });

  it('clears negative entries when a key is created', async () => {
    const { source, resolver } = setup();
    const { secret } = generateSecret('live');
    expect((await resolver.resolve(secret)).ok).toBe(false);
    source.add(keyRecord({ id: 'key_new', secretHash: hashSecret(PEPPER, secret) }));
    resolver.apply([change('key', 'key_new')]);
    expect((await resolver.resolve(secret)).ok).toBe(true);
    expect(source.lookups).toBe(2);
  });

  it('keeps negative entries on an owner change', async () => {
    const { source, resolver } = setup();
    const unknown = generateSecret('live').secret;
    await resolver.resolve(unknown);
    resolver.apply([change('owner', 'own_1')]);
    await resolver.resolve(unknown);
    expect(source.lookups).toBe(1);
  });

  it('ignores changes to other entity types', async () => {
    const { source, resolver } = setup();
    const { secret } = storedKey(source);
    await resolver.resolve(secret);
    resolver.apply([change('group', 'grp_1'), change('workspace', WS), change('signing-key', 'sk_1')]);
    await resolver.resolve(secret);
    expect(source.lookups).toBe(1);
  });

  it('does not cache a lookup that raced a change', async () => {
    const { source, resolver } = setup();
    const { secret, rec } = storedKey(source);
    const pending = resolver.resolve(secret);
    resolver.apply([change('key', rec.id)]);
    expect((await pending).ok).toBe(true);
    expect(resolver.size).toBe(0);
    await resolver.resolve(secret);
    expect(source.lookups).toBe(2);
  });

  it('drops everything on clear()', async () => {
    const { source, resolver } = setup();
    const { secret } = storedKey(source);
    const unknown = generateSecret('live').secret;
    await resolver.resolve(secret);
    await resolver.resolve(unknown);
    resolver.clear();
    await resolver.resolve(secret);
    await resolver.resolve(unknown);
    expect(source.lookups).toBe(4);
  });

  it('resolves a retired secret still in its grace period', async () => {
    const { source, resolver } = setup();
    const old = generateSecret('live').secret;
    storedKey(source, { retiredSecrets: [{ hash: hashSecret(PEPPER, old), expiresAt: new Date(NOW + 60_000).toISOString() }] });
    const r = await ok(resolver.resolve(old));
    expect(r.hash).toBe(hashSecret(PEPPER, old));
  });

  it('refuses a retired secret past its expiry', async () => {
    const { source, resolver } = setup();
    const old = generateSecret('live').secret;
    storedKey(source, { retiredSecrets: [{ hash: hashSecret(PEPPER, old), expiresAt: new Date(NOW - 1).toISOString() }] });
    expect(await resolver.resolve(old)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
  });

  it('refuses a cached retired secret once its grace period ends', async () => {
    let now = NOW;
    const { source, resolver } = setup({ now: () => now });
    const old = generateSecret('live').secret;
    storedKey(source, { retiredSecrets: [{ hash: hashSecret(PEPPER, old), expiresAt: new Date(NOW + 60_000).toISOString() }] });
    expect((await resolver.resolve(old)).ok).toBe(true);
    now = NOW + 60_000;
    expect(await resolver.resolve(old)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
    expect(source.lookups).toBe(1);
  });
});

describe('KeyResolver.resolve with a connection memo', () => {
  it('recognises the secret a connection repeats without the cache (it survives eviction)', async () => {
    const { source, stats, resolver } = setup({ maxEntries: 1 });
    const a = storedKey(source);
    const b = storedKey(source);
    const memo = new CredentialMemo();
    await resolver.resolve(a.secret, memo); // miss: loaded, not yet remembered
    expect((await ok(resolver.resolve(a.secret, memo))).policy.keyId).toBe(a.rec.id); // cache hit: remembered
    await resolver.resolve(b.secret); // another connection's key evicts a from the one-entry cache
    const again = resolver.resolve(a.secret, memo);
    expect(again).not.toBeInstanceOf(Promise);
    expect((await ok(again)).policy.keyId).toBe(a.rec.id);
    expect(source.lookups).toBe(2);
    expect(stats.hits).toBe(2);
  });

  it('does not answer a different secret from the memo', async () => {
    const { source, resolver } = setup();
    const a = storedKey(source);
    const b = storedKey(source);
    const memo = new CredentialMemo();
    await resolver.resolve(a.secret, memo);
    await resolver.resolve(a.secret, memo);
    expect((await ok(resolver.resolve(b.secret, memo))).policy.keyId).toBe(b.rec.id);
    const unknown = generateSecret('live').secret;
    expect(await resolver.resolve(unknown, memo)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
    // Differs from a's secret in its last character only.
    const near = a.secret.slice(0, -1) + (a.secret.endsWith('A') ? 'B' : 'A');
    expect(await resolver.resolve(near, memo)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
  });

  it('forgets what it remembered once anything changes', async () => {
    const { source, resolver } = setup();
    const { secret, rec } = storedKey(source);
    const memo = new CredentialMemo();
    await resolver.resolve(secret, memo);
    await resolver.resolve(secret, memo);
    source.records = source.records.filter((r) => r !== rec);
    resolver.apply([change('key', rec.id)]);
    expect(await resolver.resolve(secret, memo)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
    expect(source.lookups).toBe(2);
  });

  it('forgets on an owner change and on clear()', async () => {
    const { source, resolver } = setup();
    source.owners.set('own_1', owner('own_1'));
    const { secret } = storedKey(source, { ownerId: 'own_1' });
    const memo = new CredentialMemo();
    await resolver.resolve(secret, memo);
    await resolver.resolve(secret, memo);
    source.owners.set('own_1', owner('own_1', { status: 'disabled' }));
    resolver.apply([change('owner', 'own_1')]);
    expect((await ok(resolver.resolve(secret, memo))).policy.status(NOW)).toBe('suspended');
    expect(source.lookups).toBe(2);
    resolver.clear();
    await resolver.resolve(secret, memo);
    expect(source.lookups).toBe(3);
  });

  it('is not used while the node is not fresh', async () => {
    let fresh = true;
    const { source, resolver } = setup({ fresh: () => fresh });
    const { secret } = storedKey(source);
    const memo = new CredentialMemo();
    await resolver.resolve(secret, memo);
    await resolver.resolve(secret, memo);
    fresh = false;
    source.fail = true;
    expect(await resolver.resolve(secret, memo)).toEqual({ ok: false, code: 'STORE_UNAVAILABLE' });
  });

  it('does not remember a retired secret: its grace period is checked on every request', async () => {
    let now = NOW;
    const { source, resolver } = setup({ now: () => now });
    const old = generateSecret('live').secret;
    storedKey(source, { retiredSecrets: [{ hash: hashSecret(PEPPER, old), expiresAt: new Date(NOW + 60_000).toISOString() }] });
    const memo = new CredentialMemo();
    expect((await resolver.resolve(old, memo)).ok).toBe(true);
    expect((await resolver.resolve(old, memo)).ok).toBe(true);
    now = NOW + 60_000;
    expect(await resolver.resolve(old, memo)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
  });
});

describe('KeyResolver.resolveById', () => {
  it('loads a key by id on a miss', async () => {
    const { source, stats, resolver } = setup();
    const { rec } = storedKey(source);
    const p = await resolver.resolveById(rec.id);
    expect(p).toMatchObject({ keyId: rec.id });
    expect(source.lookupsById).toBe(1);
    expect(stats.misses).toBe(1);
  });

  it('serves a known key id from the cache', async () => {
    const { source, stats, resolver } = setup();
    const { rec } = storedKey(source);
    await resolver.resolveById(rec.id);
    const again = resolver.resolveById(rec.id);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ keyId: rec.id });
    expect(source.lookupsById).toBe(1);
    expect(stats.hits).toBe(1);
  });

  it('answers null for a deleted key and caches that answer', async () => {
    const { source, resolver } = setup();
    expect(await resolver.resolveById('key_gone')).toBeNull();
    expect(await resolver.resolveById('key_gone')).toBeNull();
    expect(source.lookupsById).toBe(1);
  });

  it('reloads a key by id after its change', async () => {
    const { source, resolver } = setup();
    const { rec } = storedKey(source);
    await resolver.resolveById(rec.id);
    source.records = [];
    resolver.apply([change('key', rec.id)]);
    expect(await resolver.resolveById(rec.id)).toBeNull();
    expect(source.lookupsById).toBe(2);
  });

  it('reloads a key by id after its owner changes', async () => {
    const { source, resolver } = setup();
    source.owners.set('own_1', owner('own_1'));
    const { rec } = storedKey(source, { ownerId: 'own_1' });
    await resolver.resolveById(rec.id);
    resolver.apply([change('owner', 'own_1')]);
    await resolver.resolveById(rec.id);
    expect(source.lookupsById).toBe(2);
  });

  it('answers STORE_UNAVAILABLE when the source throws', async () => {
    const { source, stats, resolver } = setup();
    source.fail = true;
    expect(await resolver.resolveById('key_1')).toBe('STORE_UNAVAILABLE');
    expect(stats.storeErrors).toBe(1);
  });

  it('goes to the source every time while not fresh', async () => {
    const { source, resolver } = setup({ fresh: () => false });
    const { rec } = storedKey(source);
    await resolver.resolveById(rec.id);
    await resolver.resolveById(rec.id);
    expect(source.lookupsById).toBe(2);
  });

  it('refuses a malformed secret or a bad checksum without a store lookup or a counted miss', async () => {
    let lookups = 0;
    let misses = 0;
    const r = new KeyResolver({
      source: { lookup: async () => { lookups++; return null; }, lookupById: async () => null },
      pepper: PEPPER, fresh: () => true,
      stats: { hit: () => undefined, miss: () => { misses++; }, storeError: () => undefined },
    });
    const { secret } = generateSecret('live');
    const badChecksum = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    for (const s of [badChecksum, `${secret}x`, 'kg_live_short', 'x'.repeat(16_000)]) {
      expect(await r.resolve(s)).toEqual({ ok: false, code: 'UNAUTHENTICATED' });
    }
    expect(lookups).toBe(0);
    expect(misses).toBe(0);
  });
});
