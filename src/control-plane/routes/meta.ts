import { auditQuerySchema, parseBody } from '../schemas.js';
import type { KeyStore } from '../../store/types.js';
import type { AdminDeps, AdminRouter } from './types.js';

/**
 * Why this node should get no traffic now, or null when it is ready: it is starting or
 * stopping, its store is unavailable, or it cannot confirm that its view of the store is
 * within `maxStalenessMs` (a hung or unreachable Redis: the feed has not answered since).
 */
export function notReadyReason(store: KeyStore, maxStalenessMs: number, started: boolean, now = Date.now()): string | null {
  if (!started) return 'not started, or shutting down';
  if (!store.healthy()) return 'store unavailable';
  const confirmed = store.feedConfirmedAt();
  if (confirmed === 0) return 'store not connected';
  const age = now - confirmed;
  if (age > maxStalenessMs) return `store view stale: last confirmed ${(age / 1000).toFixed(1)} s ago (bound ${maxStalenessMs / 1000} s)`;
  return null;
}

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
