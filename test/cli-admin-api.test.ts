// The CLI over the admin API's second half (admin tokens and scopes, workspace and owner
// delete, group get, audit filters, pagination on every list, If-Match). These run against
// a server that has them: vitest.config.ts leaves `*.after-admin-api.test.ts` out until then.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, stopAndClean } from './support/admin.js';
import { cliIn, type CliResult } from './support/cli.js';
import { ADMIN_TOKEN, startKeygate, type Keygate } from './support/keygate.js';

const json = (r: CliResult): any => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as unknown;
};

describe('the CLI over admin tokens, deletes, audit filters, pagination and If-Match', () => {
  let kg: Keygate;
  const as = (token: string, ...args: string[]) => cliIn({ KEYGATE_ADMIN_URL: kg.adminUrl, KEYGATE_ADMIN_TOKEN: token }, args);
  const cli = (...args: string[]) => as(ADMIN_TOKEN, ...args);

  beforeAll(async () => { kg = await startKeygate(); });
  afterAll(async () => { await stopAndClean(kg); });

  it('workspaces update renames; delete is refused (exit 1, 409) while the workspace holds keys', async () => {
    const w = json(await cli('workspaces', 'create', '--name', 'before'));
    expect(json(await cli('workspaces', 'update', w.id, '--name', 'after'))).toMatchObject({ id: w.id, name: 'after' });
    const { key } = json(await cli('keys', 'create', '--workspace', w.id, '--name', 'holds-it'));
    const refused = await cli('workspaces', 'delete', w.id);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error 409 /);
    expect(json(await cli('workspaces', 'get', w.id)).name).toBe('after');
    expect((await cli('keys', 'delete', key.id)).code).toBe(0);
    expect((await cli('workspaces', 'delete', w.id)).stdout).toBe('deleted');
    expect((await cli('workspaces', 'get', w.id)).code).toBe(1);
  });

  it('owners delete is refused (409) while a key references the owner, then deletes', async () => {
    const ws = await createWorkspace(kg, 'owned');
    const o = json(await cli('owners', 'create', '--name', 'temp', '--permission', '*'));
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'k', '--owner', o.id));
    const refused = await cli('owners', 'delete', o.id);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/error 409 /);
    json(await cli('keys', 'update', key.id, '--data', '{"ownerId":null}'));
    expect((await cli('owners', 'delete', o.id)).stdout).toBe('deleted');
  });

  it('keys list --rotation-due lists only the keys due for rotation (a fresh key is not)', async () => {
    const ws = await createWorkspace(kg, 'rotation');
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'fresh'));
    expect(json(await cli('keys', 'list', '--workspace', ws)).items.map((k: any) => k.id)).toEqual([key.id]);
    expect(json(await cli('keys', 'list', '--workspace', ws, '--rotation-due')).items).toEqual([]);
  });

  it('groups get <id>', async () => {
    const g = json(await cli('groups', 'create', '--name', 'fetched'));
    expect(json(await cli('groups', 'get', g.id))).toMatchObject({ id: g.id, name: 'fetched' });
  });

  it('admin-tokens: create shows the secret once; the token works within its scopes (403 is exit 4 naming the call); delete revokes it', async () => {
    const created = json(await cli('admin-tokens', 'create', '--name', 'ci-reader', '--scope', 'keys:read'));
    expect(created.secret).toBeTypeOf('string');
    expect(created.token).toMatchObject({ name: 'ci-reader', scopes: ['keys:read'] });
    expect(JSON.stringify(json(await cli('admin-tokens', 'list')))).not.toContain(created.secret);
    expect(json(await cli('admin-tokens', 'get', created.token.id))).toMatchObject({ id: created.token.id, name: 'ci-reader' });
    const table = await cli('admin-tokens', 'list', '-o', 'table');
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+SCOPES\s+WORKSPACES\s+CREATED$/);

    expect((await as(created.secret, 'keys', 'list')).code).toBe(0);
    const forbidden = await as(created.secret, 'workspaces', 'create', '--name', 'nope');
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toContain('may not POST /v1/workspaces');
    expect(forbidden.stderr).toContain('403');

    expect((await cli('admin-tokens', 'delete', created.token.id)).stdout).toBe('deleted');
    const revoked = await as(created.secret, 'keys', 'list');
    expect(revoked.code).toBe(4);
    expect(revoked.stderr).toContain('refused the admin token given by KEYGATE_ADMIN_TOKEN');
  });

  it('a token confined to one workspace gets 404 (exit 1) for another workspace', async () => {
    const a = await createWorkspace(kg, 'a');
    const b = await createWorkspace(kg, 'b');
    const { secret } = json(await cli('admin-tokens', 'create', '--name', 'only-a', '--scope', '*', '--workspace', a));
    expect(json(await as(secret, 'workspaces', 'get', a)).id).toBe(a);
    const other = await as(secret, 'workspaces', 'get', b);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/error 404 /);
    expect(json(await as(secret, 'workspaces', 'list')).items.map((w: any) => w.id)).toEqual([a]);
  });

  it('every list pages with --limit and --cursor, and --all follows them to the end', async () => {
    for (const name of ['p1', 'p2', 'p3']) {
      json(await cli('workspaces', 'create', '--name', name));
      json(await cli('groups', 'create', '--name', name));
      json(await cli('owners', 'create', '--name', name, '--permission', '*'));
      json(await cli('admin-tokens', 'create', '--name', `pager-${name}`, '--scope', 'keys:read'));
    }
    for (const resource of ['workspaces', 'groups', 'owners', 'admin-tokens', 'audit']) {
      const first = json(await cli(resource, 'list', '--limit', '1'));
      expect(first.items, resource).toHaveLength(1);
      expect(typeof first.nextCursor, resource).toBe('string');
      const second = json(await cli(resource, 'list', '--limit', '1', '--cursor', first.nextCursor));
      expect(second.items[0], resource).not.toEqual(first.items[0]);
      const all = json(await cli(resource, 'list', '--limit', '1', '--all'));
      expect(all.nextCursor, resource).toBeNull();
      expect(all.items.length, resource).toBeGreaterThanOrEqual(2);
    }
  });

  it('audit filters: --actor, --action, --target-type, --target-id, --since and --until (dates or durations)', async () => {
    const ws = await createWorkspace(kg, 'audit-filters');
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'filtered'));
    json(await cli('keys', 'update', key.id, '--name', 'filtered-2'));
    const items = json(await cli('audit', '--actor', 'ops', '--action', 'key.update', '--target-type', 'key', '--target-id', key.id, '--since', '2020-01-01', '--until', '1d')).items;
    expect(items.map((e: any) => `${e.action} ${e.target.id}`)).toEqual([`key.update ${key.id}`]);
    expect(json(await cli('audit', '--target-id', key.id, '--until', '2020-01-01')).items).toEqual([]);
  });

  it('--if-match: a stale ETag is exit 1 with 412 and changes nothing; the current one applies', async () => {
    const ws = await createWorkspace(kg, 'etag');
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'etagged'));
    const stale = await cli('keys', 'update', key.id, '--name', 'lost', '--if-match', '"stale"');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/error 412 /);
    const shown = await cli('keys', 'get', key.id, '-o', 'table');
    const etag = /\netag: (\S+)$/.exec(shown.stdout)?.[1];
    expect(etag).toBe((await kg.admin('GET', `/v1/keys/${key.id}`)).headers.get('etag'));
    expect(json(await cli('keys', 'update', key.id, '--name', 'kept', '--if-match', etag!)).name).toBe('kept');
    const staleDelete = await cli('keys', 'delete', key.id, '--if-match', etag!);
    expect(staleDelete.code).toBe(1);
    expect(staleDelete.stderr).toMatch(/error 412 /);
  });
});
