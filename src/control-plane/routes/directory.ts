import {
  createGroupSchema, createOwnerSchema, createWorkspaceSchema, parseBody, patchGroupSchema, patchOwnerSchema,
} from '../schemas.js';
import type { AdminDeps, AdminRouter } from './types.js';

export function directoryRoutes(router: AdminRouter, { directory }: AdminDeps): void {
  router.add('POST', '/v1/workspaces', async (ctx) => ({
    status: 201,
    body: await directory.createWorkspace(parseBody(createWorkspaceSchema, await ctx.body()), ctx.actor),
  }));
  router.add('GET', '/v1/workspaces', async () => ({ status: 200, body: { items: await directory.listWorkspaces() } }));
  router.add('GET', '/v1/workspaces/:id', async (ctx) => ({ status: 200, body: await directory.getWorkspace(ctx.params.id!) }));

  router.add('POST', '/v1/groups', async (ctx) => ({
    status: 201,
    body: await directory.createGroup(parseBody(createGroupSchema, await ctx.body()), ctx.actor),
  }));
  router.add('GET', '/v1/groups', async () => ({ status: 200, body: { items: await directory.listGroups() } }));
  router.add('PATCH', '/v1/groups/:id', async (ctx) => ({
    status: 200,
    body: await directory.updateGroup(ctx.params.id!, parseBody(patchGroupSchema, (await ctx.body()) ?? {}), ctx.actor),
  }));
  router.add('DELETE', '/v1/groups/:id', async (ctx) => {
    await directory.deleteGroup(ctx.params.id!, ctx.actor);
    return { status: 204 };
  });

  router.add('POST', '/v1/owners', async (ctx) => ({
    status: 201,
    body: await directory.createOwner(parseBody(createOwnerSchema, await ctx.body()), ctx.actor),
  }));
  router.add('GET', '/v1/owners', async () => ({ status: 200, body: { items: await directory.listOwners() } }));
  router.add('GET', '/v1/owners/:id', async (ctx) => ({ status: 200, body: await directory.getOwner(ctx.params.id!) }));
  router.add('PATCH', '/v1/owners/:id', async (ctx) => ({
    status: 200,
    body: await directory.updateOwner(ctx.params.id!, parseBody(patchOwnerSchema, (await ctx.body()) ?? {}), ctx.actor),
  }));
}
