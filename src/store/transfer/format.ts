// The export stream: NDJSON, one JSON object a line. A header, then one record per entity
// (parents before the records that name them), then a trailer that counts the records and
// carries a SHA-256 of every byte before it, so a cut or altered stream is refused whole.
//
//   {"format":"keygate-export","version":1,"exportedAt":"…","keygate":"0.1.0","source":{…},"pepperFingerprint":"…"}
//   {"type":"workspace","value":{…}}   … group, owner, signing-key, admin-token, key, usage, activity, audit
//   {"end":true,"records":123,"counts":{…},"sha256":"…"}
import { createHmac } from 'node:crypto';
import { z } from 'zod';

export const EXPORT_FORMAT = 'keygate-export';
export const EXPORT_VERSION = 1;

/** The record types of a stream, in the order they are written. */
export const RECORD_TYPES = ['workspace', 'group', 'owner', 'signing-key', 'admin-token', 'key', 'usage', 'activity', 'audit'] as const;
export type RecordType = (typeof RECORD_TYPES)[number];
export type Counts = Record<RecordType, number>;

export const emptyCounts = (): Counts => ({ workspace: 0, group: 0, owner: 0, 'signing-key': 0, 'admin-token': 0, key: 0, usage: 0, activity: 0, audit: 0 });

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  exportedAt: string;
  keygate: string;
  source: { driver: 'embedded' | 'redis'; storeVersion: number };
  pepperFingerprint: string;
}

export interface ExportTrailer { end: true; records: number; counts: Counts; sha256: string }

/**
 * A one-way tag of the pepper: the stored key hashes are HMACs under it, so a store loaded
 * with another pepper would authenticate no key. Import compares tags before writing anything.
 */
export function pepperFingerprint(pepper: string): string {
  return createHmac('sha256', pepper).update('keygate-export/pepper-fingerprint/v1').digest('base64url').slice(0, 22);
}

// Records are checked for the fields keygate reads, and keep any others as they are (loose
// objects), so a record of a newer build survives the trip unchanged.
const text = z.string();
const time = z.iso.datetime({ offset: true });
const id = z.string().min(1).max(200);
const strings = z.array(z.string());

const workspace = z.looseObject({ id, name: text, createdAt: time });
const group = z.looseObject({ id, name: text, description: text, createdAt: time, updatedAt: time });
const owner = z.looseObject({
  id, name: text, status: z.enum(['active', 'disabled']), permissions: strings, createdAt: time, updatedAt: time, version: z.number().int(),
});
const signingKey = z.looseObject({
  id, alg: z.enum(['EdDSA', 'ES256']), publicJwk: z.record(z.string(), z.unknown()), sealedPrivateJwk: z.string(),
  createdAt: time, activeFrom: time.optional(), retiredAt: time.nullable(), version: z.number().int(),
}).refine((k) => !('privateJwk' in k), { message: 'a signing key in an export holds its private half only sealed' });
// An admin token made at /v1/admin-tokens: its secret only as the peppered hash, like a key's.
const adminToken = z.looseObject({
  id, name: text, scopes: strings, workspaces: strings.nullable(), createdAt: time, updatedAt: time,
  createdBy: z.looseObject({ type: z.string(), name: z.string() }), secretHash: z.string().min(1),
});
const key = z.looseObject({
  id, workspaceId: id, name: text, description: text, groupId: id.nullable(), ownerId: id.nullable(),
  type: z.enum(['workspace', 'profile']), environment: z.enum(['live', 'test']), prefix: text, enabled: z.boolean(),
  permissions: strings, permissionsLocked: z.boolean(), ipAllowlist: strings, eventAllowlist: strings, eventDenylist: strings,
  profileAttributeAllowlist: strings, basicAuth: z.boolean(),
  simpleAuth: z.looseObject({ enabled: z.boolean(), salt: z.string().nullable() }),
  rateLimit: z.looseObject({ limit: z.number(), windowSeconds: z.number() }).nullable(),
  quota: z.looseObject({ limit: z.number(), period: z.enum(['day', 'month']) }).nullable(),
  createdAt: time, updatedAt: time, expiresAt: time.nullable(), version: z.number().int(),
  secretHash: z.string().min(1), retiredSecrets: z.array(z.looseObject({ hash: z.string().min(1), expiresAt: time })),
});
const usage = z.strictObject({
  keyId: id, total: z.number().int().min(0), byOutcome: z.record(z.string(), z.number().int().min(0)), lastUsedAt: time.nullable(),
}).refine((u) => Object.values(u.byOutcome).reduce((a, b) => a + b, 0) === u.total, { message: 'total is not the sum of byOutcome' });
/** One request of a key (`keys.activityPerKey` of them kept per key). */
const activity = z.strictObject({
  keyId: id, at: time, requestId: z.string(), method: z.string(), route: z.string(), status: z.number().int(), outcome: z.string(),
  clientIp: z.string().nullable(),
});
const audit = z.looseObject({
  id, at: time, actor: z.looseObject({ type: z.string(), name: z.string() }), action: z.string(),
  target: z.looseObject({ type: z.string(), id: z.string() }), before: z.unknown(), after: z.unknown(),
});

export const RECORD_SCHEMAS = {
  workspace, group, owner, 'signing-key': signingKey, 'admin-token': adminToken, key, usage, activity, audit,
} as const satisfies Record<RecordType, z.ZodType>;

export const headerSchema = z.looseObject({
  format: z.literal(EXPORT_FORMAT),
  version: z.number().int(),
  exportedAt: time,
  keygate: z.string(),
  source: z.looseObject({ driver: z.string(), storeVersion: z.number() }),
  pepperFingerprint: z.string(),
});

export const trailerSchema = z.strictObject({
  end: z.literal(true),
  records: z.number().int().min(0),
  counts: z.record(z.string(), z.number().int().min(0)),
  sha256: z.string(),
});
