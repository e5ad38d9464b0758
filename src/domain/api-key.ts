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
  /** When the secret was last rotated (absent or null: never; its age counts from `createdAt`). */
  rotatedAt?: string | null;
  /** Set when the key expired for going unused `keys.inactivityDays`; a PATCH of `expiresAt` or `enabled` clears it. */
  inactiveSince?: string | null;
  /** When an admin last revived it from inactivity: its idle time counts from here at the earliest. */
  revivedAt?: string | null;
}

/** Why a key is expired: its `expiresAt` passed, or it went unused for `keys.inactivityDays`. */
export type ExpiredReason = 'expiresAt' | 'inactivity';

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
  /** When the secret was last rotated (null: never since creation). */
  rotatedAt: string | null;
  /** The secret is older than `keys.rotationReminderDays` (since creation or the last rotation). */
  rotationDue: boolean;
  /** With `status: expired`, why; else null. */
  expiredReason: ExpiredReason | null;
}

/**
 * Status is derived, never stored: an explicit disable wins, then the owner's suspension,
 * then expiry (which may pass between two reads without any write).
 */
export function deriveStatus(key: Pick<KeyRecord, 'enabled' | 'expiresAt' | 'inactiveSince'>, ownerActive: boolean, now: number): KeyStatus {
  return statusAt(key.enabled, ownerActive, expiryOf(key), now);
}

/** The instant the key stops working (ms): an inactive key already has, whatever the clock says. */
export function expiryOf(key: Pick<KeyRecord, 'expiresAt' | 'inactiveSince'>): number | null {
  if (key.inactiveSince != null) return Number.NEGATIVE_INFINITY;
  return key.expiresAt === null ? null : Date.parse(key.expiresAt);
}

export const DAY_MS = 86_400_000;

/** Whether the key's secret (since creation or its last rotation) is older than `reminderDays`. */
export function rotationDue(key: Pick<KeyRecord, 'createdAt' | 'rotatedAt'>, reminderDays: number, now: number): boolean {
  return now - Date.parse(key.rotatedAt ?? key.createdAt) >= reminderDays * DAY_MS;
}

/** The latest sign of life of a key: its last recorded use, its creation, an admin's revival. */
export function lastActivity(key: Pick<KeyRecord, 'createdAt' | 'revivedAt'>, lastUsedAt: string | null): number {
  let t = Date.parse(key.createdAt);
  if (key.revivedAt != null) t = Math.max(t, Date.parse(key.revivedAt));
  if (lastUsedAt !== null) t = Math.max(t, Date.parse(lastUsedAt));
  return t;
}

/** The same rule on precompiled values, for the hot path. */
export function statusAt(enabled: boolean, ownerActive: boolean, expiresAtMs: number | null, now: number): KeyStatus {
  if (!enabled) return 'disabled';
  if (!ownerActive) return 'suspended';
  if (expiresAtMs !== null && expiresAtMs <= now) return 'expired';
  return 'active';
}

export function toApiKey(
  rec: KeyRecord, ownerActive: boolean, lastUsedAt: string | null, now: number,
  effectivePermissions: string[] = [], rotationReminderDays = 90,
): ApiKey {
  const status = deriveStatus(rec, ownerActive, now);
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
    status,
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
    rotatedAt: rec.rotatedAt ?? null,
    rotationDue: rotationDue(rec, rotationReminderDays, now),
    expiredReason: status !== 'expired' ? null : rec.inactiveSince != null ? 'inactivity' : 'expiresAt',
  };
}
