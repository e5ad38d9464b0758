import type { AdminGrant } from '../../domain/admin-scopes.js';
import { keySchema, keyWithSecretSchema, page, usageSchema } from '../api-schemas.js';
import { createKeySchema, keyListQuerySchema, patchKeySchema, rotateKeySchema } from '../schemas.js';
import type { AdminDeps, AdminRoutes } from './types.js';

const keyPath = (id: string): string => `/v1/keys/${encodeURIComponent(id)}`;

export function keyRoutes(routes: AdminRoutes, { keys, store, limiter }: AdminDeps): void {
  // Catalogue names, presets and references: checked with the schema's own problems, one answer for all.
  const alsoCheck = async (raw: unknown, grant: AdminGrant): Promise<string[]> => {
    if (typeof raw !== 'object' || raw === null) return [];
    const body = raw as Record<string, unknown>;
    const problems = keys.permissionProblems(body.permissions, body.preset);
    const ref = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
    const workspaceId = ref(body.workspaceId);
    if (workspaceId !== null) {
      await keys.checkReferences(
        { workspaceId, groupId: ref(body.groupId), ownerId: ref(body.ownerId), type: 'workspace', basicAuth: false, simpleAuth: { enabled: false, salt: null }, expiresAt: null },
        { workspaceId: true, groupId: true, ownerId: true }, problems, grant,
      );
    }
    return problems;
  };

  routes.add({
    method: 'POST', path: '/v1/keys', scope: 'keys:write', tag: 'keys',
    summary: 'Create a key; its secret is in this answer and nowhere else, ever',
    body: createKeySchema, alsoCheck, responses: { 201: keyWithSecretSchema },
    handler: async (ctx) => {
      const { key, secret, salt } = await keys.create(ctx.body, ctx.actor, ctx.grant);
      if (salt !== null) key.simpleAuth.salt = salt;
      return { status: 201, body: { key, secret }, location: keyPath(key.id), etag: { id: key.id, token: String(key.version) } };
    },
  });

  routes.add({
    method: 'GET', path: '/v1/keys', scope: 'keys:read', tag: 'keys',
    summary: 'List keys (q: a case-insensitive substring of name, description or prefix)',
    query: keyListQuerySchema, responses: { 200: page(keySchema) },
    handler: async (ctx) => ({ status: 200, body: await keys.list(ctx.query, ctx.grant) }),
  });

  routes.add({
    method: 'GET', path: '/v1/keys/:id', scope: 'keys:read', tag: 'keys',
    summary: 'Get a key, with its effective permissions',
    responses: { 200: keySchema }, errors: ['KEY_NOT_FOUND'],
    handler: async (ctx) => {
      const key = await keys.get(ctx.params.id!, ctx.grant);
      return { status: 200, body: key, etag: { id: key.id, token: String(key.version) } };
    },
  });

  routes.add({
    method: 'PATCH', path: '/v1/keys/:id', scope: 'keys:write', tag: 'keys',
    summary: 'Change a key (version + 1)', body: patchKeySchema, alsoCheck: async (raw) => {
      const body = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      return keys.permissionProblems(body.permissions, body.preset);
    },
    responses: { 200: keySchema }, errors: ['KEY_NOT_FOUND', 'PERMISSIONS_LOCKED', 'PRECONDITION_FAILED', 'CONFLICT'],
    handler: async (ctx) => {
      const { key, salt } = await keys.update(ctx.params.id!, ctx.body, ctx.actor, { grant: ctx.grant, ifMatch: (t) => ctx.ifMatch(ctx.params.id!, t) });
      if (salt !== null) key.simpleAuth.salt = salt;
      return { status: 200, body: key, etag: { id: key.id, token: String(key.version) } };
    },
  });

  routes.add({
    method: 'POST', path: '/v1/keys/:id/rotate', scope: 'keys:write', tag: 'keys',
    summary: 'Give a key a new secret; the old one works for the grace period',
    body: rotateKeySchema, responses: { 200: keyWithSecretSchema }, errors: ['KEY_NOT_FOUND', 'PRECONDITION_FAILED'],
    handler: async (ctx) => {
      const res = await keys.rotate(ctx.params.id!, ctx.body.gracePeriodSeconds, ctx.actor, { grant: ctx.grant, ifMatch: (t) => ctx.ifMatch(ctx.params.id!, t) });
      return { status: 200, body: res, etag: { id: res.key.id, token: String(res.key.version) } };
    },
  });

  routes.add({
    method: 'DELETE', path: '/v1/keys/:id', scope: 'keys:write', tag: 'keys',
    summary: 'Delete a key (irreversible)', responses: { 204: null }, errors: ['KEY_NOT_FOUND', 'PRECONDITION_FAILED'],
    handler: async (ctx) => {
      await keys.delete(ctx.params.id!, ctx.actor, { grant: ctx.grant, ifMatch: (t) => ctx.ifMatch(ctx.params.id!, t) });
      return { status: 204 };
    },
  });

  routes.add({
    method: 'GET', path: '/v1/keys/:id/usage', scope: 'keys:read', tag: 'keys',
    summary: "A key's request counts and what is left of its rate limit and quota",
    responses: { 200: usageSchema }, errors: ['KEY_NOT_FOUND'],
    handler: async (ctx) => {
      const key = await keys.get(ctx.params.id!, ctx.grant);
      const usage = await store.getUsage(key.id);
      const budgets = await limiter.peek(key.id, key.rateLimit, key.quota, Date.now());
      return {
        status: 200,
        body: {
          requests: { total: usage.total, byOutcome: usage.byOutcome },
          lastUsedAt: usage.lastUsedAt,
          rateLimit: budgets.rateLimit,
          quota: budgets.quota,
        },
      };
    },
  });
}
