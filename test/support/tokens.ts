import { createHmac, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { SigningKeyCipher } from '../../src/domain/signing-key-cipher.js';
import type { SigningKeyRecord } from '../../src/domain/signing-key.js';
import { gw, type GatewayResponse } from './gateway.js';
import type { Keygate } from './keygate.js';

/** A compact JWS split into its parts, the header and payload decoded. */
export interface DecodedJwt {
  header: Record<string, any>;
  payload: Record<string, any>;
  /** The three base64url segments as received. */
  parts: [string, string, string];
}

/** base64url(JSON.stringify(value)), as a JWS segment. */
export const segment = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split('.');
  expect(parts, token).toHaveLength(3);
  const [h, p, s] = parts as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, any>,
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, any>,
    parts: [h, p, s],
  };
}

/** The token with its payload replaced by `edit(payload)`, keeping the original header and signature. */
export function editPayload(token: string, edit: (payload: Record<string, any>) => Record<string, any>): string {
  const { payload, parts } = decodeJwt(token);
  return `${parts[0]}.${segment(edit({ ...payload }))}.${parts[2]}`;
}

/** The token with its header replaced by `edit(header)`, keeping the original payload and signature. */
export function editHeader(token: string, edit: (header: Record<string, any>) => Record<string, any>): string {
  const { header, parts } = decodeJwt(token);
  return `${segment(edit({ ...header }))}.${parts[1]}.${parts[2]}`;
}

/** A JWS over `header.payload`, signed with an Ed25519 private key of our own. */
export function signEd25519(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${segment(header)}.${segment(payload)}`;
  return `${input}.${sign(null, Buffer.from(input, 'ascii'), key).toString('base64url')}`;
}

/** A JWS over `header.payload`, HMAC-SHA256 with `secret`. */
export function signHs256(header: Record<string, unknown>, payload: Record<string, unknown>, secret: Buffer | string): string {
  const input = `${segment(header)}.${segment(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input, 'ascii').digest('base64url')}`;
}

/** `hex(HMAC-SHA256(key = the salt's UTF-8 bytes, message = the identity value))` (CONTRACT §3). */
export function simpleAuthSignature(salt: string, value: string): string {
  return createHmac('sha256', Buffer.from(salt, 'utf8')).update(value, 'utf8').digest('hex');
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** POST /auth/token with a JSON body (when given) and extra headers; no assertion. */
export function postToken(kg: Keygate, body?: unknown, headers: Record<string, string> = {}): Promise<GatewayResponse> {
  return gw(kg, '/auth/token', {
    method: 'POST',
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}

/** Mints a token for `secret` (plus e.g. `identity` and `signature`), asserting a 200. */
export async function mintToken(kg: Keygate, secret: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await postToken(kg, { apiKey: secret, ...extra });
  expect(res.status, res.text).toBe(200);
  expect(typeof res.body?.token, res.text).toBe('string');
  return res.body.token as string;
}

/** GET /.well-known/jwks.json, asserting a 200 with a `keys` array. */
export async function fetchJwks(kg: Keygate): Promise<{ res: GatewayResponse; keys: Array<Record<string, any>> }> {
  const res = await gw(kg, '/.well-known/jwks.json');
  expect(res.status, res.text).toBe(200);
  expect(Array.isArray(res.body?.keys), res.text).toBe(true);
  return { res, keys: res.body.keys as Array<Record<string, any>> };
}

/** Members of a JWK that carry private key material (RFC 7517/7518), for any key type. */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The raw text of an embedded store's journal and snapshot (whichever exist). */
export function rawStoreFiles(dataDir: string): string {
  return ['journal.log', 'snapshot.json'].map((f) => join(dataDir, f)).filter((p) => existsSync(p)).map((p) => readFileSync(p, 'utf8')).join('\n');
}

/**
 * The gateway's own signing keys as an embedded store keeps them (journal and snapshot, the
 * latest record of each kid), their private halves opened as the gateway does: with the key
 * derived from the pepper, or `signingKeyEncryptionKey`. For forging tokens with the real key.
 */
export function storedSigningKeys(dataDir: string, secrets: { pepper: string; signingKeyEncryptionKey?: string }): Map<string, KeyObject> {
  const records = new Map<string, SigningKeyRecord>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) { for (const v of value) visit(v); return; }
    if (value === null || typeof value !== 'object') return;
    const o = value as Record<string, unknown>;
    if (typeof o.id === 'string' && o.id.startsWith('sk_') && typeof o.publicJwk === 'object') records.set(o.id, o as unknown as SigningKeyRecord);
    else for (const v of Object.values(o)) visit(v);
  };
  for (const line of rawStoreFiles(dataDir).split('\n')) {
    if (line.length > 9 && line[8] === ' ') {
      try { visit(JSON.parse(line.slice(9))); } catch { /* a torn tail */ }
    }
  }
  const cipher = SigningKeyCipher.fromSecrets(secrets);
  return new Map([...records.values()].map((r) => [r.id, createPrivateKey({ key: cipher.open(r) as any, format: 'jwk' })]));
}

/** A token like `token` (same header and claims but those `edit` changes), signed again with `key`. */
export function resign(token: string, key: KeyObject, edit: (payload: Record<string, any>) => Record<string, any>): string {
  const { header, payload } = decodeJwt(token);
  return signEd25519(header, edit({ ...payload }), key);
}
