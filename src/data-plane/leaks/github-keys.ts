import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';

export interface GithubKeyringOptions {
  /** Keys from the config: `{id, key: PEM}`. */
  publicKeys: ReadonlyArray<{ id: string; key: string }>;
  /** GitHub's key list (`{public_keys: [{key_identifier, key, is_current}]}`), fetched and cached. */
  keysUrl?: string | undefined;
  cacheSeconds: number;
  logger: Logger;
  fetch?: typeof fetch;
  now?: () => number;
}

/** An unknown key id fetches the list again at most this often (a forged id must not make us hammer GitHub). */
const REFETCH_UNKNOWN_MS = 60_000;
const FETCH_TIMEOUT_MS = 5_000;

/**
 * The public keys GitHub signs secret-scanning payloads with: those in the config, and those
 * published at `keysUrl`, fetched on first use and again after `cacheSeconds` (or when a
 * payload names a key not seen yet). A failed fetch keeps the keys fetched before.
 */
export class GithubKeyring {
  private readonly configured = new Map<string, KeyObject>();
  private fetched = new Map<string, KeyObject>();
  private fetchedAt = 0;
  private fetching: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly opts: GithubKeyringOptions) {
    for (const k of opts.publicKeys) this.configured.set(k.id, createPublicKey(k.key));
    this.now = opts.now ?? Date.now;
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** Whether any key can ever be known: without one the endpoint is off. */
  get configuredAtAll(): boolean {
    return this.configured.size > 0 || this.opts.keysUrl !== undefined;
  }

  async key(id: string): Promise<KeyObject | null> {
    const own = this.configured.get(id);
    if (own) return own;
    if (this.opts.keysUrl === undefined) return null;
    const age = this.now() - this.fetchedAt;
    const stale = this.fetchedAt === 0 || age >= this.opts.cacheSeconds * 1000;
    if (stale || (!this.fetched.has(id) && age >= REFETCH_UNKNOWN_MS)) await this.refresh();
    return this.fetched.get(id) ?? null;
  }

  private refresh(): Promise<void> {
    this.fetching ??= this.load(this.opts.keysUrl!).finally(() => { this.fetching = null; });
    return this.fetching;
  }

  private async load(url: string): Promise<void> {
    this.fetchedAt = this.now();
    try {
      const res = await this.fetchFn(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as { public_keys?: Array<{ key_identifier?: unknown; key?: unknown }> };
      const next = new Map<string, KeyObject>();
      for (const k of body.public_keys ?? []) {
        if (typeof k.key_identifier !== 'string' || typeof k.key !== 'string') continue;
        try {
          next.set(k.key_identifier, createPublicKey(k.key));
        } catch {
          // one unreadable key does not hide the others
        }
      }
      this.fetched = next;
    } catch (err) {
      this.opts.logger.warn({ url, err: { message: (err as Error).message } }, 'could not fetch the secret scanning public keys; keeping those fetched before');
    }
  }
}

/** GitHub's signature: base64 of an ASN.1 DER ECDSA signature (P-256, SHA-256) over the raw body. */
export function signatureValid(key: KeyObject, body: Buffer, signatureBase64: string): boolean {
  const signature = Buffer.from(signatureBase64, 'base64');
  if (signature.length === 0) return false;
  try {
    return verify('sha256', body, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
