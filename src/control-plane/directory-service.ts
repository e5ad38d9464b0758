import type { z } from 'zod';
import { workspaceVisible, type AdminGrant } from '../domain/admin-scopes.js';
import type { Actor, AuditEntry, AuditTargetType, Group, Owner, Workspace } from '../domain/entities.js';
import { newAuditId, newGroupId, newOwnerId, newWorkspaceId } from '../domain/ids.js';
import type { PermissionCatalogue } from '../domain/permissions.js';
import { KeygateError, ValidationError } from '../errors/catalogue.js';
import type { KeyStore } from '../store/types.js';
import type {
  createGroupSchema, createOwnerSchema, patchGroupSchema, patchOwnerSchema, patchWorkspaceSchema,
} from './schemas.js';

/** Checks `If-Match` against a record's precondition token; throws 412 on a mismatch. */
export type IfMatchCheck = (token: string) => void;
const anyState: IfMatchCheck = () => undefined;

/**
 * Workspaces, groups and owners: the records keys refer to. A grant confined to workspaces
 * sees only its workspaces and the groups and owners that belong to them: anything else
 * answers as unknown (404), never as forbidden.
 */
export class DirectoryService {
  constructor(
    private readonly store: KeyStore,
    private readonly catalogue: PermissionCatalogue,
    private readonly now: () => number = Date.now,
  ) {}

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private audit(actor: Actor, action: string, type: AuditTargetType, id: string, workspaceId: string | null, before: unknown, after: unknown): AuditEntry {
    return { id: newAuditId(), at: this.iso(), actor, action, target: { type, id }, workspaceId, before, after };
  }

  // --- workspaces

