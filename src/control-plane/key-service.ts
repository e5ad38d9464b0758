import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { deriveStatus, lastActivity, rotationDue, toApiKey, type ApiKey, type KeyRecord } from '../domain/api-key.js';
import { FULL_GRANT, workspaceVisible, type AdminGrant } from '../domain/admin-scopes.js';
import type { Actor, AuditEntry, Owner } from '../domain/entities.js';
import { newAuditId, newKeyId } from '../domain/ids.js';
import { effectivePermissions, type PermissionCatalogue } from '../domain/permissions.js';
import { checkSecretFormat, generateSecret, hashSecret } from '../domain/secret.js';
import { KeygateError, ValidationError } from '../errors/catalogue.js';
import { preconditionToken, type KeyStore, type Precondition } from '../store/types.js';
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
    const owner = rec.ownerId === null ? null : await this.store.getOwner(rec.ownerId);
    return this.viewWith(rec, owner, usage.lastUsedAt);
  }

  private viewWith(rec: KeyRecord, owner: Owner | null, lastUsedAt: string | null): ApiKey {
    const ownerActive = owner === null || owner.status === 'active';
    return toApiKey(rec, ownerActive, lastUsedAt, this.now(), this.effective(rec.permissions, owner), this.config.keys.rotationReminderDays);
  }

  /** The catalogue's permissions a key with these permissions and this owner may call. */
  private effective(permissions: readonly string[], owner: Owner | null): string[] {
    const allows = effectivePermissions(permissions, owner ? owner.permissions : null);
    const out: string[] = [];
    for (const names of this.catalogue.modules.values()) for (const name of names) if (allows(name)) out.push(name);
    return out;
  }

  private audit(actor: Actor, action: string, rec: KeyRecord, before: unknown, after: unknown, detail?: Record<string, unknown>): AuditEntry {
    const entry: AuditEntry = { id: newAuditId(), at: new Date(this.now()).toISOString(), actor, action, target: { type: 'key', id: rec.id }, workspaceId: rec.workspaceId, before, after };
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
  async checkReferences(rec: Pick<KeyRecord, 'workspaceId' | 'groupId' | 'ownerId' | 'type' | 'basicAuth' | 'simpleAuth' | 'expiresAt'>, changed: Partial<Record<keyof KeyRecord | 'workspaceId', boolean>>, problems: string[], grant: AdminGrant = FULL_GRANT): Promise<void> {
    if (changed.workspaceId && (!workspaceVisible(grant, rec.workspaceId) || !(await this.store.getWorkspace(rec.workspaceId)))) problems.push(`workspaceId: unknown workspace "${rec.workspaceId}"`);
    // A group or owner of a workspace serves that workspace's keys only; one of none serves all
    // (but is as unknown as any other record outside a confined token's workspaces).
    if (changed.groupId && rec.groupId !== null) {
      const group = await this.store.getGroup(rec.groupId);
      if (!group || !workspaceVisible(grant, group.workspaceId)) problems.push(`groupId: unknown group "${rec.groupId}"`);
      else if ((group.workspaceId ?? rec.workspaceId) !== rec.workspaceId) problems.push(`groupId: the group "${rec.groupId}" belongs to another workspace`);
    }
    if (changed.ownerId && rec.ownerId !== null) {
      const owner = await this.store.getOwner(rec.ownerId);
      if (!owner || !workspaceVisible(grant, owner.workspaceId)) problems.push(`ownerId: unknown owner "${rec.ownerId}"`);
      else if ((owner.workspaceId ?? rec.workspaceId) !== rec.workspaceId) problems.push(`ownerId: the owner "${rec.ownerId}" belongs to another workspace`);
    }
    if (rec.type === 'profile' && rec.basicAuth) problems.push('basicAuth: only workspace keys may use Basic authentication');
    if (rec.type === 'workspace' && rec.simpleAuth.enabled) problems.push('simpleAuth: only profile keys may use simple authentication');
    if (changed.expiresAt && rec.expiresAt !== null && Date.parse(rec.expiresAt) <= this.now()) problems.push('expiresAt: must be in the future');
  }

  /** Problems with the permissions or preset of a body: the catalogue's view, one per entry. */
  permissionProblems(permissions: unknown, preset: unknown): string[] {
    const problems: string[] = [];
    this.resolvePermissions(
      Array.isArray(permissions) ? permissions.filter((p): p is string => typeof p === 'string') : undefined,
      typeof preset === 'string' ? preset : undefined,
      problems,
    );
    return problems;
  }

  async create(input: CreateKeyInput, actor: Actor, grant: AdminGrant = FULL_GRANT): Promise<KeyWithSecret & { salt: string | null }> {
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
    await this.checkReferences(rec, { workspaceId: true, groupId: true, ownerId: true, expiresAt: true }, problems, grant);
    if (problems.length > 0) throw new ValidationError(problems);
    const key = await this.view(rec);
    const ws = await this.store.getWorkspace(rec.workspaceId);
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'key', value: rec } }],
      audit: [this.audit(actor, 'key.create', rec, null, key)],
      expect: [
        { type: 'key', id: rec.id, token: null },
        ...(ws ? [{ type: 'workspace' as const, id: ws.id, token: preconditionToken({ type: 'workspace', value: ws }) }] : []),
        ...(await this.referencesStillThere(rec, null)),
      ],
    });
    return { key, secret, salt };
  }

  /**
   * Preconditions that the group and owner a write newly points the key at are, where the
   * write applies, as they were read: a delete racing the write must not leave the key naming
   * a missing owner (whose limits would then no longer bound it) or group. A delete racing the
   * workspace is guarded the same way on create.
   */
  private async referencesStillThere(next: KeyRecord, prev: KeyRecord | null): Promise<Precondition[]> {
    const out: Precondition[] = [];
    if (next.ownerId !== null && next.ownerId !== prev?.ownerId) {
      const owner = await this.store.getOwner(next.ownerId);
      if (owner) out.push({ type: 'owner', id: owner.id, token: String(owner.version) });
    }
    if (next.groupId !== null && next.groupId !== prev?.groupId) {
      const group = await this.store.getGroup(next.groupId);
      if (group) out.push({ type: 'group', id: group.id, token: group.updatedAt });
    }
    return out;
  }

  async get(id: string, grant: AdminGrant = FULL_GRANT): Promise<ApiKey> {
    return this.view(await this.require(id, grant));
  }

  /** A key the grant reaches; one of a workspace it does not reach is as unknown as a missing one. */
  async require(id: string, grant: AdminGrant = FULL_GRANT): Promise<KeyRecord> {
    const rec = await this.store.getKey(id);
    if (!rec || !workspaceVisible(grant, rec.workspaceId)) throw new KeygateError('KEY_NOT_FOUND', `No key has the id "${id}".`);
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
  private mutate<T>(id: string, fn: (rec: KeyRecord) => Promise<Mutation<T>>, actor: Actor, access: Access): Promise<T> {
    return this.withKeyLock(id, () => this.mutateNow(id, fn, actor, access));
  }

  private async mutateNow<T>(id: string, fn: (rec: KeyRecord) => Promise<Mutation<T>>, actor: Actor, access: Access): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.require(id, access.grant);
      // Checked on every attempt: after a concurrent write the state named by If-Match is gone.
      access.ifMatch(String(current.version));
      const { next, action, result, detail } = await fn(structuredClone(current));
      if (next === null) return result;
      try {
        await this.store.commit({
          ops: [{ op: 'put', entity: { type: 'key', value: next } }],
          audit: [this.audit(actor, action, current, await this.view(current), await this.view(next), detail)],
          expect: [{ type: 'key', id, token: String(current.version) }, ...(await this.referencesStillThere(next, current))],
        });
        return result;
      } catch (err) {
        if (err instanceof KeygateError && err.code === 'CONFLICT' && attempt < CONFLICT_RETRIES) continue;
        throw err;
      }
    }
  }

  async update(id: string, patch: PatchKeyInput, actor: Actor, access: Access = ANY): Promise<{ key: ApiKey; salt: string | null }> {
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
      }, problems, access.grant);
      if (problems.length > 0) throw new ValidationError(problems);
      next.version = rec.version + 1;
      next.updatedAt = new Date(this.now()).toISOString();
      return { next, action: 'key.update', result: { key: await this.view(next), salt } };
    }, actor, access);
  }

  async rotate(id: string, gracePeriodSeconds: number | undefined, actor: Actor, access: Access = ANY): Promise<KeyWithSecret> {
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
    }, actor, access);
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
      }, actor, ANY);
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
  async reportLeak(secret: string, report: { source?: string | undefined; url?: string | undefined }, action: 'disable' | 'notify', actor: Actor, access: Access = ANY): Promise<{ keyId: string; action: 'disable' | 'notify'; alreadyDisabled: boolean }> {
    const found = checkSecretFormat(secret) === null ? null : await this.store.lookupKey('hash', hashSecret(this.config.secrets.pepper, secret));
    if (!found || !workspaceVisible(access.grant, found.record.workspaceId)) throw new KeygateError('KEY_NOT_FOUND', 'No key has this secret.');
    const id = found.record.id;
    const detail = { source: report.source ?? null, url: report.url ?? null, action };
    this.logger?.warn({ keyId: id, ...detail, reportedBy: actor.name }, action === 'disable' ? 'leaked key reported: disabling it' : 'leaked key reported (leaks.action: notify; the key stays as it is)');
    return this.mutate(id, async (rec) => {
      const result = { keyId: id, action, alreadyDisabled: !rec.enabled };
      const next: KeyRecord = { ...rec, version: rec.version + 1, updatedAt: new Date(this.now()).toISOString() };
      if (action === 'disable') next.enabled = false;
      return { next, action: 'key.leak', result, detail };
    }, actor, access);
  }

  delete(id: string, actor: Actor, access: Access = ANY): Promise<void> {
    return this.withKeyLock(id, async () => {
      const rec = await this.require(id, access.grant);
      access.ifMatch(String(rec.version));
      await this.store.commit({
        ops: [{ op: 'delete', type: 'key', id }],
        audit: [this.audit(actor, 'key.delete', rec, await this.view(rec), null)],
        expect: [{ type: 'key', id, token: String(rec.version) }],
      });
    });
  }

  async list(query: KeyListQuery, grant: AdminGrant = FULL_GRANT): Promise<{ items: ApiKey[]; nextCursor: string | null }> {
    let after = query.cursor !== undefined ? decodeCursor(query.cursor) : 0;
    const needle = query.q?.toLowerCase();
    const now = this.now();
    const ownerRecords = new Map((await this.store.listOwners()).map((o) => [o.id, o]));
    const owners = new Map([...ownerRecords.values()].map((o) => [o.id, o.status === 'active']));
    const items: ApiKey[] = [];
    const batch = Math.max(100, query.limit * 2);
    let lastSeq = after;
    scan: for (;;) {
      const page = await this.store.scanKeys(after, batch);
      for (const rec of page) {
        after = rec.seq;
        if (!workspaceVisible(grant, rec.workspaceId)) continue;
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
        const owner = rec.ownerId === null ? null : (ownerRecords.get(rec.ownerId) ?? null);
        items.push(this.viewWith(rec, owner, (await this.store.getUsage(rec.id)).lastUsedAt));
        lastSeq = rec.seq;
      }
      if (page.length < batch) return { items, nextCursor: null };
    }
    return { items, nextCursor: encodeCursor(lastSeq) };
  }
}

/** A change to one key: `next: null` writes nothing and returns `result`. */
interface Mutation<T> { next: KeyRecord | null; action: string; result: T; detail?: Record<string, unknown> }

/** What a write may reach: the grant's workspaces, and the state `If-Match` names (throws 412 when gone). */
export interface Access { grant: AdminGrant; ifMatch: (token: string) => void }
const ANY: Access = { grant: FULL_GRANT, ifMatch: () => undefined };

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size !== sb.size) return false;
  for (const x of sa) if (!sb.has(x)) return false;
  return true;
}
