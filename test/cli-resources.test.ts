// The CLI over every admin resource, run in process (the same code as dist/cli.js, without a
// Node start per command) against a real `keygate serve`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET, createWorkspace, stopAndClean } from './support/admin.js';
import { cliIn, type CliResult } from './support/cli.js';
import { ADMIN_TOKEN, baseConfig, startKeygate, type Keygate } from './support/keygate.js';

const json = (r: CliResult): any => {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as unknown;
};

describe('the CLI over every admin resource', () => {
  let kg: Keygate;
  let ws: string;
  const cli = (...args: string[]) => cliIn({ KEYGATE_ADMIN_URL: kg.adminUrl, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN }, args);

  beforeAll(async () => {
    kg = await startKeygate({
      config: (d) => {
        const c = baseConfig(d) as Record<string, any>;
        // A gateway route at an admin path: the CLI pointed at the gateway then meets a 401, not a 404.
        c.routes.push({ name: 'lookalike', method: 'GET', path: '/v1/keys', upstream: 'events', permission: 'keys.read' });
        return c;
      },
    });
    ws = await createWorkspace(kg, 'cli-resources');
  });
  afterAll(async () => { await stopAndClean(kg); });

  it('workspaces: create, list and get, as JSON and as a table', async () => {
    const created = json(await cli('workspaces', 'create', '--name', 'from-the-cli'));
    expect(created).toMatchObject({ name: 'from-the-cli' });
    expect(json(await cli('workspaces', 'get', created.id))).toEqual(created);
    expect(json(await cli('workspaces', 'list')).items.map((w: any) => w.id)).toContain(created.id);
    const table = await cli('workspaces', 'list', '-o', 'table');
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.split('\n');
    expect(header).toMatch(/^ID\s+NAME\s+CREATED$/);
    expect(rows.find((r) => r.startsWith(created.id))).toMatch(new RegExp(`^${created.id}\\s+from-the-cli\\s+${created.createdAt}$`));
    const one = await cli('workspaces', 'get', created.id, '--output', 'table');
    expect(one.stdout).toMatch(/^FIELD\s+VALUE\n/);
    expect(one.stdout).toMatch(/\nname\s+from-the-cli\n/);
  });

  it('groups: create, list, update and delete', async () => {
    const g = json(await cli('groups', 'create', '--name', 'mobile', '--description', 'phones'));
    expect(g).toMatchObject({ name: 'mobile', description: 'phones' });
    expect(json(await cli('groups', 'update', g.id, '--description', 'phones and tablets'))).toMatchObject({ id: g.id, description: 'phones and tablets' });
    expect(json(await cli('groups', 'list')).items.find((x: any) => x.id === g.id)).toMatchObject({ description: 'phones and tablets' });
    const deleted = await cli('groups', 'delete', g.id);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe('deleted');
    expect((await kg.admin('GET', '/v1/groups')).body.items.some((x: any) => x.id === g.id)).toBe(false);
  });

  it('owners: create with permissions, get, disable (its keys are suspended) and list as a table', async () => {
    const o = json(await cli('owners', 'create', '--name', 'acme', '--permission', 'events.*', '--permission', 'profiles.read'));
    expect(o).toMatchObject({ name: 'acme', status: 'active', permissions: ['events.*', 'profiles.read'] });
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'owned', '--owner', o.id, '--permission', 'events.read'));
    expect(json(await cli('owners', 'update', o.id, '--disable'))).toMatchObject({ status: 'disabled' });
    expect(json(await cli('keys', 'get', key.id)).status).toBe('suspended');
    expect(json(await cli('owners', 'get', o.id)).status).toBe('disabled');
    expect(json(await cli('owners', 'update', o.id, '--status', 'active')).status).toBe('active');
    const table = await cli('owners', 'list', '-o', 'table');
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+STATUS\s+PERMISSIONS\s+CREATED$/);
    expect(table.stdout).toMatch(new RegExp(`${o.id}\\s+acme\\s+active\\s+events\\.\\*,profiles\\.read`));
  });

  it('--expires takes a day (midnight UTC), a full timestamp with its zone, or never', async () => {
    const day = json(await cli('keys', 'create', '--workspace', ws, '--name', 'by-day', '--expires', '2030-01-01'));
    expect(day.key.expiresAt).toBe('2030-01-01T00:00:00.000Z');
    const stamp = json(await cli('keys', 'update', day.key.id, '--expires', '2030-06-01T12:00:00+02:00'));
    expect(stamp.expiresAt).toBe('2030-06-01T10:00:00.000Z');
    expect(json(await cli('keys', 'update', day.key.id, '--expires', 'never')).expiresAt).toBeNull();
  });

  it('a date that does not exist is exit 2 naming the flag, and nothing is created', async () => {
    const before = (await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=500`)).body.items.length;
    const res = await cli('keys', 'create', '--workspace', ws, '--name', 'bad-day', '--expires', '2030-02-30');
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--expires: "2030-02-30" is not a date or time (no such day)');
    expect((await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=500`)).body.items.length).toBe(before);
  });

  it('keys create as a table shows the key and its secret once; list as a table; --all follows every page', async () => {
    const w = await createWorkspace(kg, 'cli-table');
    const created = await cli('keys', 'create', '--workspace', w, '--name', 'tabled', '-o', 'table');
    expect(created.code, created.stderr).toBe(0);
    const secret = /\nsecret: (\S+)\n/.exec(created.stdout)?.[1];
    expect(secret).toMatch(SECRET);
    expect(created.stdout).toMatch(/^FIELD\s+VALUE\n/);
    for (const name of ['t2', 't3']) json(await cli('keys', 'create', '--workspace', w, '--name', name));
    const table = await cli('keys', 'list', '--workspace', w, '-o', 'table', '--limit', '2');
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+WORKSPACE\s+TYPE\s+ENV\s+STATUS\s+PREFIX\s+EXPIRES$/);
    expect(table.stdout).toMatch(/\nmore: --cursor \S+$/);
    expect(table.stdout).not.toContain(secret!);
    const all = json(await cli('keys', 'list', '--workspace', w, '--limit', '1', '--all'));
    expect(all.items.map((k: any) => k.name)).toEqual(['tabled', 't2', 't3']);
    expect(all.nextCursor).toBeNull();
  });

  it('usage of a key: keygate usage <id> and keygate keys usage <id>', async () => {
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'counted'));
    const a = json(await cli('usage', key.id));
    expect(a).toMatchObject({ requests: { total: 0 }, lastUsedAt: null });
    expect(json(await cli('keys', 'usage', key.id))).toEqual(a);
  });

  it('audit: newest first, filtered by key, as JSON and as a table naming the actor', async () => {
    const { key } = json(await cli('keys', 'create', '--workspace', ws, '--name', 'audited'));
    json(await cli('keys', 'update', key.id, '--name', 'audited-2'));
    const items = json(await cli('audit', '--key', key.id)).items;
    expect(items.map((e: any) => e.action)).toEqual(['key.update', 'key.create']);
    const table = await cli('audit', 'list', '--key', key.id, '-o', 'table');
    expect(table.stdout.split('\n')[0]).toMatch(/^AT\s+ACTOR\s+ACTION\s+TARGET$/);
    expect(table.stdout.split('\n')[1]).toMatch(new RegExp(`\\s+ops\\s+key\\.update\\s+key ${key.id}$`));
  });

  it('nodes, signing keys (list, rotate) and the permission catalogue', async () => {
    expect(json(await cli('nodes')).items.length).toBeGreaterThan(0);
    const keys = json(await cli('signing-keys', 'list')).items;
    expect(keys.length).toBeGreaterThan(0);
    const rotated = json(await cli('signing-keys', 'rotate'));
    expect(rotated.id).toBeTypeOf('string');
    expect(json(await cli('signing-keys')).items.map((k: any) => k.id)).toContain(rotated.id);
    expect(JSON.stringify(json(await cli('signing-keys')))).not.toMatch(/"d"|privateJwk|sealed/);
    const perms = json(await cli('permissions'));
    expect(perms.modules.events).toContain('events.create');
    const table = await cli('permissions', '-o', 'table');
    expect(table.stdout).toMatch(/^MODULE\s+PERMISSIONS\nevents\s+events\.create,events\.read/);
    expect(table.stdout).toMatch(/\nPRESET\s+PERMISSIONS\n/);
  });

  it('an unknown id is exit 1 with the status, code and message', async () => {
    const res = await cli('workspaces', 'get', '00000000-0000-4000-8000-000000000000');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^keygate: error 404 WORKSPACE_NOT_FOUND: /);
  });

  it('the gateway port given instead of the admin port is exit 3 saying so (a 404 ROUTE_NOT_FOUND, or a 401 on a gateway route)', async () => {
    const env = { KEYGATE_ADMIN_URL: kg.gatewayUrl!, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN };
    for (const args of [['workspaces', 'list'], ['keys', 'list']]) {
      const res = await cliIn(env, args);
      expect(res.code, args.join(' ')).toBe(3);
      expect(res.stderr).toContain(`${kg.gatewayUrl} is keygate's gateway port, not its admin port`);
    }
  });

  it('a server that is not keygate is exit 3 saying it is not a keygate admin port', async () => {
    const server: Server = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<h1>Not Found</h1>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const res = await cliIn({ KEYGATE_ADMIN_URL: url, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN }, ['keys', 'list']);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain(`the server at ${url} answered GET /v1/keys with 404 text/html, not JSON: it is not a keygate admin port`);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('an admin URL that never answers is exit 3 after --timeout', async () => {
    const server: Server = createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const res = await cliIn({ KEYGATE_ADMIN_URL: url, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN }, ['nodes', '--timeout', '0.5']);
      expect(res.code).toBe(3);
      expect(res.stderr).toContain(`cannot reach the admin API at ${url}: no answer within 0.5 s`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('bad command lines are exit 2: an unknown output, resource or verb, a missing id, a bad URL', async () => {
    expect((await cli('workspaces', 'list', '-o', 'yaml')).stderr).toContain('--output: "yaml" is not json or table');
    for (const args of [['workspaces', 'list', '-o', 'yaml'], ['gizmos', 'list'], ['groups', 'explode'], ['groups', 'get'], ['keys', 'list', '--limit', '0']]) {
      expect((await cli(...args)).code, args.join(' ')).toBe(2);
    }
    const badUrl = await cliIn({ KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN }, ['nodes', '--admin-url', 'localhost:8081']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('--admin-url: "localhost:8081" is not an http:// or https:// URL');
  });
});
