// keygate export / import: a node's whole store moved to another, of the same kind or the
// other, through the real command, and every key still working with its old secret.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createKey, createWorkspace, runCli, sleep, stopAndClean } from './support/admin.js';
import { gatewayConfig, gw } from './support/gateway.js';
import { useUpstreamPair, type RecordingUpstream } from './support/upstream.js';
import { CLI, startKeygate, tempDir, type Keygate } from './support/keygate.js';
import { redisNodeConfig, uniquePrefix } from './support/redis-nodes.js';
import { requireRedis, startRedis, type RedisServer } from './support/redis-server.js';
import { bearer, mintToken, simpleAuthSignature } from './support/tokens.js';

const useRedis = requireRedis();

interface Fixture {
  secrets: Record<string, string>;
  ids: Record<string, string>;
  token: string;
  salt: string;
  keys: Record<string, any>;
  usage: Record<string, any>;
  activity: Record<string, any>;
  audit: any[];
  workspaces: any[];
  groups: any[];
  owners: any[];
  signingKeys: any[];
}

/** Fills a node with one of everything, uses its keys, and reads back what the admin API shows. */
async function populate(kg: Keygate): Promise<Fixture> {
  const ws = await createWorkspace(kg, 'moving');
  const grp = (await kg.admin('POST', '/v1/groups', { name: 'mobile' })).body.id as string;
  const own = (await kg.admin('POST', '/v1/owners', { name: 'acme', permissions: ['events.*', 'profiles.*'] })).body.id as string;
  const plain = await createKey(kg, { workspaceId: ws, name: 'plain', permissions: ['events.*'], groupId: grp, ownerId: own, ipAllowlist: ['127.0.0.0/8'] });
  const test = await createKey(kg, { workspaceId: ws, name: 'test-env', environment: 'test', permissions: ['files.read'] });
  const profile = await createKey(kg, { workspaceId: ws, name: 'profile', type: 'profile', permissions: ['profiles.*'], simpleAuth: { enabled: true } });
  const rotated = await createKey(kg, { workspaceId: ws, name: 'rotated', permissions: ['events.read'] });
  const rotation = await kg.admin('POST', `/v1/keys/${rotated.key.id}/rotate`, { gracePeriodSeconds: 3600 });
  expect(rotation.status).toBe(200);
  const disabled = await createKey(kg, { workspaceId: ws, name: 'disabled', permissions: ['events.read'] });
  expect((await kg.admin('PATCH', `/v1/keys/${disabled.key.id}`, { enabled: false })).status).toBe(200);
  const token = await mintToken(kg, plain.secret);
  for (let i = 0; i < 3; i++) expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': plain.secret } })).status).toBe(200);
  const ids = { plain: plain.key.id, test: test.key.id, profile: profile.key.id, rotated: rotated.key.id, disabled: disabled.key.id };
  // Usage and activity reach the store within a second (batched).
  await sleep(1_500);
  const shown = await snapshot(kg, ids);
  // The three requests and the token's minting, newest first.
  expect(shown.activity.plain.items.length).toBe(4);
  return { ...shown, ids, token, salt: profile.key.simpleAuth.salt as string,
    secrets: { plain: plain.secret, test: test.secret, profile: profile.secret, rotatedOld: rotated.secret, rotatedNew: rotation.body.secret, disabled: disabled.secret } };
}

/** What the admin API shows of a node's store. */
async function snapshot(kg: Keygate, ids: Record<string, string>) {
  const keys: Record<string, any> = {};
  const usage: Record<string, any> = {};
  const activity: Record<string, any> = {};
  for (const [name, id] of Object.entries(ids)) {
    keys[name] = (await kg.admin('GET', `/v1/keys/${id}`)).body;
    usage[name] = (await kg.admin('GET', `/v1/keys/${id}/usage`)).body;
    activity[name] = (await kg.admin('GET', `/v1/keys/${id}/activity`)).body;
  }
  const sorted = (items: any[]) => [...items].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  return {
    keys,
    usage,
    activity,
    audit: (await kg.admin('GET', '/v1/audit?limit=1000')).body.items as any[],
    workspaces: sorted((await kg.admin('GET', '/v1/workspaces')).body.items),
    groups: sorted((await kg.admin('GET', '/v1/groups')).body.items),
    owners: sorted((await kg.admin('GET', '/v1/owners')).body.items),
    signingKeys: sorted((await kg.admin('GET', '/v1/signing-keys')).body.items),
  };
}

