import { z } from 'zod';
import { ADMIN_SCOPES } from '../domain/admin-scopes.js';

// What the admin API answers, as schemas: the OpenAPI document is generated from these and
// from the request schemas (schemas.ts), and the test suite checks every answer against them.
// Objects are strict, so a field added to an answer without its schema is a mismatch.

const time = z.iso.datetime({ offset: true });
const id = z.string().min(1);

export const errorSchema = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string(), requestId: z.string() }),
});

const rateLimit = z.strictObject({ limit: z.number().int(), windowSeconds: z.number().int() });
const quota = z.strictObject({ limit: z.number().int(), period: z.enum(['day', 'month']) });

export const keySchema = z.strictObject({
  id,
  workspaceId: id,
  name: z.string(),
  description: z.string(),
  groupId: id.nullable(),
  ownerId: id.nullable(),
  type: z.enum(['workspace', 'profile']),
  environment: z.enum(['live', 'test']),
  prefix: z.string(),
  status: z.enum(['active', 'disabled', 'expired', 'suspended']),
  permissions: z.array(z.string()),
  /** The route permissions the key may call now: its own intersected with its owner's. */
  effectivePermissions: z.array(z.string()),
  permissionsLocked: z.boolean(),
  ipAllowlist: z.array(z.string()),
  eventAllowlist: z.array(z.string()),
  eventDenylist: z.array(z.string()),
  profileAttributeAllowlist: z.array(z.string()),
  basicAuth: z.boolean(),
  /** `salt` only in the answer that enabled simple authentication. */
  simpleAuth: z.strictObject({ enabled: z.boolean(), salt: z.string().optional() }),
  rateLimit: rateLimit.nullable(),
  quota: quota.nullable(),
  createdAt: time,
  updatedAt: time,
  expiresAt: time.nullable(),
  lastUsedAt: time.nullable(),
  version: z.number().int(),
  /** When the secret was last rotated (null: never). */
  rotatedAt: time.nullable(),
  /** The secret is older than `keys.rotationReminderDays` (since `rotatedAt`, or `createdAt`). */
  rotationDue: z.boolean(),
  /** Why an `expired` key is: its `expiresAt` passed, or it went unused (`keys.inactivityDays`); null otherwise. */
  expiredReason: z.enum(['expiresAt', 'inactivity']).nullable(),
});

export const keyWithSecretSchema = z.strictObject({ key: keySchema, secret: z.string() });

export const workspaceSchema = z.strictObject({ id, name: z.string(), createdAt: time, updatedAt: time.optional() });

export const groupSchema = z.strictObject({
  id, name: z.string(), description: z.string(), workspaceId: id.nullable().optional(), createdAt: time, updatedAt: time,
});

export const ownerSchema = z.strictObject({
  id,
  name: z.string(),
  status: z.enum(['active', 'disabled']),
  permissions: z.array(z.string()),
  workspaceId: id.nullable().optional(),
  createdAt: time,
  updatedAt: time,
  version: z.number().int(),
});

/** An admin token, or keygate itself (`system`: an inactivity expiry, a secret scanner's report). */
const actorSchema = z.strictObject({ type: z.enum(['admin', 'system']), name: z.string(), tokenId: z.string().optional() });

export const adminTokenSchema = z.strictObject({
  id,
  name: z.string(),
  scopes: z.array(z.enum(ADMIN_SCOPES as [string, ...string[]])),
  workspaces: z.array(id).nullable(),
  createdAt: time,
  updatedAt: time,
  createdBy: actorSchema,
});

export const adminTokenWithSecretSchema = z.strictObject({ token: adminTokenSchema, secret: z.string() });

export const auditEntrySchema = z.strictObject({
  id,
  at: time,
  actor: actorSchema,
  action: z.string(),
  target: z.strictObject({ type: z.enum(['workspace', 'key', 'group', 'owner', 'signing-key', 'admin-token']), id }),
  workspaceId: id.nullable().optional(),
  before: z.unknown(),
  after: z.unknown(),
  /** What else the change records (an expiry's reason, a leak report's source and URL). */
  detail: z.record(z.string(), z.unknown()).optional(),
});

/** One request of a key, as the activity routes answer it: never a secret, token, query string or body. */
export const activitySchema = z.strictObject({
  keyId: id,
  /** When the request arrived. */
  at: time,
  requestId: z.string(),
  method: z.string(),
  /** The config route's name (`unmatched` never appears: a request without a route has no key). */
  route: z.string(),
  status: z.number().int(),
  outcome: z.string(),
  clientIp: z.string().nullable(),
});

/** `POST /v1/leaks`: the key the secret belongs to, and what was done (`leaks.action`). */
export const leakResultSchema = z.strictObject({ keyId: id, action: z.enum(['disable', 'notify']) });

const budget = z.strictObject({
  limit: z.number().int(), windowSeconds: z.number().int(), remaining: z.number().int(), resetSeconds: z.number(),
});
const quotaBudget = z.strictObject({
  limit: z.number().int(), period: z.enum(['day', 'month']), used: z.number().int(), remaining: z.number().int(), resetsAt: time,
});
export const usageSchema = z.strictObject({
  requests: z.strictObject({ total: z.number().int(), byOutcome: z.record(z.string(), z.number().int()) }),
  lastUsedAt: time.nullable(),
  rateLimit: budget.nullable(),
  quota: quotaBudget.nullable(),
});

export const permissionsSchema = z.strictObject({
  modules: z.record(z.string(), z.array(z.string())),
  presets: z.record(z.string(), z.array(z.string())),
});

export const nodeSchema = z.strictObject({
  id: z.string(),
  instance: z.string().optional(),
  role: z.enum(['gateway', 'admin']),
  appliedVersion: z.number().int(),
  reportedAt: time,
});

export const signingKeySchema = z.strictObject({
  id, alg: z.enum(['EdDSA', 'ES256']), createdAt: time, activeFrom: time, retiredAt: time.nullable(),
});

/** The one shape of every list: a page of items and the cursor of the next page (null: the last). */
export const page = <T extends z.ZodType>(item: T) => z.strictObject({ items: z.array(item), nextCursor: z.string().nullable() });

/** The named schemas of the document (`#/components/schemas/<name>`), so generated clients get named types. */
export const apiRegistry = z.registry<{ id: string }>();
for (const [id, schema] of Object.entries({
  Error: errorSchema, Key: keySchema, KeyWithSecret: keyWithSecretSchema, Workspace: workspaceSchema, Group: groupSchema,
  Owner: ownerSchema, AdminToken: adminTokenSchema, AdminTokenWithSecret: adminTokenWithSecretSchema,
  AuditEntry: auditEntrySchema, Activity: activitySchema, LeakResult: leakResultSchema, Usage: usageSchema, Permissions: permissionsSchema, Node: nodeSchema, SigningKey: signingKeySchema,
})) apiRegistry.add(schema, { id });
