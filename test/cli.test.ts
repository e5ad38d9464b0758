import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SECRET, SECRET_TEST, createWorkspace, runCli, stopAndClean } from './support/admin.js';
import { ADMIN_TOKEN, baseConfig, startKeygate, tempDir, type Keygate } from './support/keygate.js';

const SHIPPED_CONFIG = resolve(import.meta.dirname, '../config/gateway.yaml');
const CI_TOKEN = 'ci-token-abcdefghijklmnop';

describe('keygate check-config', () => {
  const tmp = tempDir('keygate-cli-config-');
  afterAll(() => tmp.cleanup());

  const writeYaml = (name: string, config: unknown): string => {
    const file = join(tmp.dir, name);
    writeFileSync(file, typeof config === 'string' ? config : stringify(config));
    return file;
  };

  it('prints OK and exits 0 for config/gateway.yaml', async () => {
    const res = await runCli(['check-config', SHIPPED_CONFIG], { NODE_ENV: 'development' });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe('OK');
  });

  it('exits 1 and prints routes[0].upstream: unknown upstream "evnts" for a route naming an unknown upstream', async () => {
    const config = baseConfig(join(tmp.dir, 'data'));
    (config.routes as Array<Record<string, unknown>>)[0]!.upstream = 'evnts';
    const res = await runCli(['check-config', writeYaml('bad-upstream.yaml', config)]);
    expect(res.code).toBe(1);
    expect(res.stdout).not.toContain('OK');
    expect(res.stderr).toContain('routes[0].upstream: unknown upstream "evnts"');
  });

  const invalid: Array<[string, (c: Record<string, any>) => void, string]> = [
    ['an unknown key', (c) => { c.gateway.bogus = 1; }, 'gateway.bogus'],
    ['a bad CIDR in trustedProxies', (c) => { c.gateway.trustedProxies = ['10.0.0.0/8', '010.0.0.1']; }, 'gateway.trustedProxies[1]'],
    ['a duplicate route', (c) => { c.routes.push({ ...c.routes[0], name: 'dup' }); }, 'routes[4]'],
    ['no admin token', (c) => { c.admin.tokens = []; }, 'admin.tokens'],
    ['an unknown upstream in upstreamTest', (c) => { c.routes[0].upstreamTest = 'nope'; }, 'routes[0].upstreamTest'],
    ['a preset naming an unknown permission (regression: it passed)', (c) => { c.permissionPresets = { 'read-only': ['events.raed'] }; }, 'permissionPresets.read-only[0]: unknown permission "events.raed"'],
  ];
  for (const [what, mutate, path] of invalid) {
    it(`exits 1 naming ${path} for ${what}`, async () => {
      const config = baseConfig(join(tmp.dir, 'data')) as Record<string, any>;
      mutate(config);
      const res = await runCli(['check-config', writeYaml(`bad-${path.replace(/\W/g, '_')}.yaml`, config)]);
      expect(res.code).toBe(1);
      expect(res.stdout).not.toContain('OK');
      expect(res.stderr).toContain(path);
    });
  }

  it('interpolates ${ENV} and ${ENV:-default}: a token from the environment passes, a missing one fails naming the field', async () => {
    const text = [
      'admin:',
      '  tokens:',
      '    - { name: ops, token: "${KG_CLI_TEST_TOKEN}" }',
      'secrets:',
      '  pepper: "${KG_CLI_TEST_PEPPER:-a-default-pepper-0123456789}"',
      'store: { driver: embedded, path: ./data }',
    ].join('\n');
    const file = writeYaml('env.yaml', text);
    const ok = await runCli(['check-config', file], { KG_CLI_TEST_TOKEN: 'from-the-environment-0123' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('OK');
    const missing = await runCli(['check-config', file], { KG_CLI_TEST_TOKEN: undefined });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('admin.tokens[0].token');
  });

  it('exits non-zero for a file that does not exist', async () => {
    const res = await runCli(['check-config', join(tmp.dir, 'missing.yaml')]);
    expect(res.code).not.toBe(0);
    expect(res.stdout).not.toContain('OK');
  });
});

describe('keygate keys', () => {
  let kg: Keygate;
  let ws: string;
  let dataDir: string;
  const cleanupData = (): void => rmSync(dataDir, { recursive: true, force: true });

  beforeAll(async () => {
    const tmp = tempDir('keygate-cli-data-');
    dataDir = tmp.dir;
    kg = await startKeygate({
      dataDir,
      config: (d) => {
        const c = baseConfig(d) as Record<string, any>;
        c.admin.tokens.push({ name: 'ci', token: CI_TOKEN });
        return c;
      },
    });
    ws = await createWorkspace(kg, 'cli');
  });

  afterAll(async () => {
    await stopAndClean(kg);
    cleanupData();
  });

  const keys = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(['keys', ...args, '--admin-url', kg.adminUrl, '--token', ADMIN_TOKEN], env);
  const parse = (stdout: string): any => JSON.parse(stdout) as unknown;

  it('create, list, get, update, rotate and delete work end to end', async () => {
    const created = await keys(['create', '--workspace', ws, '--name', 'cli-key', '--description', 'made by the CLI',
      '--permission', 'events.create', '--permission', 'events.read', '--ip', '10.0.0.0/8']);
    expect(created.code, created.stderr).toBe(0);
    const { key, secret } = parse(created.stdout);
    expect(secret).toMatch(SECRET);
    expect(key).toMatchObject({ workspaceId: ws, name: 'cli-key', description: 'made by the CLI', permissions: ['events.create', 'events.read'], ipAllowlist: ['10.0.0.0/8'], version: 1, status: 'active' });
    // The server agrees.
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).body.name).toBe('cli-key');

    const listed = await keys(['list', '--workspace', ws, '--q', 'CLI-K']);
    expect(listed.code, listed.stderr).toBe(0);
    const list = parse(listed.stdout);
    expect(list.items.map((k: any) => k.id)).toEqual([key.id]);
    expect(list.nextCursor).toBeNull();
    expect(listed.stdout).not.toContain(secret);

    const got = await keys(['get', key.id]);
    expect(got.code, got.stderr).toBe(0);
    expect(parse(got.stdout)).toEqual(key);
    expect(got.stdout).not.toContain(secret);

    const updated = await keys(['update', key.id, '--name', 'cli-key-2', '--disable', '--data', '{"rateLimit":{"limit":10,"windowSeconds":1}}']);
    expect(updated.code, updated.stderr).toBe(0);
    expect(parse(updated.stdout)).toMatchObject({ id: key.id, name: 'cli-key-2', status: 'disabled', version: 2, rateLimit: { limit: 10, windowSeconds: 1 } });
    const enabled = await keys(['update', key.id, '--enable']);
    expect(parse(enabled.stdout)).toMatchObject({ status: 'active', version: 3 });

    const rotated = await keys(['rotate', key.id, '--grace', '60']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const r = parse(rotated.stdout);
    expect(r.secret).toMatch(SECRET);
    expect(r.secret).not.toBe(secret);
    expect(r.key.version).toBe(4);

    const deleted = await keys(['delete', key.id]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.trim()).toBe('deleted');
    expect((await kg.admin('GET', `/v1/keys/${key.id}`)).status).toBe(404);

    const again = await keys(['get', key.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('KEY_NOT_FOUND');
    const deleteAgain = await keys(['delete', key.id]);
    expect(deleteAgain.code).toBe(1);
    expect(deleteAgain.stderr).toContain('404');
  });

  it('create accepts --type, --env, --preset and --expires never', async () => {
    const res = await keys(['create', '--workspace', ws, '--name', 'cli-profile', '--type', 'profile', '--env', 'test', '--preset', 'read-only', '--expires', 'never']);
    expect(res.code, res.stderr).toBe(0);
    const { key, secret } = parse(res.stdout);
    expect(secret).toMatch(SECRET_TEST);
    expect(key).toMatchObject({ type: 'profile', environment: 'test', permissions: ['*.read'], expiresAt: null });
  });

  it('list pages with --limit and --cursor', async () => {
    const w = await createWorkspace(kg, 'cli-paging');
    for (const name of ['p1', 'p2', 'p3']) expect((await kg.admin('POST', '/v1/keys', { workspaceId: w, name })).status).toBe(201);
    const first = parse((await keys(['list', '--workspace', w, '--limit', '2'])).stdout);
    expect(first.items.map((k: any) => k.name)).toEqual(['p1', 'p2']);
    expect(typeof first.nextCursor).toBe('string');
    const second = parse((await keys(['list', '--workspace', w, '--limit', '2', '--cursor', first.nextCursor])).stdout);
    expect(second.items.map((k: any) => k.name)).toEqual(['p3']);
    expect(second.nextCursor).toBeNull();
  });

  it('reads the token from KEYGATE_ADMIN_TOKEN when --token is not given', async () => {
    const res = await runCli(['keys', 'create', '--admin-url', kg.adminUrl, '--workspace', ws, '--name', 'env-token'], { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(res.code, res.stderr).toBe(0);
    const { key } = parse(res.stdout);
    expect(key.name).toBe('env-token');
    const list = await runCli(['keys', 'list', '--admin-url', kg.adminUrl, '--workspace', ws, '--q', 'env-token'], { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(list.code, list.stderr).toBe(0);
    expect(parse(list.stdout).items.map((k: any) => k.id)).toEqual([key.id]);
  });

  it('reads the admin URL from KEYGATE_ADMIN_URL when --admin-url is not given', async () => {
    const res = await runCli(['keys', 'list', '--workspace', ws, '--limit', '1'], { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN, KEYGATE_ADMIN_URL: kg.adminUrl });
    expect(res.code, res.stderr).toBe(0);
    expect(parse(res.stdout).items).toHaveLength(1);
  });

  it('--token wins over KEYGATE_ADMIN_TOKEN', async () => {
    const res = await runCli(['keys', 'list', '--admin-url', kg.adminUrl, '--token', 'wrong-token-0123456789'], { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(res.code).toBe(4);
    expect(res.stderr).toContain('refused the admin token given by --token');
  });

  it('the audit log names the admin token the CLI used', async () => {
    const res = await runCli(['keys', 'create', '--admin-url', kg.adminUrl, '--token', CI_TOKEN, '--workspace', ws, '--name', 'by-ci']);
    expect(res.code, res.stderr).toBe(0);
    const { key } = parse(res.stdout);
    const audit = await kg.admin('GET', `/v1/audit?keyId=${key.id}`);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0].actor.name).toBe('ci');
    expect(audit.body.items[0].action).toBe('key.create');
  });

  it('without any token it exits 4, says no token was given and how to give one, and creates nothing', async () => {
    const before = (await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=500`)).body.items.length;
    const res = await runCli(['keys', 'create', '--admin-url', kg.adminUrl, '--workspace', ws, '--name', 'no-token']);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain('keygate: no admin token: pass --token <token> or set KEYGATE_ADMIN_TOKEN');
    expect((await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=500`)).body.items.length).toBe(before);
  });

  it('a wrong token exits 4, saying the admin API refused the token it was given (not that none was given)', async () => {
    const res = await runCli(['keys', 'list', '--admin-url', kg.adminUrl, '--token', 'wrong-token-0123456789']);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain(`the admin API at ${kg.adminUrl} refused the admin token given by --token`);
    expect(res.stderr).toContain('401 UNAUTHENTICATED');
    expect(res.stderr).not.toContain('wrong-token-0123456789');
    const fromEnv = await runCli(['keys', 'list', '--admin-url', kg.adminUrl], { KEYGATE_ADMIN_TOKEN: 'wrong-token-0123456789' });
    expect(fromEnv.code).toBe(4);
    expect(fromEnv.stderr).toContain('refused the admin token given by KEYGATE_ADMIN_TOKEN');
  });

  it('bad input exits 1 and passes on the message naming the field', async () => {
    const res = await keys(['create', '--workspace', ws, '--name', 'bad-ip', '--ip', '10.1']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('BAD_REQUEST');
    expect(res.stderr).toContain('ipAllowlist[0]');
    const perm = await keys(['update', 'key_missing000', '--permission', 'nope.nope']);
    expect(perm.code).toBe(1);
  });

  it('an unreachable admin URL exits 3 naming the URL and the cause', async () => {
    const res = await runCli(['keys', 'list', '--admin-url', 'http://127.0.0.1:9', '--token', ADMIN_TOKEN]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('cannot reach the admin API at http://127.0.0.1:9: connection refused');
    expect(res.stderr).toContain('ECONNREFUSED');
    expect(res.stderr).not.toContain('fetch failed');
  });

  it('an unknown keys command or flag exits 2', async () => {
    expect((await keys(['explode'])).code).toBe(2);
    expect((await keys(['list', '--bogus-flag', 'x'])).code).toBe(2);
  });
});

describe('keygate --version and help', () => {
  it('--version prints the version of its package, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as { version: string };
    const res = await runCli(['--version']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${version}\n`);
  });

  it('help lists every command and the exit codes; no command at all is exit 2', async () => {
    const res = await runCli(['help']);
    expect(res.code).toBe(0);
    for (const command of ['serve', 'check-config', 'export', 'import', 'workspaces', 'groups', 'owners', 'keys', 'usage', 'audit', 'nodes', 'signing-keys', 'admin-tokens', 'permissions', '--version']) {
      expect(res.stdout).toContain(`keygate ${command}`);
    }
    expect(res.stdout).toContain('exit codes');
    expect((await runCli([])).code).toBe(2);
  });
});
