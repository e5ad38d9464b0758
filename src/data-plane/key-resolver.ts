import { hash as digest } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { compilePolicy, type CompiledPolicy } from '../domain/compiled-policy.js';
import { SECRET_LENGTH, checkSecretFormat, hashSecret } from '../domain/secret.js';
import type { KeySource } from '../store/key-source.js';
import type { Change } from '../store/types.js';
import type { VerifiedToken } from './tokens/token-service.js';

export type Resolution =
  /** `hash` is the peppered hash of the secret presented (current or retired). */
  | { ok: true; policy: CompiledPolicy; hash: string }
  | { ok: false; code: 'UNAUTHENTICATED' | 'STORE_UNAVAILABLE' };

export interface ResolverStats {
  hit(): void;
  miss(): void;
  storeError(): void;
}

export interface KeyResolverOptions {
  source: KeySource;
  pepper: string;
  /** Whether this node is known to be within the propagation bound of the store right now. */
  fresh: () => boolean;
  stats: ResolverStats;
  maxEntries?: number;
  maxNegativeEntries?: number;
  now?: () => number;
}

const UNAUTHENTICATED: Resolution = { ok: false, code: 'UNAUTHENTICATED' };
const STORE_UNAVAILABLE: Resolution = { ok: false, code: 'STORE_UNAVAILABLE' };

/**
 * A cached key found by a retired secret: its policy and the retired hash. A key found by
 * its current secret is cached as the policy alone (its hash is `policy.secretHash`), so
 * the common entry costs nothing beyond the policy.
 */
class RetiredHit {
  constructor(readonly policy: CompiledPolicy, readonly hash: string) {}
}
type Entry = CompiledPolicy | RetiredHit;
const policyOf = (entry: Entry): CompiledPolicy => (entry instanceof RetiredHit ? entry.policy : entry);

/**
 * A connection's last credential and what it resolved to. A keep-alive client presents the
 * same secret (or token) on every request, so a repeat is recognised by comparing it with the
 * one before (in constant time), with no hash and no cache lookup. A secret's resolution
 * stands only while nothing has changed since (the resolver's generation) and the node is
 * fresh; only a current secret is remembered (a retired one is rechecked against its grace
 * period each time). A token's verification stands as the token cache's does: its expiry and
 * its key are checked on every request. The credential lives as long as the connection, as
 * the request that carried it does.
 */
export class CredentialMemo {
  secret = '';
  hit: Resolution | null = null;
  generation = -1;
  token = '';
  verified: VerifiedToken | null = null;
}

/** Equal strings, compared without an early exit (only the length shows). */
export function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Secret → compiled policy, through an LRU of positive and negative entries. The cache is
 * keyed by a one-shot SHA-256 of the secret, never the secret itself: a 143-bit random
 * secret cannot be recovered from it, and it costs a sixth of the peppered HMAC (which also
 * allocates native objects the GC must finalise), so a cache hit computes no HMAC at all.
 * The HMAC — what the store indexes — is computed on a miss. Entries are dropped by the
 * change feed; while the node cannot confirm it is fresh, every lookup goes to the store,
 * and a store fault then answers 503: authentication never fails open.
 */
export class KeyResolver {
  private readonly source: KeySource;
  private readonly pepper: string;
  private readonly fresh: () => boolean;
  private readonly stats: ResolverStats;
  private readonly now: () => number;
  private readonly positive: LRUCache<string, Entry>;
  private readonly negative: LRUCache<string, true>;
  /** Key id → policy, for tokens; a null entry is a key that does not exist (deleted). */
  private readonly byId: LRUCache<string, CompiledPolicy | false>;
  /** Key id → the cache id (or ids, after a rotation) its entries are under. */
  private readonly cacheIdsByKey = new Map<string, string | Set<string>>();
  /** Bumped by every change; a lookup that raced a change is used but not cached. */
  private generation = 0;

  constructor(opts: KeyResolverOptions) {
    this.source = opts.source;
    this.pepper = opts.pepper;
    this.fresh = opts.fresh;
    this.stats = opts.stats;
    this.now = opts.now ?? Date.now;
    this.positive = new LRUCache<string, Entry>({
      max: opts.maxEntries ?? 100_000,
      dispose: (entry, cacheId) => {
        const keyId = policyOf(entry).keyId;
        const ids = this.cacheIdsByKey.get(keyId);
        if (ids === cacheId) this.cacheIdsByKey.delete(keyId);
        else if (typeof ids === 'object') {
          ids.delete(cacheId);
          if (ids.size === 0) this.cacheIdsByKey.delete(keyId);
        }
      },
    });
    this.negative = new LRUCache<string, true>({ max: opts.maxNegativeEntries ?? 10_000 });
    this.byId = new LRUCache<string, CompiledPolicy | false>({ max: opts.maxEntries ?? 100_000 });
  }