/** Every key answers as before the move: the same secrets, the same refusals, the same token. */
async function expectKeysWork(kg: Keygate, f: Fixture, upstreams: { eventsTest: RecordingUpstream }): Promise<void> {
  const get = (secret: string, path = '/v1/events') => gw(kg, path, { headers: { 'x-api-key': secret } });
  expect((await get(f.secrets.plain!)).status).toBe(200);
  const before = upstreams.eventsTest.requests.length;
  expect((await get(f.secrets.test!, '/v1/files/a')).status).toBe(200);
  await upstreams.eventsTest.waitFor(before + 1, 5_000);
  expect((await get(f.secrets.rotatedOld!)).status).toBe(200);
  expect((await get(f.secrets.rotatedNew!)).status).toBe(200);
  const refused = await get(f.secrets.disabled!);
  expect(refused.status).toBe(403);
  expect(refused.body.error.code).toBe('KEY_DISABLED');
  // A token minted before the move verifies: the signing keys moved too.
  expect((await gw(kg, '/v1/events', { headers: bearer(f.token) })).status).toBe(200);
  // Simple authentication still signs with the key's old salt.
  const profileToken = await mintToken(kg, f.secrets.profile!, { identity: { customId: 'user-7' }, signature: simpleAuthSignature(f.salt, 'user-7') });
  expect((await gw(kg, '/v1/profiles/user-7', { headers: bearer(profileToken) })).status).toBe(200);
  // A wrong secret is still refused.
  expect((await get(f.secrets.plain!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')))).status).toBe(401);
}

function expectSameAdminView(after: Awaited<ReturnType<typeof snapshot>>, before: Fixture): void {
  expect(after.workspaces).toEqual(before.workspaces);
  expect(after.groups).toEqual(before.groups);
  expect(after.owners).toEqual(before.owners);
  expect(after.signingKeys).toEqual(before.signingKeys);
  expect(after.keys).toEqual(before.keys);
  expect(after.usage).toEqual(before.usage);
  expect(after.activity).toEqual(before.activity);
  expect(after.audit).toEqual(before.audit);
}

const writeYaml = (dir: string, name: string, config: Record<string, unknown>): string => {
  const file = join(dir, name);
  writeFileSync(file, stringify(config));
  return file;
};

describe.skipIf(!useRedis)('keygate export → keygate import, embedded store → Redis', () => {
  const upstreams = useUpstreamPair();
  const tmp = tempDir('keygate-transfer-e2e-');
  let redis: RedisServer;
  let source: Keygate | undefined;
  let target: Keygate | undefined;
  let fixture: Fixture;
  let redisConfig: string;
  const dump = join(tmp.dir, 'store.ndjson');

  beforeAll(async () => {
    redis = await startRedis();
    source = await startKeygate({ config: gatewayConfig(upstreams) });
    fixture = await populate(source);
  });

  afterAll(async () => {
    await stopAndClean(target);
    await stopAndClean(source);
    await redis?.cleanup();
    tmp.cleanup();
  });

  it('refuses to export an embedded store while its keygate runs, and says to stop it', async () => {
    const res = await runCli(['export', '--config', source!.configFile, '--file', dump]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/in use by process \d+.*stop keygate first/);
    expect(existsSync(dump)).toBe(false);
  });

  it('exports the stopped node\'s store to a private file', async () => {
    expect(await source!.stop('SIGTERM')).toBe(0);
    const res = await runCli(['export', '--config', source!.configFile, '--file', dump]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/exported .*5 key records/);
    expect(statSync(dump).mode & 0o777).toBe(0o600);
    const text = readFileSync(dump, 'utf8');
    for (const secret of Object.values(fixture.secrets)) expect(text).not.toContain(secret);
    expect(text).not.toContain('privateJwk"');
  });

  it('imports it into an empty Redis store, where every key works with its old secret and the admin API shows the same', async () => {
    const prefix = uniquePrefix('import');
    const config = redisNodeConfig({ ...upstreams, url: redis.url, keyPrefix: prefix });
    redisConfig = writeYaml(tmp.dir, 'redis.yaml', config(join(tmp.dir, 'unused')));
    const res = await runCli(['import', '--config', redisConfig, '--file', dump]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ store: 'redis', imported: { workspace: 1, group: 1, owner: 1, key: 5, 'signing-key': 1 } });
    target = await startKeygate({ config });
    // Read before the keys are used again (which moves their usage and lastUsedAt).
    expectSameAdminView(await snapshot(target, fixture.ids), fixture);
    await expectKeysWork(target, fixture, upstreams);
  });

  it('refuses to import into a store that is not empty (exit 5), writing nothing', async () => {
    const before = (await target!.admin('GET', '/v1/audit?limit=1000')).body.items.length;
    const res = await runCli(['import', '--config', redisConfig, '--file', dump]);
    expect(res.code).toBe(5);
    expect(res.stderr).toMatch(/import refused, nothing written: the target store is not empty \(store version \d+: 1 workspace, 5 keys/);
    expect((await target!.admin('GET', '/v1/audit?limit=1000')).body.items.length).toBe(before);
  });

  it('refuses a target with another pepper (exit 5): no key would authenticate', async () => {
    const config = redisNodeConfig({ ...upstreams, url: redis.url, keyPrefix: uniquePrefix('pepper') })(join(tmp.dir, 'unused')) as Record<string, any>;
    config.secrets = { pepper: 'another-pepper-0123456789abcdef' };
    const res = await runCli(['import', '--config', writeYaml(tmp.dir, 'other-pepper.yaml', config), '--file', dump]);
    expect(res.code).toBe(5);
    expect(res.stderr).toContain('another secrets.pepper');
  });

  it('import --check checks a backup against a config without opening its store', async () => {
    const ok = await runCli(['import', '--config', redisConfig, '--check', '--file', dump]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, records: { key: 5, workspace: 1 } });
    const config = redisNodeConfig({ ...upstreams, url: 'redis://127.0.0.1:1', keyPrefix: 'unreachable:' })(join(tmp.dir, 'unused')) as Record<string, any>;
    config.secrets = { pepper: 'another-pepper-0123456789abcdef' };
    const refused = await runCli(['import', '--config', writeYaml(tmp.dir, 'check-other-pepper.yaml', config), '--check', '--file', dump]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain('the stream would be refused: line 1: the export was written under another secrets.pepper');
  });

  it('refuses a damaged or cut stream (exit 5)', async () => {
    const lines = readFileSync(dump, 'utf8').trimEnd().split('\n');
    const cut = join(tmp.dir, 'cut.ndjson');
    writeFileSync(cut, `${lines.slice(0, -1).join('\n')}\n`);
    const config = redisNodeConfig({ ...upstreams, url: redis.url, keyPrefix: uniquePrefix('cut') })(join(tmp.dir, 'unused'));
    const res = await runCli(['import', '--config', writeYaml(tmp.dir, 'cut.yaml', config), '--file', cut]);
    expect(res.code).toBe(5);
    expect(res.stderr).toContain('without its trailer');
  });
});

describe.skipIf(!useRedis)('keygate export | keygate import, Redis → embedded store, through a pipe', () => {
  const upstreams = useUpstreamPair();
  const tmp = tempDir('keygate-transfer-pipe-');
  let redis: RedisServer;
  let target: Keygate | undefined;
  let source: Keygate | undefined;

  beforeAll(async () => { redis = await startRedis(); });
  afterAll(async () => {
    await stopAndClean(target);
    await stopAndClean(source);
    await redis?.cleanup();
    tmp.cleanup();
  });

  it('moves a running Redis node\'s store into a fresh data directory, keys working with their old secrets', async () => {
    const redisNode = redisNodeConfig({ ...upstreams, url: redis.url, keyPrefix: uniquePrefix('pipe') });
    source = await startKeygate({ config: redisNode });
    const fixture = await populate(source);
    const from = writeYaml(tmp.dir, 'from.yaml', redisNode(join(tmp.dir, 'unused')));
    const dataDir = join(tmp.dir, 'data');
    const embedded = gatewayConfig(upstreams);
    const to = writeYaml(tmp.dir, 'to.yaml', embedded(dataDir));
    // A Redis store is exported while its node runs.
    const res = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile('sh', ['-c', '"$0" "$1" export --config "$2" | "$0" "$1" import --config "$3"', process.execPath, CLI, from, to], (err, _stdout, stderr) => {
        resolve({ code: err === null ? 0 : Number((err as { code?: unknown }).code), stderr });
      });
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/imported .*5 key records.* into the embedded store/);
    await stopAndClean(source);
    source = undefined;
    target = await startKeygate({ dataDir, config: embedded });
    // Read before the keys are used again (which moves their usage and lastUsedAt).
    expectSameAdminView(await snapshot(target, fixture.ids), fixture);
    await expectKeysWork(target, fixture, upstreams);
  });
});

describe('keygate export of a store that is not there', () => {
  const tmp = tempDir('keygate-transfer-missing-');
  afterAll(() => tmp.cleanup());

  it('exits 1 naming the path, and creates no directory there (a mistyped store.path is no empty backup)', async () => {
    const missing = join(tmp.dir, 'no-such-data');
    const config = writeYaml(tmp.dir, 'missing.yaml', gatewayConfig({ events: { url: 'http://127.0.0.1:1' }, eventsTest: { url: 'http://127.0.0.1:1' } } as never)(missing));
    const res = await runCli(['export', '--config', config, '--file', join(tmp.dir, 'out.ndjson')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`there is no store at ${missing}`);
    expect(existsSync(missing)).toBe(false);
    expect(existsSync(join(tmp.dir, 'out.ndjson'))).toBe(false);
  });
});
