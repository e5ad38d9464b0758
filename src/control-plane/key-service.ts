import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { deriveStatus, lastActivity, rotationDue, toApiKey, type ApiKey, type KeyRecord } from '../domain/api-key.js';
import type { Actor, AuditEntry } from '../domain/entities.js';
import { newAuditId, newKeyId } from '../domain/ids.js';
import type { PermissionCatalogue } from '../domain/permissions.js';
import { checkSecretFormat, generateSecret, hashSecret } from '../domain/secret.js';
import { KeygateError, ValidationError } from '../errors/catalogue.js';
import type { KeyStore } from '../store/types.js';
import type { CreateKeyInput, KeyListQuery, PatchKeyInput } from './schemas.js';

export interface KeyServiceDeps {
  store: KeyStore;
  config: Config;
  catalogue: PermissionCatalogue;
  now?: () => number;
  /** Where a leak report is announced (a warning naming the key, source and URL). */
  logger?: Pick<Logger, 'warn'>;
}

/** The secret (and, on enabling simple auth, the salt) appear in this result and nowhere else. */
export interface KeyWithSecret { key: ApiKey; secret: string }

const SALT_BYTES = 32;
const CONFLICT_RETRIES = 5;

function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^s:(\d{1,15})$/.exec(text);
  if (!m) throw new ValidationError(['cursor: not a cursor this server issued']);
  return Number(m[1]);
}

/** Validation and rules for keys on top of the store: what the admin API and CLI drive. */
export class KeyService {
  private readonly store: KeyStore;
  private readonly config: Config;
  private readonly catalogue: PermissionCatalogue;
  private readonly now: () => number;
  private readonly logger: Pick<Logger, 'warn'> | null;
  /** Writes to one key queue behind each other in this process; CONFLICT retries cover other nodes. */
  private readonly keyLocks = new Map<string, Promise<unknown>>();

  constructor(deps: KeyServiceDeps) {
    this.store = deps.store;
    this.config = deps.config;
    this.catalogue = deps.catalogue;
    this.now = deps.now ?? Date.now;
    this.logger = deps.logger ?? null;
  }

  async view(rec: KeyRecord): Promise<ApiKey> {
    const usage = await this.store.getUsage(rec.id);
    return toApiKey(rec, await this.ownerActive(rec.ownerId), usage.lastUsedAt, this.now(), this.config.keys.rotationReminderDays);
  }

  private async ownerActive(ownerId: string | null): Promise<boolean> {
    if (ownerId === null) return true;
    const owner = await this.store.getOwner(ownerId);
    return owner === null || owner.status === 'active';
  }

  private audit(actor: Actor, action: string, id: string, before: unknown, after: unknown, detail?: Record<string, unknown>): AuditEntry {
    const entry: AuditEntry = { id: newAuditId(), at: new Date(this.now()).toISOString(), actor, action, target: { type: 'key', id }, before, after };
    if (detail !== undefined) entry.detail = detail;
    return entry;
  }

  private resolvePermissions(permissions: string[] | undefined, preset: string | undefined, problems: string[]): string[] | undefined {
    if (preset !== undefined) {
      if (permissions !== undefined) {
        problems.push('preset: give either preset or permissions, not both');
        return undefined;
      }
      const bundle = this.config.permissionPresets[preset];
      if (!bundle) {
        problems.push(`preset: unknown preset "${preset}" (known: ${Object.keys(this.config.permissionPresets).join(', ') || 'none'})`);
        return undefined;
      }
      // The same catalogue check as permissions given one by one.
      bundle.forEach((p, i) => {
        const problem = this.catalogue.problemWith(p);
        if (problem) problems.push(`preset: "${preset}"[${i}]: ${problem}`);
      });
      return [...bundle];
    }
    if (permissions === undefined) return undefined;
    permissions.forEach((p, i) => {
      const problem = this.catalogue.problemWith(p);
      if (problem) problems.push(`permissions[${i}]: ${problem}`);
    });
    return [...new Set(permissions)];
  }

  /** Rules that span fields or records; collects every problem before failing. */
  private async checkReferences(rec: KeyRecord, changed: Partial<Record<keyof KeyRecord | 'workspaceId', boolean>>, problems: string[]): Promise<void> {
    if (changed.workspaceId && !(await this.store.getWorkspace(rec.workspaceId))) problems.push(`workspaceId: unknown workspace "${rec.workspaceId}"`);
    if (changed.groupId && rec.groupId !== null && !(await this.store.getGroup(rec.groupId))) problems.push(`groupId: unknown group "${rec.groupId}"`);
    if (changed.ownerId && rec.ownerId !== null && !(await this.store.getOwner(rec.ownerId))) problems.push(`ownerId: unknown owner "${rec.ownerId}"`);
    if (rec.type === 'profile' && rec.basicAuth) problems.push('basicAuth: only workspace keys may use Basic authentication');
    if (rec.type === 'workspace' && rec.simpleAuth.enabled) problems.push('simpleAuth: only profile keys may use simple authentication');
    if (changed.expiresAt && rec.expiresAt !== null && Date.parse(rec.expiresAt) <= this.now()) problems.push('expiresAt: must be in the future');
  }

