import { auditQuerySchema, parseBody } from '../schemas.js';
import type { AdminDeps, AdminRouter } from './types.js';

export function metaRoutes(router: AdminRouter, { store, catalogue, config, signingKeys }: AdminDeps): void {
  // Public halves only: a signing key's private part never leaves the store and the gateways.
  router.add('GET', '/v1/signing-keys', async () => ({ status: 200, body: { items: await signingKeys.list() } }));
  router.add('POST', '/v1/signing-keys/rotate', async (ctx) => ({ status: 201, body: await signingKeys.rotate(ctx.actor) }));

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
