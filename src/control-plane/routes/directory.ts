import { groupSchema, ownerSchema, page, workspaceSchema } from '../api-schemas.js';
import { pageOf } from '../paging.js';
import {
  createGroupSchema, createOwnerSchema, createWorkspaceSchema, listQuerySchema, patchGroupSchema, patchOwnerSchema,
  patchWorkspaceSchema,
} from '../schemas.js';
import type { AdminDeps, AdminRoutes } from './types.js';

const at = (collection: string, id: string): string => `/v1/${collection}/${encodeURIComponent(id)}`;

export function directoryRoutes(routes: AdminRoutes, { directory }: AdminDeps): void {
  // --- workspaces
  routes.add({
    method: 'POST', path: '/v1/workspaces', scope: 'workspaces:write', tag: 'workspaces',
    summary: 'Create a workspace (a tenant); its id is a GUID', body: createWorkspaceSchema,
    responses: { 201: workspaceSchema }, errors: ['WORKSPACE_CONFINED'],
    handler: async (ctx) => {
      const ws = await directory.createWorkspace(ctx.body, ctx.actor, ctx.grant);
      return { status: 201, body: ws, location: at('workspaces', ws.id), etag: { id: ws.id, token: ws.updatedAt ?? ws.createdAt } };
    },
  });
  routes.add({
    method: 'GET', path: '/v1/workspaces', scope: 'workspaces:read', tag: 'workspaces',
    summary: 'List workspaces', query: listQuerySchema, responses: { 200: page(workspaceSchema) },
    handler: async (ctx) => ({ status: 200, body: pageOf(await directory.listWorkspaces(ctx.grant), ctx.query.limit, ctx.query.cursor) }),
  });
  routes.add({
    method: 'GET', path: '/v1/workspaces/:id', scope: 'workspaces:read', tag: 'workspaces',
    summary: 'Get a workspace', responses: { 200: workspaceSchema }, errors: ['WORKSPACE_NOT_FOUND'],
    handler: async (ctx) => {
      const ws = await directory.getWorkspace(ctx.params.id!, ctx.grant);
      return { status: 200, body: ws, etag: { id: ws.id, token: ws.updatedAt ?? ws.createdAt } };
    },
  });
  routes.add({
    method: 'PATCH', path: '/v1/workspaces/:id', scope: 'workspaces:write', tag: 'workspaces',
    summary: 'Rename a workspace', body: patchWorkspaceSchema, responses: { 200: workspaceSchema },
    errors: ['WORKSPACE_NOT_FOUND', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      const ws = await directory.updateWorkspace(ctx.params.id!, ctx.body, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 200, body: ws, etag: { id: ws.id, token: ws.updatedAt ?? ws.createdAt } };
    },
  });
  routes.add({
    method: 'DELETE', path: '/v1/workspaces/:id', scope: 'workspaces:write', tag: 'workspaces',
    summary: 'Delete a workspace; refused (409 WORKSPACE_IN_USE) while it holds keys', responses: { 204: null },
    errors: ['WORKSPACE_NOT_FOUND', 'WORKSPACE_IN_USE', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      await directory.deleteWorkspace(ctx.params.id!, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 204 };
    },
  });

  // --- groups
  routes.add({
    method: 'POST', path: '/v1/groups', scope: 'groups:write', tag: 'groups',
    summary: 'Create a key group (of one workspace, or shared when workspaceId is null)', body: createGroupSchema,
    responses: { 201: groupSchema },
    handler: async (ctx) => {
      const group = await directory.createGroup(ctx.body, ctx.actor, ctx.grant);
      return { status: 201, body: group, location: at('groups', group.id), etag: { id: group.id, token: group.updatedAt } };
    },
  });
  routes.add({
    method: 'GET', path: '/v1/groups', scope: 'groups:read', tag: 'groups',
    summary: 'List key groups', query: listQuerySchema, responses: { 200: page(groupSchema) },
    handler: async (ctx) => ({ status: 200, body: pageOf(await directory.listGroups(ctx.grant), ctx.query.limit, ctx.query.cursor) }),
  });
  routes.add({
    method: 'GET', path: '/v1/groups/:id', scope: 'groups:read', tag: 'groups',
    summary: 'Get a key group', responses: { 200: groupSchema }, errors: ['GROUP_NOT_FOUND'],
    handler: async (ctx) => {
      const group = await directory.getGroup(ctx.params.id!, ctx.grant);
      return { status: 200, body: group, etag: { id: group.id, token: group.updatedAt } };
    },
  });
  routes.add({
    method: 'PATCH', path: '/v1/groups/:id', scope: 'groups:write', tag: 'groups',
    summary: 'Change a key group', body: patchGroupSchema, responses: { 200: groupSchema },
    errors: ['GROUP_NOT_FOUND', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      const group = await directory.updateGroup(ctx.params.id!, ctx.body, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 200, body: group, etag: { id: group.id, token: group.updatedAt } };
    },
  });
  routes.add({
    method: 'DELETE', path: '/v1/groups/:id', scope: 'groups:write', tag: 'groups',
    summary: 'Delete a key group; refused (409 GROUP_IN_USE) while keys are in it', responses: { 204: null },
    errors: ['GROUP_NOT_FOUND', 'GROUP_IN_USE', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      await directory.deleteGroup(ctx.params.id!, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 204 };
    },
  });

  // --- owners
  const ownerPermissions = (raw: unknown): Promise<string[]> => {
    const body = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    return Promise.resolve(Array.isArray(body.permissions) ? directory.permissionProblems(body.permissions) : []);
  };
  routes.add({
    method: 'POST', path: '/v1/owners', scope: 'owners:write', tag: 'owners',
    summary: 'Create an owner; its permissions bound its keys\' (default ["*"])', body: createOwnerSchema,
    alsoCheck: ownerPermissions, responses: { 201: ownerSchema },
    handler: async (ctx) => {
      const owner = await directory.createOwner(ctx.body, ctx.actor, ctx.grant);
      return { status: 201, body: owner, location: at('owners', owner.id), etag: { id: owner.id, token: String(owner.version) } };
    },
  });
  routes.add({
    method: 'GET', path: '/v1/owners', scope: 'owners:read', tag: 'owners',
    summary: 'List owners', query: listQuerySchema, responses: { 200: page(ownerSchema) },
    handler: async (ctx) => ({ status: 200, body: pageOf(await directory.listOwners(ctx.grant), ctx.query.limit, ctx.query.cursor) }),
  });
  routes.add({
    method: 'GET', path: '/v1/owners/:id', scope: 'owners:read', tag: 'owners',
    summary: 'Get an owner', responses: { 200: ownerSchema }, errors: ['OWNER_NOT_FOUND'],
    handler: async (ctx) => {
      const owner = await directory.getOwner(ctx.params.id!, ctx.grant);
      return { status: 200, body: owner, etag: { id: owner.id, token: String(owner.version) } };
    },
  });
  routes.add({
    method: 'PATCH', path: '/v1/owners/:id', scope: 'owners:write', tag: 'owners',
    summary: 'Change an owner; disabling it suspends its keys', body: patchOwnerSchema, alsoCheck: ownerPermissions,
    responses: { 200: ownerSchema }, errors: ['OWNER_NOT_FOUND', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      const owner = await directory.updateOwner(ctx.params.id!, ctx.body, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 200, body: owner, etag: { id: owner.id, token: String(owner.version) } };
    },
  });
  routes.add({
    method: 'DELETE', path: '/v1/owners/:id', scope: 'owners:write', tag: 'owners',
    summary: 'Delete an owner; refused (409 OWNER_IN_USE) while keys refer to it', responses: { 204: null },
    errors: ['OWNER_NOT_FOUND', 'OWNER_IN_USE', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      await directory.deleteOwner(ctx.params.id!, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 204 };
    },
  });
}