  async create(input: CreateKeyInput, actor: Actor): Promise<KeyWithSecret & { salt: string | null }> {
    const problems: string[] = [];
    const permissions = this.resolvePermissions(input.permissions, input.preset, problems) ?? [];
    const now = this.now();
    const nowIso = new Date(now).toISOString();
    const ttl = this.config.keys.defaultTtlDays;
    const expiresAt = input.expiresAt !== undefined
      ? (input.expiresAt === null ? null : new Date(input.expiresAt).toISOString())
      : (ttl === null ? null : new Date(now + ttl * 86_400_000).toISOString());
    const { secret, prefix } = generateSecret(input.environment);
    const salt = input.simpleAuth.enabled ? randomBytes(SALT_BYTES).toString('base64url') : null;
    const rec: KeyRecord = {
      id: newKeyId(),
      workspaceId: input.workspaceId,
      name: input.name,
      description: input.description,
      groupId: input.groupId,
      ownerId: input.ownerId,
      type: input.type,
      environment: input.environment,
      prefix,
      enabled: input.enabled,
      permissions,
      permissionsLocked: input.permissionsLocked,
      ipAllowlist: [...input.ipAllowlist],
      eventAllowlist: [...input.eventAllowlist],
      eventDenylist: [...input.eventDenylist],
      profileAttributeAllowlist: [...input.profileAttributeAllowlist],
      basicAuth: input.basicAuth,
      simpleAuth: { enabled: input.simpleAuth.enabled, salt },
      rateLimit: input.rateLimit === undefined ? this.config.rateLimit.defaults[input.type] : input.rateLimit,
      quota: input.quota,
      createdAt: nowIso,
      updatedAt: nowIso,
      expiresAt,
      version: 1,
      secretHash: hashSecret(this.config.secrets.pepper, secret),
      retiredSecrets: [],
      seq: 0,
    };
    await this.checkReferences(rec, { workspaceId: true, groupId: true, ownerId: true, expiresAt: true }, problems);
    if (problems.length > 0) throw new ValidationError(problems);
    const key = await this.view(rec);
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'key', value: rec } }],
      audit: [this.audit(actor, 'key.create', rec.id, null, key)],
      expect: [{ type: 'key', id: rec.id, token: null }],
    });
    return { key, secret, salt };
  }

  async get(id: string): Promise<ApiKey> {
    return this.view(await this.require(id));
  }

  private async require(id: string): Promise<KeyRecord> {
    const rec = await this.store.getKey(id);
    if (!rec) throw new KeygateError('KEY_NOT_FOUND', `No key has the id "${id}".`);
    return rec;
  }

  private withKeyLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.keyLocks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.keyLocks.set(id, tail);
    void tail.then(() => {
      if (this.keyLocks.get(id) === tail) this.keyLocks.delete(id);
    });
    return run;
  }

  /** Read, change, commit if nobody else wrote in between; retried on a concurrent write. */
  private mutate<T>(id: string, fn: (rec: KeyRecord) => Promise<Mutation<T>>, actor: Actor): Promise<T> {
    return this.withKeyLock(id, () => this.mutateNow(id, fn, actor));
  }

  private async mutateNow<T>(id: string, fn: (rec: KeyRecord) => Promise<Mutation<T>>, actor: Actor): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.require(id);
      const { next, action, result, detail } = await fn(structuredClone(current));
      if (next === null) return result;
      try {
        await this.store.commit({
          ops: [{ op: 'put', entity: { type: 'key', value: next } }],
          audit: [this.audit(actor, action, id, await this.view(current), await this.view(next), detail)],
          expect: [{ type: 'key', id, token: String(current.version) }],
        });
        return result;
      } catch (err) {
        if (err instanceof KeygateError && err.code === 'CONFLICT' && attempt < CONFLICT_RETRIES) continue;
        throw err;
      }
    }
  }

  async update(id: string, patch: PatchKeyInput, actor: Actor): Promise<{ key: ApiKey; salt: string | null }> {
    if (Object.keys(patch).length === 0) throw new ValidationError(['(body): give at least one field to change']);
    return this.mutate(id, async (rec) => {
      const problems: string[] = [];
      const permissions = this.resolvePermissions(patch.permissions, patch.preset, problems);
      if (permissions !== undefined && rec.permissionsLocked && !sameSet(permissions, rec.permissions)) {
        throw new KeygateError('PERMISSIONS_LOCKED', "The key's permissions are locked; unlock them with {\"permissionsLocked\": false} first.");
      }
      let salt: string | null = null;
      const next: KeyRecord = { ...rec };
      if (patch.name !== undefined) next.name = patch.name;
      if (patch.description !== undefined) next.description = patch.description;
      if (patch.groupId !== undefined) next.groupId = patch.groupId;
      if (patch.ownerId !== undefined) next.ownerId = patch.ownerId;
      if (permissions !== undefined) next.permissions = permissions;
      if (patch.permissionsLocked !== undefined) next.permissionsLocked = patch.permissionsLocked;
      if (patch.ipAllowlist !== undefined) next.ipAllowlist = [...patch.ipAllowlist];
      if (patch.eventAllowlist !== undefined) next.eventAllowlist = [...patch.eventAllowlist];
      if (patch.eventDenylist !== undefined) next.eventDenylist = [...patch.eventDenylist];
      if (patch.profileAttributeAllowlist !== undefined) next.profileAttributeAllowlist = [...patch.profileAttributeAllowlist];
      if (patch.basicAuth !== undefined) next.basicAuth = patch.basicAuth;
      if (patch.rateLimit !== undefined) next.rateLimit = patch.rateLimit;
      if (patch.quota !== undefined) next.quota = patch.quota;
      if (patch.expiresAt !== undefined) next.expiresAt = patch.expiresAt === null ? null : new Date(patch.expiresAt).toISOString();
      if (patch.enabled !== undefined) next.enabled = patch.enabled;
      // An admin setting expiresAt or enabled on a key expired for inactivity revives it: its
      // idle time counts afresh from now.
      if ((patch.expiresAt !== undefined || patch.enabled !== undefined) && rec.inactiveSince != null) {
        next.inactiveSince = null;
        next.revivedAt = new Date(this.now()).toISOString();
      }
      if (patch.simpleAuth !== undefined) {
        // Enabling makes a fresh salt, shown once; enabling what is already on keeps the salt hidden.
        if (patch.simpleAuth.enabled && !rec.simpleAuth.enabled) {
          salt = randomBytes(SALT_BYTES).toString('base64url');
          next.simpleAuth = { enabled: true, salt };
        } else if (!patch.simpleAuth.enabled) {
          next.simpleAuth = { enabled: false, salt: null };
        }
      }
      await this.checkReferences(next, {
        groupId: patch.groupId !== undefined,
        ownerId: patch.ownerId !== undefined,
        expiresAt: patch.expiresAt !== undefined,
      }, problems);
      if (problems.length > 0) throw new ValidationError(problems);
      next.version = rec.version + 1;
      next.updatedAt = new Date(this.now()).toISOString();
      return { next, action: 'key.update', result: { key: await this.view(next), salt } };
    }, actor);
  }

  async rotate(id: string, gracePeriodSeconds: number | undefined, actor: Actor): Promise<KeyWithSecret> {
    const grace = gracePeriodSeconds ?? this.config.keys.rotationGraceSeconds;
    return this.mutate(id, async (rec) => {
      const now = this.now();
      const { secret, prefix } = generateSecret(rec.environment);
      const retired = rec.retiredSecrets.filter((r) => Date.parse(r.expiresAt) > now);
      if (grace > 0) retired.push({ hash: rec.secretHash, expiresAt: new Date(now + grace * 1000).toISOString() });
      const next: KeyRecord = {
        ...rec,
        prefix,
        secretHash: hashSecret(this.config.secrets.pepper, secret),
        retiredSecrets: retired,
        rotatedAt: new Date(now).toISOString(),
        version: rec.version + 1,
        updatedAt: new Date(now).toISOString(),
      };
      return { next, action: 'key.rotate', result: { key: await this.view(next), secret } };
    }, actor);
  }

  /**
   * Expires a key that went unused since `idleSince` (its last recorded use, creation or
   * revival); false when it was used, revived or changed meanwhile (nothing is written then).
   */
  async expireInactive(id: string, idleSince: number, cutoff: number, actor: Actor): Promise<boolean> {
    try {
      return await this.mutate(id, async (rec) => {
        const usage = await this.store.getUsage(id);
        if (rec.inactiveSince != null || lastActivity(rec, usage.lastUsedAt) > cutoff) return { next: null, action: '', result: false };
        const next: KeyRecord = { ...rec, inactiveSince: new Date(this.now()).toISOString(), version: rec.version + 1, updatedAt: new Date(this.now()).toISOString() };
        return { next, action: 'key.expire', result: true, detail: { reason: 'inactivity', idleSince: new Date(idleSince).toISOString() } };
      }, actor);
    } catch (err) {
      if (err instanceof KeygateError && err.code === 'KEY_NOT_FOUND') return false;
      throw err;
    }
  }

  /**
   * A leaked secret reported: the key it belongs to (current secret, or a retired one still in
   * its grace) is found by its peppered hash, never by comparing secrets; `disable` turns it
   * off, `notify` only records the report. Either way the audit names the source and URL.
   * An unknown or malformed secret is KEY_NOT_FOUND, with nothing more said.
   */
  async reportLeak(secret: string, report: { source?: string | undefined; url?: string | undefined }, action: 'disable' | 'notify', actor: Actor): Promise<{ keyId: string; action: 'disable' | 'notify'; alreadyDisabled: boolean }> {
    const found = checkSecretFormat(secret) === null ? null : await this.store.lookupKey('hash', hashSecret(this.config.secrets.pepper, secret));
    if (!found) throw new KeygateError('KEY_NOT_FOUND', 'No key has this secret.');
    const id = found.record.id;
    const detail = { source: report.source ?? null, url: report.url ?? null, action };
    this.logger?.warn({ keyId: id, ...detail, reportedBy: actor.name }, action === 'disable' ? 'leaked key reported: disabling it' : 'leaked key reported (leaks.action: notify; the key stays as it is)');
    return this.mutate(id, async (rec) => {
      const result = { keyId: id, action, alreadyDisabled: !rec.enabled };
      const next: KeyRecord = { ...rec, version: rec.version + 1, updatedAt: new Date(this.now()).toISOString() };
      if (action === 'disable') next.enabled = false;
      return { next, action: 'key.leak', result, detail };
    }, actor);
  }

  delete(id: string, actor: Actor): Promise<void> {
    return this.withKeyLock(id, async () => {
      const rec = await this.require(id);
      await this.store.commit({
        ops: [{ op: 'delete', type: 'key', id }],
        audit: [this.audit(actor, 'key.delete', id, await this.view(rec), null)],
        expect: [{ type: 'key', id, token: String(rec.version) }],
      });
    });
  }

  async list(query: KeyListQuery): Promise<{ items: ApiKey[]; nextCursor: string | null }> {
    let after = query.cursor !== undefined ? decodeCursor(query.cursor) : 0;
    const needle = query.q?.toLowerCase();
    const now = this.now();
    const owners = new Map((await this.store.listOwners()).map((o) => [o.id, o.status === 'active']));
    const items: ApiKey[] = [];
    const batch = Math.max(100, query.limit * 2);
    let lastSeq = after;
    scan: for (;;) {
      const page = await this.store.scanKeys(after, batch);
      for (const rec of page) {
        after = rec.seq;
        if (query.workspaceId !== undefined && rec.workspaceId !== query.workspaceId) continue;
        if (query.groupId !== undefined && rec.groupId !== query.groupId) continue;
        if (query.type !== undefined && rec.type !== query.type) continue;
        if (query.environment !== undefined && rec.environment !== query.environment) continue;
        const ownerActive = rec.ownerId === null || (owners.get(rec.ownerId) ?? true);
        if (query.status !== undefined && deriveStatus(rec, ownerActive, now) !== query.status) continue;
        if (query.rotationDue !== undefined && rotationDue(rec, this.config.keys.rotationReminderDays, now) !== query.rotationDue) continue;
        if (needle !== undefined && needle !== '' &&
            !rec.name.toLowerCase().includes(needle) &&
            !rec.description.toLowerCase().includes(needle) &&
            !rec.prefix.toLowerCase().includes(needle)) continue;
        if (items.length === query.limit) break scan;
        items.push(toApiKey(rec, ownerActive, (await this.store.getUsage(rec.id)).lastUsedAt, now, this.config.keys.rotationReminderDays));
        lastSeq = rec.seq;
      }
      if (page.length < batch) return { items, nextCursor: null };
    }
    return { items, nextCursor: encodeCursor(lastSeq) };
  }
}

/** A change to one key: `next: null` writes nothing and returns `result`. */
interface Mutation<T> { next: KeyRecord | null; action: string; result: T; detail?: Record<string, unknown> }

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size !== sb.size) return false;
  for (const x of sa) if (!sb.has(x)) return false;
  return true;
}