  get size(): number {
    return this.positive.size;
  }

  /**
   * Resolves a presented secret. A secret found in the cache passed the format and checksum
   * check when it was first seen, so only a miss pays for that check; typos and guesses stop
   * there, before any HMAC or store lookup.
   */
  resolve(secret: string, memo?: CredentialMemo): Resolution | Promise<Resolution> {
    if (secret.length !== SECRET_LENGTH) return UNAUTHENTICATED;
    const fresh = this.fresh();
    if (fresh && memo !== undefined && memo.hit !== null && memo.generation === this.generation && sameSecret(memo.secret, secret)) {
      this.stats.hit();
      return memo.hit;
    }
    const cacheId = digest('sha256', secret, 'base64url');
    if (fresh) {
      const entry = this.positive.get(cacheId);
      if (entry !== undefined) {
        this.stats.hit();
        if (entry instanceof RetiredHit) return this.admit(entry.policy, entry.hash);
        const hit: Resolution = { ok: true, policy: entry, hash: entry.secretHash };
        if (memo !== undefined) {
          memo.secret = secret;
          memo.hit = hit;
          memo.generation = this.generation;
        }
        return hit;
      }
      if (this.negative.has(cacheId)) {
        this.stats.hit();
        return UNAUTHENTICATED;
      }
    }
    if (checkSecretFormat(secret) === null) return UNAUTHENTICATED;
    this.stats.miss();
    return this.load(cacheId, hashSecret(this.pepper, secret));
  }

  private admit(policy: CompiledPolicy, hash: string): Resolution {
    if (hash === policy.secretHash) return { ok: true, policy, hash };
    const until = policy.retired.get(hash);
    return until !== undefined && until > this.now() ? { ok: true, policy, hash } : UNAUTHENTICATED;
  }

  private async load(cacheId: string, hash: string): Promise<Resolution> {
    const generation = this.generation;
    let policy: CompiledPolicy | null;
    try {
      const found = await this.source.lookup(hash);
      policy = found ? compilePolicy(found.record, found.owner) : null;
    } catch {
      this.stats.storeError();
      return STORE_UNAVAILABLE;
    }
    if (generation === this.generation) {
      if (policy) {
        this.positive.set(cacheId, hash === policy.secretHash ? policy : new RetiredHit(policy, hash));
        const ids = this.cacheIdsByKey.get(policy.keyId);
        if (ids === undefined) this.cacheIdsByKey.set(policy.keyId, cacheId);
        else if (typeof ids === 'string') {
          if (ids !== cacheId) this.cacheIdsByKey.set(policy.keyId, new Set([ids, cacheId]));
        } else ids.add(cacheId);
      } else {
        this.negative.set(cacheId, true);
      }
    }
    return policy ? this.admit(policy, hash) : UNAUTHENTICATED;
  }

  /** The current policy of a key by id (null: no such key), for requests carrying a token. */
  resolveById(keyId: string): CompiledPolicy | null | 'STORE_UNAVAILABLE' | Promise<CompiledPolicy | null | 'STORE_UNAVAILABLE'> {
    if (this.fresh()) {
      const cached = this.byId.get(keyId);
      if (cached !== undefined) {
        this.stats.hit();
        return cached === false ? null : cached;
      }
    }
    this.stats.miss();
    return this.loadById(keyId);
  }

  private async loadById(keyId: string): Promise<CompiledPolicy | null | 'STORE_UNAVAILABLE'> {
    const generation = this.generation;
    let policy: CompiledPolicy | null;
    try {
      const found = await this.source.lookupById(keyId);
      policy = found ? compilePolicy(found.record, found.owner) : null;
    } catch {
      this.stats.storeError();
      return 'STORE_UNAVAILABLE';
    }
    if (generation === this.generation) this.byId.set(keyId, policy ?? false);
    return policy;
  }

  /** Applies change-feed entries: drop what they touch. */
  apply(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.kind === 'key') {
        this.generation++;
        this.negative.clear();
        const ids = this.cacheIdsByKey.get(c.id);
        if (typeof ids === 'string') this.positive.delete(ids);
        else if (ids) for (const id of [...ids]) this.positive.delete(id);
        this.byId.delete(c.id);
      } else if (c.kind === 'owner') {
        this.generation++;
        for (const [cacheId, entry] of this.positive.entries()) if (policyOf(entry).ownerId === c.id) this.positive.delete(cacheId);
        for (const [keyId, policy] of this.byId.entries()) if (policy && policy.ownerId === c.id) this.byId.delete(keyId);
      }
    }
  }

  /** After a gap in the feed nothing cached can be trusted. */
  clear(): void {
    this.generation++;
    this.positive.clear();
    this.negative.clear();
    this.byId.clear();
    this.cacheIdsByKey.clear();
  }
}
