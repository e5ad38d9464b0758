import { adminTokenSchema, adminTokenWithSecretSchema, page } from '../api-schemas.js';
import { toAdminToken } from '../../domain/entities.js';
import { pageOf } from '../paging.js';
import { createAdminTokenSchema, listQuerySchema } from '../schemas.js';
import type { AdminDeps, AdminRoutes } from './types.js';

export function adminTokenRoutes(routes: AdminRoutes, { adminTokens }: AdminDeps): void {
  routes.add({
    method: 'POST', path: '/v1/admin-tokens', scope: 'admin-tokens:write', tag: 'admin-tokens',
    summary: 'Create a scoped admin token; its secret is in this answer only, stored as a peppered hash',
    body: createAdminTokenSchema, responses: { 201: adminTokenWithSecretSchema },
    handler: async (ctx) => {
      const { token, secret } = await adminTokens.create(ctx.body, ctx.actor, ctx.grant);
      return { status: 201, body: { token, secret }, location: `/v1/admin-tokens/${token.id}`, etag: { id: token.id, token: token.updatedAt } };
    },
  });
  routes.add({
    method: 'GET', path: '/v1/admin-tokens', scope: 'admin-tokens:read', tag: 'admin-tokens',
    summary: 'List admin tokens made through the API', query: listQuerySchema, responses: { 200: page(adminTokenSchema) },
    handler: async (ctx) => {
      const { items, nextCursor } = pageOf(await adminTokens.list(ctx.grant), ctx.query.limit, ctx.query.cursor);
      return { status: 200, body: { items: items.map(toAdminToken), nextCursor } };
    },
  });
  routes.add({
    method: 'GET', path: '/v1/admin-tokens/:id', scope: 'admin-tokens:read', tag: 'admin-tokens',
    summary: 'Get an admin token (never its secret)', responses: { 200: adminTokenSchema }, errors: ['ADMIN_TOKEN_NOT_FOUND'],
    handler: async (ctx) => {
      const rec = await adminTokens.get(ctx.params.id!, ctx.grant);
      return { status: 200, body: toAdminToken(rec), etag: { id: rec.id, token: rec.updatedAt } };
    },
  });
  routes.add({
    method: 'DELETE', path: '/v1/admin-tokens/:id', scope: 'admin-tokens:write', tag: 'admin-tokens',
    summary: 'Revoke an admin token, at once on every node', responses: { 204: null },
    errors: ['ADMIN_TOKEN_NOT_FOUND', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      await adminTokens.revoke(ctx.params.id!, ctx.actor, ctx.grant, (t) => ctx.ifMatch(ctx.params.id!, t));
      return { status: 204 };
    },
  });
}
