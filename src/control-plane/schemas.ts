import { z } from 'zod';
import { parseCidr } from '../domain/cidr.js';
import { ADMIN_SCOPES } from '../domain/admin-scopes.js';
import { formatIssues } from '../domain/issues.js';
import { ValidationError } from '../errors/catalogue.js';

// Admin request bodies. Every object is strict: an unknown field is a 400 naming it.

export const LIMITS = {
  name: 200,
  description: 2000,
  listEntries: 1000,
  listEntryLength: 200,
  permissions: 500,
} as const;

const name = z.string().min(1).max(LIMITS.name);
const description = z.string().max(LIMITS.description);
const nonNegativeInt = (max: number) => z.number().int().min(0).max(max);

const cidr = z.string().max(100).superRefine((value, ctx) => {
  const parsed = parseCidr(value);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

const listOf = (item: z.ZodType<string>) => z.array(item).max(LIMITS.listEntries);

// Event names are matched exactly, or by prefix when the entry ends in `*`.
const eventPattern = z.string().min(1).max(LIMITS.listEntryLength)
  .refine((s) => !s.slice(0, -1).includes('*'), { message: 'may contain "*" only as its last character' });
const attributeName = z.string().min(1).max(LIMITS.listEntryLength);

const rateLimit = z.strictObject({
  limit: nonNegativeInt(1_000_000_000),
  windowSeconds: z.number().int().min(1).max(31 * 86_400),
}).nullable();

const quota = z.strictObject({
  limit: nonNegativeInt(1_000_000_000_000),
  period: z.enum(['day', 'month']),
}).nullable();

const expiresAt = z.iso.datetime({ offset: true }).nullable();
const permissions = z.array(z.string().max(LIMITS.listEntryLength)).max(LIMITS.permissions);
const ref = z.string().min(1).max(100).nullable();

const keyFields = {
  name,
  description,
  groupId: ref,
  ownerId: ref,
  permissions,
  preset: z.string().min(1).max(100),
  permissionsLocked: z.boolean(),
  ipAllowlist: listOf(cidr),
  eventAllowlist: listOf(eventPattern),
  eventDenylist: listOf(eventPattern),
  profileAttributeAllowlist: listOf(attributeName),
  basicAuth: z.boolean(),
  simpleAuth: z.strictObject({ enabled: z.boolean() }),
  rateLimit,
  quota,
  expiresAt,
  enabled: z.boolean(),
};

export const createKeySchema = z.strictObject({
  ...keyFields,
  workspaceId: z.string().min(1).max(100),
  type: z.enum(['workspace', 'profile']).default('workspace'),
  environment: z.enum(['live', 'test']).default('live'),
  description: description.default(''),
  groupId: ref.default(null),
  ownerId: ref.default(null),
  permissions: permissions.optional(),
  preset: keyFields.preset.optional(),
  permissionsLocked: z.boolean().default(false),
  ipAllowlist: listOf(cidr).default([]),
  eventAllowlist: listOf(eventPattern).default([]),
  eventDenylist: listOf(eventPattern).default([]),
  profileAttributeAllowlist: listOf(attributeName).default([]),
  basicAuth: z.boolean().default(false),
  simpleAuth: keyFields.simpleAuth.default({ enabled: false }),
  /** Omitted: the config's default for the key's type (`rateLimit.defaults`); null: no limit. */
  rateLimit: rateLimit.optional(),
  quota: quota.default(null),
  expiresAt: expiresAt.optional(),
  enabled: z.boolean().default(true),
});
export type CreateKeyInput = z.infer<typeof createKeySchema>;

export const patchKeySchema = z.strictObject(keyFields).partial();
export type PatchKeyInput = z.infer<typeof patchKeySchema>;

export const rotateKeySchema = z.strictObject({
  gracePeriodSeconds: z.number().int().min(0).max(90 * 86_400).optional(),
});

export const createWorkspaceSchema = z.strictObject({ name });
export const patchWorkspaceSchema = z.strictObject({ name }).partial();

/** Groups and owners may belong to one workspace; without one they are shared by all. */
const workspaceRef = z.string().min(1).max(100).nullable();

export const createGroupSchema = z.strictObject({ name, description: description.default(''), workspaceId: workspaceRef.default(null) });
export const patchGroupSchema = z.strictObject({ name, description }).partial();

const ownerStatus = z.enum(['active', 'disabled']);
/**
 * An owner's permissions bound its keys' (effective = key ∩ owner). Omitted, they are `["*"]`:
 * an owner restricts nothing until told to, so attaching a key to a new owner never silently
 * refuses every request it makes.
 */
export const createOwnerSchema = z.strictObject({
  name,
  status: ownerStatus.default('active'),
  permissions: permissions.default(['*']),
  workspaceId: workspaceRef.default(null),
});
export const patchOwnerSchema = z.strictObject({ name, status: ownerStatus, permissions }).partial();

const scope = z.string().max(50).refine((s) => (ADMIN_SCOPES as readonly string[]).includes(s), {
  message: `must be "*" or <resource>:read|write for a resource of ${[...new Set(ADMIN_SCOPES.filter((x) => x !== '*').map((x) => x.split(':')[0]))].join(', ')}`,
});
export const createAdminTokenSchema = z.strictObject({
  name,
  scopes: z.array(scope).min(1).max(ADMIN_SCOPES.length),
  /** Confines the token to these workspaces; omitted or null: every workspace. */
  workspaces: z.array(z.string().min(1).max(100)).min(1).max(LIMITS.listEntries).nullable().default(null),
});
export type CreateAdminTokenInput = z.infer<typeof createAdminTokenSchema>;

const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);
const cursor = z.string().min(1).max(300).optional();

/** Every list: `limit` (1–500, default 50) and the `cursor` a previous page gave as `nextCursor`. */
export const listQuerySchema = z.strictObject({ limit: limit(500, 50), cursor });
export type ListQuery = z.infer<typeof listQuerySchema>;

export const keyListQuerySchema = z.strictObject({
  q: z.string().max(200).optional(),
  workspaceId: z.string().max(100).optional(),
  groupId: z.string().max(100).optional(),
  type: z.enum(['workspace', 'profile']).optional(),
  environment: z.enum(['live', 'test']).optional(),
  status: z.enum(['active', 'disabled', 'expired', 'suspended']).optional(),
  /** `true`: only keys whose secret is older than `keys.rotationReminderDays`; `false`: only the others. */
  rotationDue: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  limit: limit(500, 50),
  cursor,
});
export type KeyListQuery = z.infer<typeof keyListQuerySchema>;

const instant = z.iso.datetime({ offset: true });
export const auditQuerySchema = z.strictObject({
  /** The same as `targetType=key&targetId=…`. */
  keyId: z.string().max(100).optional(),
  targetType: z.enum(['workspace', 'key', 'group', 'owner', 'signing-key', 'admin-token']).optional(),
  targetId: z.string().max(100).optional(),
  /** The admin token's name or id (`adm_…`, `config:<name>`). */
  actor: z.string().max(200).optional(),
  /** An action (`key.update`), or every action of a kind with a trailing `.*` (`key.*`). */
  action: z.string().max(100).optional(),
  /** Entries at or after this instant. */
  since: instant.optional(),
  /** Entries before this instant. */
  until: instant.optional(),
  limit: limit(1000, 100),
  cursor,
});
export type AuditQuery = z.infer<typeof auditQuerySchema>;

/** `POST /v1/leaks`: a secret found where it should not be. */
export const leakReportSchema = z.strictObject({
  secret: z.string().min(1).max(200),
  source: z.string().min(1).max(200).optional(),
  url: z.url().max(2000).optional(),
});

/** Parses or throws a 400 whose message names every bad field. */
export function parseBody<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(formatIssues(result.error.issues));
  return result.data;
}
