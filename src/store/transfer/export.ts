import { createHash } from 'node:crypto';
import type { KeyRecord } from '../../domain/api-key.js';
import type { SigningKeyCipher } from '../../domain/signing-key-cipher.js';
import type { SigningKeyRecord } from '../../domain/signing-key.js';
import type { KeyStore } from '../types.js';
import {
  EXPORT_FORMAT, EXPORT_VERSION, emptyCounts, pepperFingerprint, type Counts, type ExportHeader, type ExportTrailer, type RecordType,
} from './format.js';

const KEY_PAGE = 500;
const AUDIT_PAGE = 1_000;
/** More activity than any store keeps of one key (`keys.activityPerKey`): all of it. */
const ALL_ACTIVITY = 1_000_000;

export interface ExportOptions {
  /** The deployment's pepper: only its fingerprint is written. */
  pepper: string;
  /** Seals a signing key an older build stored in clear, so no private half leaves in clear. */
  cipher: SigningKeyCipher;
  /** The keygate version that writes the stream. */
  keygateVersion: string;
  now?: () => Date;
}

/** The store changed while it was read (a Redis store in use): the stream would not be one moment's state. */
export class StoreChangedError extends Error {}

/**
 * The whole store as the lines of an export stream (without their newlines): workspaces,
 * groups, owners, signing keys (private halves sealed), keys with their hashes (never a
 * secret: keygate never holds one), usage counts, each key's activity records, the audit log,
 * then the trailer. The
 * trailer is written only if the store version did not move meanwhile; otherwise this
 * throws StoreChangedError and the stream stays without its trailer, which import refuses.
 */
export async function* exportLines(store: KeyStore, opts: ExportOptions): AsyncGenerator<string, Counts> {
  const digest = createHash('sha256');
  const counts = emptyCounts();
  let records = 0;
  const line = (value: unknown): string => {
    const text = JSON.stringify(value);
    digest.update(`${text}\n`);
    return text;
  };
  const record = (type: RecordType, value: unknown): string => {
    counts[type]++;
    records++;
    return line({ type, value });
  };

  const startVersion = await store.currentVersion();
  const header: ExportHeader = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: (opts.now?.() ?? new Date()).toISOString(),
    keygate: opts.keygateVersion,
    source: { driver: store.driver, storeVersion: startVersion },
    pepperFingerprint: pepperFingerprint(opts.pepper),
  };
  yield line(header);
  for (const w of await store.listWorkspaces()) yield record('workspace', w);
  for (const g of await store.listGroups()) yield record('group', g);
  for (const o of await store.listOwners()) yield record('owner', o);
  for (const k of await store.listSigningKeys()) yield record('signing-key', sealed(k, opts.cipher));
  for (const t of await store.listAdminTokens()) yield record('admin-token', t);

  const keyIds: string[] = [];
  const used: Array<{ keyId: string; total: number; byOutcome: Record<string, number>; lastUsedAt: string | null }> = [];
  for (let after = 0; ;) {
    const page = await store.scanKeys(after, KEY_PAGE);
    if (page.length === 0) break;
    after = page[page.length - 1]!.seq;
    for (const k of page) {
      keyIds.push(k.id);
      yield record('key', withoutSeq(k));
    }
    const usage = await Promise.all(page.map((k) => store.getUsage(k.id)));
    usage.forEach((u, i) => {
      if (u.total > 0 || u.lastUsedAt !== null) used.push({ keyId: page[i]!.id, ...u });
    });
  }
  for (const u of used) yield record('usage', u);
  // Oldest first within a key: the order the stores keep them in (and an import appends).
  for (const id of keyIds) {
    const held = await store.listActivity(id, ALL_ACTIVITY);
    for (let i = held.length - 1; i >= 0; i--) yield record('activity', held[i]);
  }

  for (let position = 0; ;) {
    const page = await store.scanAudit(position, AUDIT_PAGE);
    for (const entry of page) yield record('audit', entry);
    position += page.length;
    if (page.length < AUDIT_PAGE) break;
  }

  const endVersion = await store.currentVersion();
  if (endVersion !== startVersion) {
    throw new StoreChangedError(`the store changed while it was exported (store version ${startVersion} → ${endVersion}); run the export again, at a quieter moment`);
  }
  const trailer: ExportTrailer = { end: true, records, counts, sha256: digest.copy().digest('hex') };
  yield JSON.stringify(trailer);
  return counts;
}

function withoutSeq(k: KeyRecord): Omit<KeyRecord, 'seq'> {
  const { seq: _seq, ...rest } = k;
  return rest;
}

function sealed(k: SigningKeyRecord, cipher: SigningKeyCipher): SigningKeyRecord {
  const { privateJwk, ...rest } = k;
  return privateJwk === undefined ? k : { ...rest, sealedPrivateJwk: cipher.seal(k, privateJwk) };
}
