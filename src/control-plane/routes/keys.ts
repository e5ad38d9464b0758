import { parseBody, createKeySchema, keyListQuerySchema, patchKeySchema, rotateKeySchema } from '../schemas.js';
import type { AdminDeps, AdminRouter } from './types.js';

export function keyRoutes(router: AdminRouter, { keys, store, limiter }: AdminDeps): void {
  router.add('POST', '/v1/keys', async (ctx) => {
    const input = parseBody(createKeySchema, await ctx.body());
    const { key, secret, salt } = await keys.create(input, ctx.actor);
    if (salt !== null) key.simpleAuth.salt = salt;
    return { status: 201, body: { key, secret } };
  });

  router.add('GET', '/v1/keys', async (ctx) => ({
    status: 200,
    body: await keys.list(parseBody(keyListQuerySchema, ctx.query)),
  }));

  router.add('GET', '/v1/keys/:id', async (ctx) => ({ status: 200, body: await keys.get(ctx.params.id!) }));

  router.add('PATCH', '/v1/keys/:id', async (ctx) => {
    const patch = parseBody(patchKeySchema, (await ctx.body()) ?? {});
    const { key, salt } = await keys.update(ctx.params.id!, patch, ctx.actor);
    if (salt !== null) key.simpleAuth.salt = salt;
    return { status: 200, body: key };
  });

  router.add('POST', '/v1/keys/:id/rotate', async (ctx) => {
    const { gracePeriodSeconds } = parseBody(rotateKeySchema, (await ctx.body()) ?? {});
    return { status: 200, body: await keys.rotate(ctx.params.id!, gracePeriodSeconds, ctx.actor) };
  });

  router.add('DELETE', '/v1/keys/:id', async (ctx) => {
    await keys.delete(ctx.params.id!, ctx.actor);
    return { status: 204 };
  });

  router.add('GET', '/v1/keys/:id/usage', async (ctx) => {
    const key = await keys.get(ctx.params.id!);
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
  });
}
