import { statusAt, type KeyRecord, type KeyStatus, type KeyType, type Quota, type RateLimit } from './api-key.js';
import { compileIpAllowlist, type IpMatcher } from './cidr.js';
import type { Owner } from './entities.js';
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

/** What a request is checked against: one key version compiled once, checked in O(1). */
export interface CompiledPolicy {
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
  readonly secretHash: string;
  /** Retired secret hash → the instant (ms) it stops working. */
  readonly retired: ReadonlyMap<string, number>;
  /** Fingerprints (see `secretFingerprint`) of the current secret and of retired ones → until when. */
  readonly fingerprint: string;
  readonly retiredFingerprints: ReadonlyMap<string, number>;
  readonly simpleAuthSalt: string | null;
  readonly allows: PermissionMatcher;
  readonly ipRestricted: boolean;
  readonly ipAllowed: IpMatcher;
  /** null when the key has no allowlist (every event allowed unless denied). */
  readonly eventAllowed: NameMatcher | null;
  readonly eventDenied: NameMatcher | null;
  readonly attributeAllowed: NameMatcher | null;
  readonly rateLimit: RateLimit | null;
  readonly quota: Quota | null;
  status(now: number): KeyStatus;
}

export function compilePolicy(rec: KeyRecord, owner: Owner | null): CompiledPolicy {
  const ownerActive = owner === null || owner.status === 'active';
  const expiresAt = rec.expiresAt === null ? null : Date.parse(rec.expiresAt);
  return {
    keyId: rec.id,
    workspaceId: rec.workspaceId,
    ownerId: rec.ownerId,
    version: rec.version,
    type: rec.type,
    environment: rec.environment,
    basicAuth: rec.basicAuth,
    enabled: rec.enabled,
    ownerActive,
    expiresAt,
    secretHash: rec.secretHash,
    retired: new Map(rec.retiredSecrets.map((r) => [r.hash, Date.parse(r.expiresAt)])),
    fingerprint: secretFingerprint(rec.secretHash),
    retiredFingerprints: new Map(rec.retiredSecrets.map((r) => [secretFingerprint(r.hash), Date.parse(r.expiresAt)])),
    simpleAuthSalt: rec.simpleAuth.enabled ? rec.simpleAuth.salt : null,
    // An owner that vanished leaves no bound; an existing owner bounds the key.
    allows: effectivePermissions(rec.permissions, owner ? owner.permissions : null),
    ipRestricted: rec.ipAllowlist.length > 0,
    ipAllowed: compileIpAllowlist(rec.ipAllowlist),
    eventAllowed: compileNameList(rec.eventAllowlist),
    eventDenied: compileNameList(rec.eventDenylist),
    attributeAllowed: compileNameList(rec.profileAttributeAllowlist),
    rateLimit: rec.rateLimit,
    quota: rec.quota,
    status: (now) => statusAt(rec.enabled, ownerActive, expiresAt, now),
  };
}
