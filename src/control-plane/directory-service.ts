import type { z } from 'zod';
import type { Actor, AuditEntry, AuditTargetType, Group, Owner, Workspace } from '../domain/entities.js';
import { newAuditId, newGroupId, newOwnerId, newWorkspaceId } from '../domain/ids.js';
import type { PermissionCatalogue } from '../domain/permissions.js';
import { KeygateError, ValidationError } from '../errors/catalogue.js';
import type { KeyStore } from '../store/types.js';
import type { createGroupSchema, createOwnerSchema, patchGroupSchema, patchOwnerSchema } from './schemas.js';

/** Workspaces, groups and owners: the records keys refer to. */
export class DirectoryService {
  constructor(
    private readonly store: KeyStore,
    private readonly catalogue: PermissionCatalogue,
    private readonly now: () => number = Date.now,
  ) {}

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private audit(actor: Actor, action: string, type: AuditTargetType, id: string, before: unknown, after: unknown): AuditEntry {
    return { id: newAuditId(), at: this.iso(), actor, action, target: { type, id }, before, after };
  }

  async createWorkspace(input: { name: string }, actor: Actor): Promise<Workspace> {
    const ws: Workspace = { id: newWorkspaceId(), name: input.name, createdAt: this.iso() };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'workspace', value: ws } }],
      audit: [this.audit(actor, 'workspace.create', 'workspace', ws.id, null, ws)],
      expect: [{ type: 'workspace', id: ws.id, token: null }],
    });
    return ws;
  }

  async getWorkspace(id: string): Promise<Workspace> {
    const ws = await this.store.getWorkspace(id);
    if (!ws) throw new KeygateError('WORKSPACE_NOT_FOUND', `No workspace has the id "${id}".`);
    return ws;
  }

  listWorkspaces(): Promise<Workspace[]> {
    return this.store.listWorkspaces();
  }

  async createGroup(input: z.infer<typeof createGroupSchema>, actor: Actor): Promise<Group> {
    const now = this.iso();
    const group: Group = { id: newGroupId(), name: input.name, description: input.description, createdAt: now, updatedAt: now };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'group', value: group } }],
      audit: [this.audit(actor, 'group.create', 'group', group.id, null, group)],
      expect: [{ type: 'group', id: group.id, token: null }],
    });
    return group;
  }

  private async requireGroup(id: string): Promise<Group> {
    const group = await this.store.getGroup(id);
    if (!group) throw new KeygateError('GROUP_NOT_FOUND', `No group has the id "${id}".`);
    return group;
  }

  listGroups(): Promise<Group[]> {
    return this.store.listGroups();
  }

  async updateGroup(id: string, patch: z.infer<typeof patchGroupSchema>, actor: Actor): Promise<Group> {
    if (Object.keys(patch).length === 0) throw new ValidationError(['(body): give at least one field to change']);
    const before = await this.requireGroup(id);
    const after: Group = { ...before, ...patch, updatedAt: this.iso() };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'group', value: after } }],
      audit: [this.audit(actor, 'group.update', 'group', id, before, after)],
      expect: [{ type: 'group', id, token: before.updatedAt }],
    });
    return after;
  }

  async deleteGroup(id: string, actor: Actor): Promise<void> {
    const before = await this.requireGroup(id);
    const members = await this.store.keyIdsInGroup(id);
    if (members.length > 0) {
      throw new KeygateError('GROUP_IN_USE', `The group still has ${members.length} key(s); move or delete them first.`);
    }
    await this.store.commit({
      ops: [{ op: 'delete', type: 'group', id }],
      audit: [this.audit(actor, 'group.delete', 'group', id, before, null)],
      expect: [{ type: 'group', id, token: before.updatedAt }],
      // Checked again where the write applies: a key may have joined since the count above.
      expectEmptyGroups: [id],
    });
  }

  private checkPermissions(permissions: readonly string[] | undefined): void {
    if (permissions === undefined) return;
    const problems: string[] = [];
    permissions.forEach((p, i) => {
      const problem = this.catalogue.problemWith(p);
      if (problem) problems.push(`permissions[${i}]: ${problem}`);
    });
    if (problems.length > 0) throw new ValidationError(problems);
  }

  async createOwner(input: z.infer<typeof createOwnerSchema>, actor: Actor): Promise<Owner> {
    this.checkPermissions(input.permissions);
    const now = this.iso();
    const owner: Owner = {
      id: newOwnerId(), name: input.name, status: input.status, permissions: [...new Set(input.permissions)],
      createdAt: now, updatedAt: now, version: 1,
    };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'owner', value: owner } }],
      audit: [this.audit(actor, 'owner.create', 'owner', owner.id, null, owner)],
      expect: [{ type: 'owner', id: owner.id, token: null }],
    });
    return owner;
  }

  async getOwner(id: string): Promise<Owner> {
    const owner = await this.store.getOwner(id);
    if (!owner) throw new KeygateError('OWNER_NOT_FOUND', `No owner has the id "${id}".`);
    return owner;
  }

  listOwners(): Promise<Owner[]> {
    return this.store.listOwners();
  }

  async updateOwner(id: string, patch: z.infer<typeof patchOwnerSchema>, actor: Actor): Promise<Owner> {
    if (Object.keys(patch).length === 0) throw new ValidationError(['(body): give at least one field to change']);
    this.checkPermissions(patch.permissions);
    const before = await this.getOwner(id);
    const after: Owner = {
      ...before,
      ...patch,
      permissions: patch.permissions ? [...new Set(patch.permissions)] : before.permissions,
      updatedAt: this.iso(),
      version: before.version + 1,
    };
    await this.store.commit({
      ops: [{ op: 'put', entity: { type: 'owner', value: after } }],
      audit: [this.audit(actor, 'owner.update', 'owner', id, before, after)],
      expect: [{ type: 'owner', id, token: String(before.version) }],
    });
    return after;
  }
}
