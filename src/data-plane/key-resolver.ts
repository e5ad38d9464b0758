import { LRUCache } from 'lru-cache';
import type { KeyRecord } from '../domain/api-key.js';
import { compilePolicy, type CompiledPolicy } from '../domain/compiled-policy.js';
import type { Owner } from '../domain/entities.js';
import { hashSecret } from '../domain/secret.js';
import type { Change, KeyStore } from '../store/types.js';

/** The one read the data plane makes of the store: a key by secret hash, with its owner. */
export interface KeySource {
  lookup(hash: string): Promise<{ record: KeyRecord; owner: Owner | null } | null>;
}

/** A KeySource over a store in this process. */
export function storeKeySource(store: Pick<KeyStore, 'findKeyBySecretHash' | 'getOwner'>): KeySource {
  return {
    async lookup(hash) {
      const record = await store.findKeyBySecretHash(hash);
      if (!record) return null;
      return { record, owner: record.ownerId ? await store.getOwner(record.ownerId) : null };
    },
  };
}

export type Resolution =
  | { ok: true; policy: CompiledPolicy }
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
 * Secret → compiled policy, through an LRU of positive and negative entries keyed by the
 * peppered hash (the cache never holds a secret). Entries are dropped by the change feed;
 * while the node cannot confirm it is fresh, every lookup goes to the store, and a store
 * fault then answers 503: authentication never fails open.
 */
export class KeyResolver {
  private readonly source: KeySource;
  private readonly pepper: string;
  private readonly fresh: () => boolean;
  private readonly stats: ResolverStats;
  private readonly now: () => number;
  private readonly positive: LRUCache<string, CompiledPolicy>;
  private readonly negative: LRUCache<string, true>;
  private readonly hashesByKey = new Map<string, Set<string>>();
  /** Bumped by every change; a lookup that raced a change is used but not cached. */
  private generation = 0;

  constructor(opts: KeyResolverOptions) {
    this.source = opts.source;
    this.pepper = opts.pepper;
    this.fresh = opts.fresh;
    this.stats = opts.stats;
    this.now = opts.now ?? Date.now;
    this.positive = new LRUCache<string, CompiledPolicy>({
      max: opts.maxEntries ?? 100_000,
      dispose: (policy, hash) => {
        const set = this.hashesByKey.get(policy.keyId);
        if (!set) return;
        set.delete(hash);
        if (set.size === 0) this.hashesByKey.delete(policy.keyId);
      },
    });
    this.negative = new LRUCache<string, true>({ max: opts.maxNegativeEntries ?? 10_000 });
  }

  get size(): number {
    return this.positive.size;
  }

  /** Resolves a secret whose format and checksum were already checked. */
  resolve(secret: string): Resolution | Promise<Resolution> {
    const hash = hashSecret(this.pepper, secret);
    if (this.fresh()) {
      const policy = this.positive.get(hash);
      if (policy !== undefined) {
        this.stats.hit();
        return this.admit(policy, hash);
      }
      if (this.negative.has(hash)) {
        this.stats.hit();
        return UNAUTHENTICATED;
      }
    }
    this.stats.miss();
    return this.load(hash);
  }

  private admit(policy: CompiledPolicy, hash: string): Resolution {
    if (hash === policy.secretHash) return { ok: true, policy };
    const until = policy.retired.get(hash);
    return until !== undefined && until > this.now() ? { ok: true, policy } : UNAUTHENTICATED;
  }

  private async load(hash: string): Promise<Resolution> {
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
        this.positive.set(hash, policy);
        let set = this.hashesByKey.get(policy.keyId);
        if (!set) this.hashesByKey.set(policy.keyId, (set = new Set()));
        set.add(hash);
      } else {
        this.negative.set(hash, true);
      }
    }
    return policy ? this.admit(policy, hash) : UNAUTHENTICATED;
  }

  /** Applies change-feed entries: drop what they touch. */
  apply(changes: readonly Change[]): void {
    for (const c of changes) {
      if (c.kind === 'key') {
        this.generation++;
        this.negative.clear();
        const hashes = this.hashesByKey.get(c.id);
        if (hashes) for (const h of [...hashes]) this.positive.delete(h);
      } else if (c.kind === 'owner') {
        this.generation++;
        for (const [hash, policy] of this.positive.entries()) if (policy.ownerId === c.id) this.positive.delete(hash);
      }
    }
  }

  /** After a gap in the feed nothing cached can be trusted. */
  clear(): void {
    this.generation++;
    this.positive.clear();
    this.negative.clear();
    this.hashesByKey.clear();
  }
}