  async createWorkspace(input: { name: string }, actor: Actor, grant: AdminGrant): Promise<Workspace> {
    if (grant.workspaces !== null) throw new KeygateError('WORKSPACE_CONFINED', 'A token confined to workspaces cannot create one.');
    const at = this.iso();
    const ws: Workspace = { id: newWorkspaceId(), name: input.name, createdAt: at, updatedAt: at };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }],
      audit: [this.audit(actor, 'workspace.create', 'workspace', ws.id, ws.id, null, ws)],
      expect: [{ type: 'workspace', id: ws.id, token: null }],
    });
    return ws;
  }

  async getWorkspace(id: string, grant: AdminGrant): Promise<Workspace> {
    const ws = workspaceVisible(grant, id) ? await this.store.getWorkspace(id) : null;
    if (!ws) throw new KeygateError('WORKSPACE_NOT_FOUND', `No workspace has the id "${id}".`);
    return ws;
  }

  async listWorkspaces(grant: AdminGrant): Promise<Workspace[]> {
    return (await this.store.listWorkspaces()).filter((w) => workspaceVisible(grant, w.id));
  }

  async updateWorkspace(id: string, patch: z.infer<typeof patchWorkspaceSchema>, actor: Actor, grant: AdminGrant, ifMatch: IfMatchCheck = anyState): Promise<Workspace> {
    if (Object.keys(patch).length === 0) throw new ValidationError(['(body): give at least one field to change']);
    const before = await this.getWorkspace(id, grant);
    const token = before.updatedAt ?? before.createdAt;
    ifMatch(token);
    const after: Workspace = { ...before, ...patch, updatedAt: this.laterThan(token) };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'workspace', value: after } }],
      audit: [this.audit(actor, 'workspace.update', 'workspace', id, id, before, after)],
      expect: [{ type: 'workspace', id, token }],
    });
    return after;
  }

  /**
   * Refused with 409 WORKSPACE_IN_USE while it holds keys (checked again where the write
   * applies). Its own groups and owners go with it: only its keys could be in them.
   */
  async deleteWorkspace(id: string, actor: Actor, grant: AdminGrant, ifMatch: IfMatchCheck = anyState): Promise<void> {
    const before = await this.getWorkspace(id, grant);
    const token = before.updatedAt ?? before.createdAt;
    ifMatch(token);
    if (await this.store.workspaceHasKeys(id)) throw new KeygateError('WORKSPACE_IN_USE', 'The workspace still holds keys; delete them first.');
    const groups = (await this.store.listGroups()).filter((g) => g.workspaceId === id);
    const owners = (await this.store.listOwners()).filter((o) => o.workspaceId === id);
    await this.store.commit({
      ops: [
        { op: 'delete', type: 'workspace', id },
        ...groups.map((g) => ({ op: 'delete' as const, type: 'group' as const, id: g.id })),
        ...owners.map((o) => ({ op: 'delete' as const, type: 'owner' as const, id: o.id })),
      ],
      audit: [
        this.audit(actor, 'workspace.delete', 'workspace', id, id, before, null),
        ...groups.map((g) => this.audit(actor, 'group.delete', 'group', g.id, id, g, null)),
        ...owners.map((o) => this.audit(actor, 'owner.delete', 'owner', o.id, id, o, null)),
      ],
      expect: [
        { type: 'workspace', id, token },
        ...groups.map((g) => ({ type: 'group' as const, id: g.id, token: g.updatedAt })),
        ...owners.map((o) => ({ type: 'owner' as const, id: o.id, token: String(o.version) })),
      ],
      expectEmptyWorkspaces: [id],
      expectEmptyGroups: groups.map((g) => g.id),
      expectEmptyOwners: owners.map((o) => o.id),
    });
  }

  /**
   * An update time that differs from the one read: records without a version are guarded by
   * their `updatedAt`, so two writes within one millisecond must still tell apart.
   */
  private laterThan(previous: string): string {
    const now = this.now();
    const prev = Date.parse(previous);
    return new Date(Number.isFinite(prev) && prev >= now ? prev + 1 : now).toISOString();
  }

  /** Refuses a workspace the grant does not reach, or that does not exist, naming the field. */
  private async checkWorkspaceRef(workspaceId: string | null, grant: AdminGrant, problems: string[]): Promise<void> {
    if (workspaceId === null) {
      if (grant.workspaces !== null) problems.push('workspaceId: a token confined to workspaces must name one of them');
      return;
    }
    if (!workspaceVisible(grant, workspaceId) || !(await this.store.getWorkspace(workspaceId))) problems.push(`workspaceId: unknown workspace "${workspaceId}"`);
  }

  // --- groups

  async createGroup(input: z.infer<typeof createGroupSchema>, actor: Actor, grant: AdminGrant): Promise<Group> {
    const problems: string[] = [];
    await this.checkWorkspaceRef(input.workspaceId, grant, problems);
    if (problems.length > 0) throw new ValidationError(problems);
    const now = this.iso();
    const group: Group = { id: newGroupId(), name: input.name, description: input.description, workspaceId: input.workspaceId, createdAt: now, updatedAt: now };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'group', value: group } }],
      audit: [this.audit(actor, 'group.create', 'group', group.id, group.workspaceId ?? null, null, group)],
      expect: [{ type: 'group', id: group.id, token: null }],
    });
    return group;
  }

  async getGroup(id: string, grant: AdminGrant): Promise<Group> {
    const group = await this.store.getGroup(id);
    if (!group || !workspaceVisible(grant, group.workspaceId)) throw new KeygateError('GROUP_NOT_FOUND', `No group has the id "${id}".`);
    return group;
  }

  async listGroups(grant: AdminGrant): Promise<Group[]> {
    return (await this.store.listGroups()).filter((g) => workspaceVisible(grant, g.workspaceId));
  }

  async updateGroup(id: string, patch: z.infer<typeof patchGroupSchema>, actor: Actor, grant: AdminGrant, ifMatch: IfMatchCheck = anyState): Promise<Group> {
    if (Object.keys(patch).length === 0) throw new ValidationError(['(body): give at least one field to change']);
    const before = await this.getGroup(id, grant);
    ifMatch(before.updatedAt);
    const after: Group = { ...before, ...patch, updatedAt: this.laterThan(before.updatedAt) };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'group', value: after } }],
      audit: [this.audit(actor, 'group.update', 'group', id, after.workspaceId ?? null, before, after)],
      expect: [{ type: 'group', id, token: before.updatedAt }],
    });
    return after;
  }

  async deleteGroup(id: string, actor: Actor, grant: AdminGrant, ifMatch: IfMatchCheck = anyState): Promise<void> {
    const before = await this.getGroup(id, grant);
    ifMatch(before.updatedAt);
    const members = await this.store.keyIdsInGroup(id);
    if (members.length > 0) {
      throw new KeygateError('GROUP_IN_USE', `The group still has ${members.length} key(s); move or delete them first.`);
    }
    await this.store.commit({
      ops: [{ op: 'delete', type: 'group', id }],
      audit: [this.audit(actor, 'group.delete', 'group', id, before.workspaceId ?? null, before, null)],
      expect: [{ type: 'group', id, token: before.updatedAt }],
      // Checked again where the write applies: a key may have joined since the count above.
      expectEmptyGroups: [id],
    });
  }

  // --- owners

  /** Problems with a list of permissions (unknown names and modules), one per entry. */
  permissionProblems(permissions: readonly unknown[] | undefined, field = 'permissions'): string[] {
    const problems: string[] = [];
    permissions?.forEach((p, i) => {
      if (typeof p !== 'string') return;
      const problem = this.catalogue.problemWith(p);
      if (problem) problems.push(`${field}[${i}]: ${problem}`);
    });
    return problems;
  }

  async createOwner(input: z.infer<typeof createOwnerSchema>, actor: Actor, grant: AdminGrant): Promise<Owner> {
    const problems = this.permissionProblems(input.permissions);
    await this.checkWorkspaceRef(input.workspaceId, grant, problems);
    if (problems.length > 0) throw new ValidationError(problems);
    const now = this.iso();
    const owner: Owner = {
      id: newOwnerId(), name: input.name, status: input.status, permissions: [...new Set(input.permissions)],
      workspaceId: input.workspaceId, createdAt: now, updatedAt: now, version: 1,
    };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'owner', value: owner } }],
      audit: [this.audit(actor, 'owner.create', 'owner', owner.id, owner.workspaceId ?? null, null, owner)],
      expect: [{ type: 'owner', id: owner.id, token: null }],
    });
    return owner;
  }

  async getOwner(id: string, grant: AdminGrant): Promise<Owner> {
    const owner = await this.store.getOwner(id);
    if (!owner || !workspaceVisible(grant, owner.workspaceId)) throw new KeygateError('OWNER_NOT_FOUND', `No owner has the id "${id}".`);
    return owner;
  }

  async listOwners(grant: AdminGrant): Promise<Owner[]> {
    return (await this.store.listOwners()).filter((o) => workspaceVisible(grant, o.workspaceId));
  }

  async updateOwner(id: string, patch: z.infer<typeof patchOwnerSchema>, actor: Actor, grant: AdminGrant, ifMatch: IfMatchCheck = anyState): Promise<Owner> {
    if (Object.keys(patch).length === 0) throw new ValidationError(['(body): give at least one field to change']);
    const problems = this.permissionProblems(patch.permissions);
    if (problems.length > 0) throw new ValidationError(problems);
    const before = await this.getOwner(id, grant);
    ifMatch(String(before.version));
    const after: Owner = {
      ...before,
      ...patch,
      permissions: patch.permissions ? [...new Set(patch.permissions)] : before.permissions,
      updatedAt: this.iso(),
      version: before.version + 1,
    };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'owner', value: after } }],
      audit: [this.audit(actor, 'owner.update', 'owner', id, after.workspaceId ?? null, before, after)],
      expect: [{ type: 'owner', id, token: String(before.version) }],
    });
    return after;
  }

  /** Refused with 409 OWNER_IN_USE while keys refer to it (checked again where the write applies). */
  async deleteOwner(id: string, actor: Actor, grant: AdminGrant, ifMatch: IfMatchCheck = anyState): Promise<void> {
    const before = await this.getOwner(id, grant);
    ifMatch(String(before.version));
    const keys = await this.store.keyIdsOfOwner(id);
    if (keys.length > 0) throw new KeygateError('OWNER_IN_USE', `${keys.length} key(s) still refer to the owner; move or delete them first.`);
    await this.store.commit({
      ops: [{ op: 'delete', type: 'owner', id }],
      audit: [this.audit(actor, 'owner.delete', 'owner', id, before.workspaceId ?? null, before, null)],
      expect: [{ type: 'owner', id, token: String(before.version) }],
      expectEmptyOwners: [id],
    });
  }
}
