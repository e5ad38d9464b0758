import { z } from 'zod';
import { auditEntrySchema, nodeSchema, page, permissionsSchema, signingKeySchema } from '../api-schemas.js';
import { queryAudit } from '../audit-query.js';
import { pageOf } from '../paging.js';
import { auditQuerySchema, listQuerySchema } from '../schemas.js';
import { KeygateError } from '../../errors/catalogue.js';
import type { AdminDeps, AdminRoutes } from './types.js';

export function metaRoutes(routes: AdminRoutes, { store, catalogue, config, signingKeys }: AdminDeps): void {
  // Public halves only: a signing key's private part never leaves the store and the gateways.
  routes.add({
    method: 'GET', path: '/v1/signing-keys', scope: 'signing-keys:read', tag: 'signing-keys',
    summary: "The token signing keys (public data: id, algorithm, when they sign)", query: listQuerySchema,
    responses: { 200: page(signingKeySchema) },
    handler: async (ctx) => ({ status: 200, body: pageOf(await signingKeys.list(), ctx.query.limit, ctx.query.cursor) }),
  });
  routes.add({
    method: 'GET', path: '/v1/signing-keys/:id', scope: 'signing-keys:read', tag: 'signing-keys',
    summary: 'One token signing key (public data)', responses: { 200: signingKeySchema }, errors: ['NOT_FOUND'],
    handler: async (ctx) => {
      const key = (await signingKeys.list()).find((k) => k.id === ctx.params.id);
      if (!key) throw new KeygateError('NOT_FOUND', `No signing key has the id "${ctx.params.id!}".`);
      return { status: 200, body: key, etag: { id: key.id, token: `${key.createdAt}|${key.retiredAt ?? ''}` } };
    },
  });
  routes.add({
    method: 'POST', path: '/v1/signing-keys/rotate', scope: 'signing-keys:write', tag: 'signing-keys',
    summary: 'Make a new signing key; it is published at once and signs after tokens.rotationDelaySeconds',
    body: z.strictObject({}), responses: { 201: signingKeySchema }, errors: ['WORKSPACE_CONFINED'],
    handler: async (ctx) => {
      if (ctx.grant.workspaces !== null) throw new KeygateError('WORKSPACE_CONFINED', 'A token confined to workspaces cannot rotate the signing keys every workspace shares.');
      const key = await signingKeys.rotate(ctx.actor);
      return { status: 201, body: key, location: `/v1/signing-keys/${encodeURIComponent(key.id)}`, etag: { id: key.id, token: `${key.createdAt}|${key.retiredAt ?? ''}` } };
    },
  });

  routes.add({
    method: 'GET', path: '/v1/permissions', scope: null, tag: 'meta',
    summary: 'The permission catalogue (modules → permissions, from the routes) and the presets',
    responses: { 200: permissionsSchema },
    handler: () => Promise.resolve({
      status: 200,
      body: { modules: Object.fromEntries(catalogue.modules), presets: config.permissionPresets },
    }),
  });

  routes.add({
    method: 'GET', path: '/v1/audit', scope: 'audit:read', tag: 'audit',
    summary: 'The audit log, newest first; filters: keyId or targetType/targetId, actor (token name or id), action (or `key.*`), since/until',
    query: auditQuerySchema, responses: { 200: page(auditEntrySchema) },
    handler: async (ctx) => ({ status: 200, body: await queryAudit(store, ctx.query, ctx.grant) }),
  });

  routes.add({
    method: 'GET', path: '/v1/nodes', scope: null, tag: 'meta',
    summary: 'Each keygate node: the store version it has applied and when it last reported',
    query: listQuerySchema, responses: { 200: page(nodeSchema) },
    handler: async (ctx) => ({ status: 200, body: pageOf(await store.listNodes(), ctx.query.limit, ctx.query.cursor) }),
  });
}
