import { randomBytes, randomUUID } from 'node:crypto';

export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Uniform random base62 string: bytes ≥ 248 are rejected so every character is equally likely. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomBytes(length * 2);
    for (let i = 0; i < bytes.length && out.length < length; i++) {
      const b = bytes[i]!;
      if (b < 248) out += BASE62[b % 62];
    }
  }
  return out;
}

/** Fixed-width base62 of a non-negative integer below 62^width. */
export function toBase62(value: number, width: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

export const newKeyId = (): string => `key_${randomBase62(22)}`;
export const newGroupId = (): string => `grp_${randomBase62(22)}`;
export const newOwnerId = (): string => `own_${randomBase62(22)}`;
export const newAuditId = (): string => `aud_${randomBase62(22)}`;
export const newWorkspaceId = (): string => randomUUID();
export const newRequestId = (): string => randomBytes(12).toString('base64url');

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isGuid = (s: string): boolean => GUID.test(s);
export const newAdminTokenId = (): string => `adm_${randomBase62(22)}`;

/** An admin token's secret names its id, so it is checked against one stored hash: `kgadm_<id>_<secret>`. */
const ADMIN_SECRET = /^kgadm_([0-9A-Za-z]{22})_[0-9A-Za-z]{32}$/;

export function newAdminTokenSecret(id: string): string {
  return `kgadm_${id.slice(4)}_${randomBase62(32)}`;
}

/** The token id an admin secret names, or null when it is not one. */
export function adminTokenIdOf(secret: string): string | null {
  const m = ADMIN_SECRET.exec(secret);
  return m ? `adm_${m[1]!}` : null;
}
