import type { Environment } from './secret.js';

export type KeyType = 'workspace' | 'profile';
export const KEY_TYPES: readonly KeyType[] = ['workspace', 'profile'];
export const ENVIRONMENTS: readonly Environment[] = ['live', 'test'];
export type KeyStatus = 'active' | 'disabled' | 'expired' | 'suspended';
export const KEY_STATUSES: readonly KeyStatus[] = ['active', 'disabled', 'expired', 'suspended'];

export interface RateLimit { limit: number; windowSeconds: number }
export type QuotaPeriod = 'day' | 'month';
export interface Quota { limit: number; period: QuotaPeriod }

/** A previous secret that keeps working until `expiresAt` after a rotation. */
export interface RetiredSecret { hash: string; expiresAt: string }

/** What the store holds for a key. Hashes and the simple-auth salt never leave the server. */
export interface KeyRecord {
  id: string;
  workspaceId: string;
  name: string;
  description: string;
  groupId: string | null;
  ownerId: string | null;
  type: KeyType;
  environment: Environment;
  prefix: string;
  enabled: boolean;
  permissions: string[];
  permissionsLocked: boolean;
  ipAllowlist: string[];
  eventAllowlist: string[];
  eventDenylist: string[];
  profileAttributeAllowlist: string[];
  basicAuth: boolean;
  simpleAuth: { enabled: boolean; salt: string | null };
  rateLimit: RateLimit | null;
  quota: Quota | null;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  version: number;
  secretHash: string;
  retiredSecrets: RetiredSecret[];
  /** Position in creation order; the list cursor walks it. */
  seq: number;
}

/** A key as the admin API shows it. */
export interface ApiKey {
  id: string;
  workspaceId: string;
  name: string;
  description: string;
  groupId: string | null;
  ownerId: string | null;
  type: KeyType;
  environment: Environment;
  prefix: string;
  status: KeyStatus;
  permissions: string[];
  /** The catalogue's permissions the key may call now: its own intersected with its owner's. */
  effectivePermissions: string[];
  permissionsLocked: boolean;
  ipAllowlist: string[];
  eventAllowlist: string[];
  eventDenylist: string[];
  profileAttributeAllowlist: string[];
  basicAuth: boolean;
  simpleAuth: { enabled: boolean; salt?: string };
  rateLimit: RateLimit | null;
  quota: Quota | null;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  version: number;
}

/**
 * Status is derived, never stored: an explicit disable wins, then the owner's suspension,
 * then expiry (which may pass between two reads without any write).
 */
export function deriveStatus(key: Pick<KeyRecord, 'enabled' | 'expiresAt'>, ownerActive: boolean, now: number): KeyStatus {
  return statusAt(key.enabled, ownerActive, key.expiresAt === null ? null : Date.parse(key.expiresAt), now);
}

/** The same rule on precompiled values, for the hot path. */
export function statusAt(enabled: boolean, ownerActive: boolean, expiresAtMs: number | null, now: number): KeyStatus {
  if (!enabled) return 'disabled';
  if (!ownerActive) return 'suspended';
  if (expiresAtMs !== null && expiresAtMs <= now) return 'expired';
  return 'active';
}

export function toApiKey(rec: KeyRecord, ownerActive: boolean, lastUsedAt: string | null, now: number, effectivePermissions: string[] = []): ApiKey {
  return {
    id: rec.id,
    workspaceId: rec.workspaceId,
    name: rec.name,
    description: rec.description,
    groupId: rec.groupId,
    ownerId: rec.ownerId,
    type: rec.type,
    environment: rec.environment,
    prefix: rec.prefix,
    status: deriveStatus(rec, ownerActive, now),
    permissions: [...rec.permissions],
    effectivePermissions,
    permissionsLocked: rec.permissionsLocked,
    ipAllowlist: [...rec.ipAllowlist],
    eventAllowlist: [...rec.eventAllowlist],
    eventDenylist: [...rec.eventDenylist],
    profileAttributeAllowlist: [...rec.profileAttributeAllowlist],
    basicAuth: rec.basicAuth,
    simpleAuth: { enabled: rec.simpleAuth.enabled },
    rateLimit: rec.rateLimit ? { ...rec.rateLimit } : null,
    quota: rec.quota ? { ...rec.quota } : null,
    createdAt: rec.createdAt,
    updatedAt: rec.updatedAt,
    expiresAt: rec.expiresAt,
    lastUsedAt,
    version: rec.version,
  };
}
