import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load.js';
import { PermissionCatalogue } from '../domain/permissions.js';
import { EmbeddedStore } from '../store/embedded/embedded-store.js';
import { KeyService } from './key-service.js';
import { leakReporter } from './leak-reports.js';
import { createKeySchema, parseBody } from './schemas.js';

const logger = pino({ level: 'silent' });
const roots: string[] = [];
const stores: EmbeddedStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function setup() {
  const loaded = parseConfigText(`
admin: { tokens: [{ name: ops, token: a-test-admin-token-of-enough-length }] }
secrets: { pepper: a-test-pepper-of-enough-length }
upstreams: { events: { url: "http://127.0.0.1:9" } }
routes: [{ name: e, method: GET, path: /e, upstream: events, permission: events.read }]
`, {});
  if (!loaded.ok) throw new Error(loaded.errors.join('; '));
  const root = mkdtempSync(join(tmpdir(), 'keygate-leaks-'));
  roots.push(root);
  const store = new EmbeddedStore({ path: join(root, 'data'), logger });
  await store.open();
  stores.push(store);
  await store.commit({ ops: [{ op: 'put', entity: { type: 'workspace', value: { id: 'ws', name: 'w', createdAt: new Date().toISOString() } } }], audit: [] });
  const keys = new KeyService({ store, config: loaded.config, catalogue: new PermissionCatalogue(['events.read']) });
  const create = async () => keys.create(parseBody(createKeySchema, { workspaceId: 'ws', name: 'k' }), { type: 'admin', name: 'ops' });
  return { store, keys, create };
}

describe('leakReporter', () => {
  it('labels keygate tokens, acts once on a token reported twice, and leaves other tokens out', async () => {
    const { store, keys, create } = await setup();
    const live = await create();
    const gone = await create();
    await keys.delete(gone.key.id, { type: 'admin', name: 'ops' });
    const report = leakReporter(keys, 'disable');
    const verdicts = await report([
      { token: live.secret, type: 't', url: 'https://github.com/a', source: 'content' },
      { token: 'AKIAIOSFODNN7EXAMPLE', type: 't', url: 'https://github.com/b', source: 'content' },
      { token: gone.secret, type: 't', url: 'https://github.com/c', source: 'commit' },
      { token: live.secret, type: 't', url: 'https://github.com/d', source: 'commit' },
    ]);
    expect(verdicts).toEqual([
      { token_raw: live.secret, token_type: 't', label: 'true_positive' },
      { token_raw: gone.secret, token_type: 't', label: 'false_positive' },
      { token_raw: live.secret, token_type: 't', label: 'true_positive' },
    ]);
    expect((await keys.get(live.key.id)).status).toBe('disabled');
    const audit = await store.listAudit({ targetId: live.key.id, limit: 10 });
    expect(audit.filter((a) => a.action === 'key.leak')).toHaveLength(1);
    expect(audit[0]!.detail).toEqual({ source: 'github:content', url: 'https://github.com/a', action: 'disable' });
  });

  it('with notify, records the report and leaves the key on', async () => {
    const { keys, create } = await setup();
    const k = await create();
    expect(await leakReporter(keys, 'notify')([{ token: k.secret, type: 't', url: '', source: '' }])).toEqual([{ token_raw: k.secret, token_type: 't', label: 'true_positive' }]);
    expect((await keys.get(k.key.id)).status).toBe('active');
  });
});
