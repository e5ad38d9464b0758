import { activitySchema, leakResultSchema, page } from '../api-schemas.js';
import { leakReportSchema, listQuerySchema } from '../schemas.js';
import type { AdminDeps, AdminRoutes } from './types.js';

/**
 * Key hygiene: what each key (and each owner's keys) did, and leaked secrets reported by an
 * admin. Scopes: the activity routes read keys / owners; a leak report writes keys.
 */
export function hygieneRoutes(routes: AdminRoutes, { keys, activity, config }: AdminDeps): void {
  routes.add({
    method: 'GET', path: '/v1/keys/:id/activity', scope: 'keys:read', tag: 'keys',
    summary: "A key's requests, newest first (as many as keys.activityPerKey)",
    query: listQuerySchema, responses: { 200: page(activitySchema) }, errors: ['KEY_NOT_FOUND'],
    handler: async (ctx) => ({ status: 200, body: await activity.forKey(ctx.params.id!, ctx.query, ctx.grant) }),
  });

  routes.add({
    method: 'GET', path: '/v1/owners/:id/activity', scope: 'owners:read', tag: 'owners',
    summary: "The requests of every key of an owner, merged, newest first",
    query: listQuerySchema, responses: { 200: page(activitySchema) }, errors: ['OWNER_NOT_FOUND'],
    handler: async (ctx) => ({ status: 200, body: await activity.forOwner(ctx.params.id!, ctx.query, ctx.grant) }),
  });

  routes.add({
    method: 'POST', path: '/v1/leaks', scope: 'keys:write', tag: 'keys',
    summary: 'Report a leaked secret: its key is disabled (leaks.action: disable) or the report only recorded (notify)',
    body: leakReportSchema, responses: { 200: leakResultSchema }, errors: ['KEY_NOT_FOUND'],
    handler: async (ctx) => {
      const { secret, source, url } = ctx.body;
      const result = await keys.reportLeak(secret, { source, url }, config.leaks.action, ctx.actor, { grant: ctx.grant, ifMatch: () => undefined });
      return { status: 200, body: { keyId: result.keyId, action: result.action } };
    },
  });
}
