import { auditQuerySchema, parseBody } from '../schemas.js';
import type { AdminDeps, AdminRouter } from './types.js';

export function metaRoutes(router: AdminRouter, { store, catalogue, config }: AdminDeps): void {
  router.add('GET', '/v1/permissions', async () => ({
    status: 200,
    body: {
      modules: Object.fromEntries(catalogue.modules),
      presets: config.permissionPresets,
    },
  }));

  router.add('GET', '/v1/audit', async (ctx) => {
    const q = parseBody(auditQuerySchema, ctx.query);
    const items = await store.listAudit({ limit: q.limit, ...(q.keyId !== undefined ? { targetId: q.keyId } : {}) });
    return { status: 200, body: { items } };
  });

  router.add('GET', '/v1/nodes', async () => ({ status: 200, body: { items: await store.listNodes() } }));
}
