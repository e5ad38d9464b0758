import { activityQuerySchema, leakReportSchema, parseBody } from '../schemas.js';
import type { AdminDeps, AdminRouter } from './types.js';

/**
 * Key hygiene: what each key (and each owner's keys) did, and leaked secrets reported by an
 * admin. Scopes: the activity routes read keys / owners; a leak report writes keys.
 */
export function hygieneRoutes(router: AdminRouter, { keys, activity, config }: AdminDeps): void {
  router.add('GET', '/v1/keys/:id/activity', async (ctx) => ({
    status: 200,
    body: await activity.forKey(ctx.params.id!, parseBody(activityQuerySchema, ctx.query)),
  }));

  router.add('GET', '/v1/owners/:id/activity', async (ctx) => ({
    status: 200,
    body: await activity.forOwner(ctx.params.id!, parseBody(activityQuerySchema, ctx.query)),
  }));

  router.add('POST', '/v1/leaks', async (ctx) => {
    const { secret, source, url } = parseBody(leakReportSchema, await ctx.body());
    const result = await keys.reportLeak(secret, { source, url }, config.leaks.action, ctx.actor);
    return { status: 200, body: { keyId: result.keyId, action: result.action } };
  });
}
