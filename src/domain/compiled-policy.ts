import { expiryOf, statusAt, type KeyRecord, type KeyStatus, type KeyType, type Quota, type RateLimit } from './api-key.js';
import { compileIpAllowlist, type IpMatcher } from './cidr.js';
import type { Owner } from './entities.js';
import { Interner } from './interner.js';
import { effectivePermissions, type PermissionMatcher } from './permissions.js';
import { secretFingerprint, type Environment } from './secret.js';

export type NameMatcher = (name: string) => boolean;

/**
 * Exact names in a set, `prefix*` entries as a list of prefixes; `*` alone matches all.
 * Returns null for an empty list so callers can tell "no list" from "matches nothing".
 */
export function compileNameList(entries: readonly string[]): NameMatcher | null {
  if (entries.length === 0) return null;
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const e of entries) {
    if (e.endsWith('*')) prefixes.push(e.slice(0, -1));
    else exact.add(e);
  }
  if (prefixes.includes('')) return () => true;
  if (prefixes.length === 0) return (name) => exact.has(name);
  return (name) => {
    if (exact.has(name)) return true;
    for (const p of prefixes) if (name.startsWith(p)) return true;
    return false;
  };
}


// Compiled matchers are shared between keys with equal lists (see Interner).
const permissionMatchers = new Interner<PermissionMatcher>(4_096);
const ipMatchers = new Interner<IpMatcher>(4_096);
const nameMatchers = new Interner<NameMatcher>(4_096);
const NO_RETIRED: ReadonlyMap<string, number> = new Map();

const sharedNameList = (entries: readonly string[]): NameMatcher | null =>
  entries.length === 0 ? null : nameMatchers.get(JSON.stringify(entries), () => compileNameList(entries)!);

/**
 * What a request is checked against: one key version compiled once, checked in O(1). A class,
 * not a literal with closures: one `status` on the prototype, not one per key.
 */
class Policy {
  readonly keyId: string;
  readonly workspaceId: string;
  readonly ownerId: string | null;
  readonly version: number;
  readonly type: KeyType;
  readonly environment: Environment;
  readonly basicAuth: boolean;
  readonly enabled: boolean;
  readonly ownerActive: boolean;
  readonly expiresAt: number | null;
  /** Expired for going unused (`keys.inactivityDays`): refused with a message saying so. */
  readonly inactive: boolean;
  readonly secretHash: string;
  /** Retired secret hash → the instant (ms) it stops working. */
  readonly retired: ReadonlyMap<string, number>;
  /** Fingerprints (see `secretFingerprint`) of the current secret and of retired ones → until when. */
  readonly fingerprint: string;
  readonly retiredFingerprints: ReadonlyMap<string, number>;
  readonly simpleAuthSalt: string | null;
  readonly allows: PermissionMatcher;
  /** The key's own permission patterns, as given (an owner's permissions may narrow what `allows` grants). */
  readonly permissions: readonly string[];
  readonly ipRestricted: boolean;
  readonly ipAllowed: IpMatcher;
  /** null when the key has no allowlist (every event allowed unless denied). */
  readonly eventAllowed: NameMatcher | null;
  readonly eventDenied: NameMatcher | null;
  readonly attributeAllowed: NameMatcher | null;
  readonly rateLimit: RateLimit | null;
  readonly quota: Quota | null;

  constructor(rec: KeyRecord, owner: Owner | null) {
    this.keyId = rec.id;
    this.workspaceId = rec.workspaceId;
    this.ownerId = rec.ownerId;
    this.version = rec.version;
    this.type = rec.type;
    this.environment = rec.environment;
    this.basicAuth = rec.basicAuth;
    this.enabled = rec.enabled;
    this.ownerActive = owner === null || owner.status === 'active';
    this.expiresAt = expiryOf(rec);
    this.inactive = rec.inactiveSince != null;
    this.secretHash = rec.secretHash;
    const retired = rec.retiredSecrets;
    this.retired = retired.length === 0 ? NO_RETIRED : new Map(retired.map((r) => [r.hash, Date.parse(r.expiresAt)]));
    this.fingerprint = secretFingerprint(rec.secretHash);
    this.retiredFingerprints = retired.length === 0 ? NO_RETIRED : new Map(retired.map((r) => [secretFingerprint(r.hash), Date.parse(r.expiresAt)]));
    this.simpleAuthSalt = rec.simpleAuth.enabled ? rec.simpleAuth.salt : null;
    // An owner that vanished leaves no bound; an existing owner bounds the key.
    const ownerPermissions = owner ? owner.permissions : null;
    this.permissions = rec.permissions;
    this.allows = permissionMatchers.get(JSON.stringify([rec.permissions, ownerPermissions]), () => effectivePermissions(rec.permissions, ownerPermissions));
    this.ipRestricted = rec.ipAllowlist.length > 0;
    this.ipAllowed = ipMatchers.get(JSON.stringify(rec.ipAllowlist), () => compileIpAllowlist(rec.ipAllowlist));
    this.eventAllowed = sharedNameList(rec.eventAllowlist);
    this.eventDenied = sharedNameList(rec.eventDenylist);
    this.attributeAllowed = sharedNameList(rec.profileAttributeAllowlist);
    this.rateLimit = rec.rateLimit;
    this.quota = rec.quota;
  }

  status(now: number): KeyStatus {
    return statusAt(this.enabled, this.ownerActive, this.expiresAt, now);
  }
}

export type CompiledPolicy = Policy;

/** Compiles one key version (and its owner) into what requests are checked against. */
export function compilePolicy(rec: KeyRecord, owner: Owner | null): CompiledPolicy {
  return new Policy(rec, owner);
}
