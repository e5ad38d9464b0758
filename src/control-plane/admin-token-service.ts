import type { Config } from '../config/schema.js';
import { scopeGranted, type AdminGrant } from '../domain/admin-scopes.js';
import { toAdminToken, type Actor, type AdminToken, type AdminTokenRecord, type AuditEntry } from '../domain/entities.js';
import { adminTokenIdOf, newAdminTokenId, newAdminTokenSecret, newAuditId } from '../domain/ids.js';
import { hashSecret, safeEqual } from '../domain/secret.js';
import { KeygateError, ValidationError } from '../errors/catalogue.js';
import type { KeyStore } from '../store/types.js';
import type { CreateAdminTokenInput } from './schemas.js';

/** Who a bearer admin token is, and what it reaches. */
export interface AdminPrincipal { actor: Actor; grant: AdminGrant }

/**
 * Admin tokens: those of the config file, and those made through the API (stored as a
 * peppered hash, like a key's secret, and read from the store on every request, so a revoked
 * one stops at once on every node sharing the store).
 */
export class AdminTokenService {
  private readonly configured: ReadonlyArray<{ token: string; principal: AdminPrincipal }>;

  constructor(
    private readonly store: KeyStore,
    private readonly config: Config,
    private readonly now: () => number = Date.now,
  ) {
    this.configured = config.admin.tokens.map((t) => ({
      token: t.token,
      principal: {
        actor: { type: 'admin', name: t.name, tokenId: `config:${t.name}` },
        grant: {
          scopes: t.scopes ?? ['*'],
          workspaces: t.workspaces ? new Set(t.workspaces) : null,
        },
      },
    }));
  }

  /** The principal a bearer token names, or null. Every comparison takes constant time. */
  async authenticate(presented: string): Promise<AdminPrincipal | null> {
    let found: AdminPrincipal | null = null;
    // No early exit: the time taken does not tell which configured token, if any, matched.
    for (const t of this.configured) if (safeEqual(presented, t.token) && found === null) found = t.principal;
    if (found !== null) return found;
    const id = adminTokenIdOf(presented);
    if (id === null) return null;
    // Hashed before the lookup, so an unknown id costs what a wrong secret does.
    const hash = hashSecret(this.config.secrets.pepper, presented);
    const rec = await this.store.getAdminToken(id);
    if (rec === null || !safeEqual(hash, rec.secretHash)) return null;
    return {
      actor: { type: 'admin', name: rec.name, tokenId: rec.id },
      grant: { scopes: rec.scopes, workspaces: rec.workspaces ? new Set(rec.workspaces) : null },
    };
  }

  private audit(actor: Actor, action: string, id: string, before: unknown, after: unknown): AuditEntry {
    return { id: newAuditId(), at: new Date(this.now()).toISOString(), actor, action, target: { type: 'admin-token', id }, workspaceId: null, before, after };
  }

  /**
   * A token never reaches further than the one that makes it: each scope must be held by the
   * maker, and a confined maker's token is confined to (some of) the maker's workspaces.
   */
  async create(input: CreateAdminTokenInput, actor: Actor, grant: AdminGrant): Promise<{ token: AdminToken; secret: string }> {
    const problems: string[] = [];
    const scopes = [...new Set(input.scopes)];
    scopes.forEach((s, i) => {
      if (s === '*' ? !grant.scopes.includes('*') : !scopeGranted(grant.scopes, s as Parameters<typeof scopeGranted>[1])) {
        problems.push(`scopes[${i}]: "${s}" is beyond the scopes of the token making it`);
      }
    });
    let workspaces = input.workspaces === null ? null : [...new Set(input.workspaces)];
    if (grant.workspaces !== null) {
      if (workspaces === null) workspaces = [...grant.workspaces];
      else workspaces.forEach((w, i) => { if (!grant.workspaces!.has(w)) problems.push(`workspaces[${i}]: unknown workspace "${w}"`); });
    }
    if (workspaces !== null) {
      for (const [i, w] of workspaces.entries()) {
        if (grant.workspaces === null && !(await this.store.getWorkspace(w))) problems.push(`workspaces[${i}]: unknown workspace "${w}"`);
      }
    }
    if (problems.length > 0) throw new ValidationError(problems);
    const id = newAdminTokenId();
    const secret = newAdminTokenSecret(id);
    const at = new Date(this.now()).toISOString();
    const rec: AdminTokenRecord = {
      id, name: input.name, scopes, workspaces, createdAt: at, updatedAt: at, createdBy: actor,
      secretHash: hashSecret(this.config.secrets.pepper, secret),
    };
    const view = toAdminToken(rec);
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'admin-token', value: rec } }],
      audit: [this.audit(actor, 'admin-token.create', id, null, view)],
      expect: [{ type: 'admin-token', id, token: null }],
    });
    return { token: view, secret };
  }

  /** A confined token sees only tokens confined within its own workspaces. */
  private visible(rec: AdminTokenRecord, grant: AdminGrant): boolean {
    if (grant.workspaces === null) return true;
    return rec.workspaces !== null && rec.workspaces.every((w) => grant.workspaces!.has(w));
  }

  async list(grant: AdminGrant): Promise<AdminTokenRecord[]> {
    return (await this.store.listAdminTokens()).filter((t) => this.visible(t, grant));
  }

  async get(id: string, grant: AdminGrant): Promise<AdminTokenRecord> {
    const rec = await this.store.getAdminToken(id);
    if (rec === null || !this.visible(rec, grant)) throw new KeygateError('ADMIN_TOKEN_NOT_FOUND', `No admin token has the id "${id}".`);
    return rec;
  }

  async revoke(id: string, actor: Actor, grant: AdminGrant, ifMatch: (token: string) => void): Promise<void> {
    const rec = await this.get(id, grant);
    ifMatch(rec.updatedAt);
    await this.store.commit({
      ops: [{ op: 'delete', type: 'admin-token', id }],
      audit: [this.audit(actor, 'admin-token.delete', id, toAdminToken(rec), null)],
      expect: [{ type: 'admin-token', id, token: rec.updatedAt }],
    });
  }
}
