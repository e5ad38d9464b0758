// Every resource of the admin API as `keygate <resource> <verb>`: the flags each verb takes,
// the call it makes and the columns of its table.
import { parseWhen } from './dates.js';
import { UsageError } from './exit-codes.js';
import {
  PAGE_ARGS, PAGE_FLAGS, bool, conditional, dataOf, list, listPages, show, str, whole,
  type Flags, type Resource, type Values, type Verb, type VerbContext,
} from './command.js';
import { col, renderList, renderObject, type Column } from './output.js';

const s = { type: 'string' } as const;
const many = { type: 'string', multiple: true } as const;
const flag = { type: 'boolean' } as const;
const DATA: Flags = { data: s };
const WRITE: Flags = { data: s, 'if-match': s };

const time = (field: string) => (item: Record<string, unknown>): unknown => item[field] ?? null;

const WORKSPACE_COLUMNS: Column[] = [col('ID', 'id'), col('NAME', 'name'), col('CREATED', 'createdAt')];
const GROUP_COLUMNS: Column[] = [col('ID', 'id'), col('NAME', 'name'), col('DESCRIPTION', 'description'), col('CREATED', 'createdAt')];
const OWNER_COLUMNS: Column[] = [col('ID', 'id'), col('NAME', 'name'), col('STATUS', 'status'), col('PERMISSIONS', 'permissions'), col('CREATED', 'createdAt')];
const KEY_COLUMNS: Column[] = [
  col('ID', 'id'), col('NAME', 'name'), col('WORKSPACE', 'workspaceId'), col('TYPE', 'type'), col('ENV', 'environment'),
  col('STATUS', 'status'), col('PREFIX', 'prefix'), ['EXPIRES', time('expiresAt')],
];
const AUDIT_COLUMNS: Column[] = [
  col('AT', 'at'), ['ACTOR', (e) => (e.actor as { name?: unknown } | null)?.name], col('ACTION', 'action'),
  ['TARGET', (e) => { const t = e.target as { type?: unknown; id?: unknown } | null; return t ? `${String(t.type)} ${String(t.id)}` : null; }],
];
const NODE_COLUMNS: Column[] = [col('ID', 'id'), col('ROLE', 'role'), col('INSTANCE', 'instance'), col('APPLIED VERSION', 'appliedVersion'), col('REPORTED', 'reportedAt')];
const SIGNING_KEY_COLUMNS: Column[] = [col('KID', 'id'), col('ALG', 'alg'), col('CREATED', 'createdAt'), col('ACTIVE FROM', 'activeFrom'), col('RETIRED', 'retiredAt')];
const ADMIN_TOKEN_COLUMNS: Column[] = [
  col('ID', 'id'), col('NAME', 'name'), col('SCOPES', 'scopes'), ['WORKSPACES', (t) => t.workspaces ?? 'all'], col('CREATED', 'createdAt'),
];

/** Sets `body[field]` from a flag when it was given. */
function put(body: Record<string, unknown>, field: string, value: unknown): void {
  if (value !== undefined) body[field] = value;
}

function enableDisable(v: Values): boolean | undefined {
  if (bool(v, 'enable') && bool(v, 'disable')) throw new UsageError('give --enable or --disable, not both');
  return bool(v, 'enable') ? true : bool(v, 'disable') ? false : undefined;
}

function expiresOf(v: Values): string | null | undefined {
  const e = str(v, 'expires');
  if (e === undefined) return undefined;
  return e === 'never' ? null : parseWhen('expires', e);
}

/** A printed secret, in table mode: shown once, on a line of its own. */
function showWithSecret(ctx: VerbContext, body: Record<string, unknown>, objectField: string, columns?: readonly Column[]): void {
  if (ctx.format === 'json') return show(ctx, body);
  const obj = body[objectField] as Record<string, unknown> | undefined;
  ctx.io.out(obj ? (columns ? renderList([obj], columns) : renderObject(obj)) : renderObject(body));
  ctx.io.out(`\nsecret: ${String(body.secret)}\n(shown once: keygate keeps only a hash of it)`);
}

const get = (path: string, what: string): Verb => ({
  args: `<${what}>`, id: what,
  run: async (ctx) => {
    const res = await ctx.client().call('GET', `${path}/${ctx.id}`);
    show(ctx, res);
    // For --if-match: a table has room for the answer's ETag; JSON stays the body as the API gave it.
    const etag = res.headers.etag;
    if (ctx.format === 'table' && typeof etag === 'string') ctx.io.out(`etag: ${etag}`);
  },
});

const remove = (path: string, what: string): Verb => ({
  args: `<${what}> [--if-match <etag>]`, id: what, flags: { 'if-match': s },
  run: async (ctx) => {
    await ctx.client().call('DELETE', `${path}/${ctx.id}`, undefined, conditional(ctx.v));
    ctx.io.out('deleted');
  },
});

const workspaces: Resource = {
  name: 'workspaces',
  summary: 'tenants; every key belongs to one',
  verbs: {
    create: {
      args: '--name <name> [--data <json>]', flags: { ...DATA, name: s },
      run: async (ctx) => {
        const body = dataOf(ctx.v);
        put(body, 'name', str(ctx.v, 'name'));
        show(ctx, await ctx.client().call('POST', '/v1/workspaces', body), WORKSPACE_COLUMNS);
      },
    },
    list: { args: PAGE_ARGS, flags: PAGE_FLAGS, run: (ctx) => listPages(ctx, '/v1/workspaces', {}, WORKSPACE_COLUMNS) },
    get: get('/v1/workspaces', 'workspace id'),
    update: {
      args: '<workspace id> --name <name> [--if-match <etag>] [--data <json>]', id: 'workspace id', flags: { ...WRITE, name: s },
      run: async (ctx) => {
        const body = dataOf(ctx.v);
        put(body, 'name', str(ctx.v, 'name'));
        show(ctx, await ctx.client().call('PATCH', `/v1/workspaces/${ctx.id}`, body, conditional(ctx.v)));
      },
    },
    delete: remove('/v1/workspaces', 'workspace id'),
  },
  notes: 'a workspace that still holds keys cannot be deleted (409)',
};

const groups: Resource = {
  name: 'groups',
  summary: 'key groups',
  verbs: {
    create: {
      args: '--name <name> [--description <text>] [--data <json>]', flags: { ...DATA, name: s, description: s },
      run: async (ctx) => {
        const body = dataOf(ctx.v);
        put(body, 'name', str(ctx.v, 'name'));
        put(body, 'description', str(ctx.v, 'description'));
        show(ctx, await ctx.client().call('POST', '/v1/groups', body));
      },
    },
    list: { args: PAGE_ARGS, flags: PAGE_FLAGS, run: (ctx) => listPages(ctx, '/v1/groups', {}, GROUP_COLUMNS) },
    get: get('/v1/groups', 'group id'),
    update: {
      args: '<group id> [--name <name>] [--description <text>] [--if-match <etag>] [--data <json>]', id: 'group id',
      flags: { ...WRITE, name: s, description: s },
      run: async (ctx) => {
        const body = dataOf(ctx.v);
        put(body, 'name', str(ctx.v, 'name'));
        put(body, 'description', str(ctx.v, 'description'));
        show(ctx, await ctx.client().call('PATCH', `/v1/groups/${ctx.id}`, body, conditional(ctx.v)));
      },
    },
    delete: remove('/v1/groups', 'group id'),
  },
  notes: 'a group that still has keys cannot be deleted (409 GROUP_IN_USE)',
};

function ownerBody(v: Values): Record<string, unknown> {
  const body = dataOf(v);
  put(body, 'name', str(v, 'name'));
  put(body, 'permissions', list(v, 'permission'));
  const enabled = enableDisable(v);
  put(body, 'status', str(v, 'status') ?? (enabled === undefined ? undefined : enabled ? 'active' : 'disabled'));
  return body;
}

const OWNER_FLAGS: Flags = { name: s, status: s, permission: many, enable: flag, disable: flag };

const owners: Resource = {
  name: 'owners',
  summary: 'who keys belong to; a key\'s effective permissions are its own ∩ its owner\'s',
  verbs: {
    create: {
      args: '--name <name> [--permission <p>]... [--status active|disabled] [--data <json>]', flags: { ...DATA, ...OWNER_FLAGS },
      run: async (ctx) => show(ctx, await ctx.client().call('POST', '/v1/owners', ownerBody(ctx.v))),
    },
    list: { args: PAGE_ARGS, flags: PAGE_FLAGS, run: (ctx) => listPages(ctx, '/v1/owners', {}, OWNER_COLUMNS) },
    get: get('/v1/owners', 'owner id'),
    update: {
      args: '<owner id> [--name <name>] [--permission <p>]... [--status active|disabled | --enable | --disable] [--if-match <etag>] [--data <json>]',
      id: 'owner id', flags: { ...WRITE, ...OWNER_FLAGS },
      run: async (ctx) => show(ctx, await ctx.client().call('PATCH', `/v1/owners/${ctx.id}`, ownerBody(ctx.v), conditional(ctx.v))),
    },
    delete: remove('/v1/owners', 'owner id'),
  },
  notes: 'disabling an owner suspends its keys; an owner that keys still reference cannot be deleted (409)',
};

const KEY_FLAGS: Flags = {
  ...WRITE, workspace: s, name: s, description: s, type: s, env: s, group: s, owner: s,
  permission: many, preset: s, ip: many, expires: s, enable: flag, disable: flag,
};

function keyBody(v: Values): Record<string, unknown> {
  const body = dataOf(v);
  put(body, 'workspaceId', str(v, 'workspace'));
  put(body, 'name', str(v, 'name'));
  put(body, 'description', str(v, 'description'));
  put(body, 'type', str(v, 'type'));
  put(body, 'environment', str(v, 'env'));
  put(body, 'groupId', str(v, 'group'));
  put(body, 'ownerId', str(v, 'owner'));
  put(body, 'permissions', list(v, 'permission'));
  put(body, 'preset', str(v, 'preset'));
  put(body, 'ipAllowlist', list(v, 'ip'));
  put(body, 'expiresAt', expiresOf(v));
  put(body, 'enabled', enableDisable(v));
  return body;
}

const usage: Verb = {
  args: '<key id>', id: 'key id',
  run: async (ctx) => show(ctx, await ctx.client().call('GET', `/v1/keys/${ctx.id}/usage`)),
};

const keys: Resource = {
  name: 'keys',
  summary: 'API keys',
  verbs: {
    create: {
      args: '--workspace <id> --name <name> [--type workspace|profile] [--env live|test] [--permission <p>]... [--preset <name>]\n'
        + '                      [--ip <cidr>]... [--group <id>] [--owner <id>] [--description <text>] [--expires <when>|never] [--data <json>]',
      flags: KEY_FLAGS,
      run: async (ctx) => showWithSecret(ctx, (await ctx.client().call('POST', '/v1/keys', keyBody(ctx.v))).body as Record<string, unknown>, 'key'),
    },
    list: {
      args: `[--q <text>] [--workspace <id>] [--group <id>] [--type <t>] [--env <e>] [--status <s>] [--rotation-due] ${PAGE_ARGS}`,
      flags: { ...PAGE_FLAGS, q: s, workspace: s, group: s, type: s, env: s, status: s, 'rotation-due': flag },
      run: (ctx) => listPages(ctx, '/v1/keys', {
        q: str(ctx.v, 'q'), workspaceId: str(ctx.v, 'workspace'), groupId: str(ctx.v, 'group'), type: str(ctx.v, 'type'),
        environment: str(ctx.v, 'env'), status: str(ctx.v, 'status'), rotationDue: ctx.v['rotation-due'] === true ? 'true' : undefined,
      }, KEY_COLUMNS),
    },
    get: get('/v1/keys', 'key id'),
    update: {
      args: '<key id> [--name <n>] [--description <d>] [--permission <p>]... [--preset <name>] [--ip <cidr>]... [--group <id>]\n'
        + '                      [--owner <id>] [--enable|--disable] [--expires <when>|never] [--if-match <etag>] [--data <json>]',
      id: 'key id', flags: KEY_FLAGS,
      run: async (ctx) => show(ctx, await ctx.client().call('PATCH', `/v1/keys/${ctx.id}`, keyBody(ctx.v), conditional(ctx.v))),
    },
    rotate: {
      args: '<key id> [--grace <seconds>]', id: 'key id', flags: { grace: s },
      run: async (ctx) => {
        const body: Record<string, unknown> = {};
        put(body, 'gracePeriodSeconds', whole(ctx.v, 'grace'));
        showWithSecret(ctx, (await ctx.client().call('POST', `/v1/keys/${ctx.id}/rotate`, body)).body as Record<string, unknown>, 'key');
      },
    },
    delete: remove('/v1/keys', 'key id'),
    usage,
  },
  notes: '<when>: 2030-01-01 (midnight UTC), a full timestamp (2030-01-01T12:00:00Z, …+02:00) or a duration from now (90d, 12h)\n'
    + '--data takes a JSON object merged into the request body, for fields without a flag (rateLimit, quota, eventDenylist, …)',
};

const usageResource: Resource = {
  name: 'usage',
  summary: 'a key\'s request counts, last use, rate limit and quota',
  verbs: { show: usage },
  defaultVerb: 'show',
};

const audit: Resource = {
  name: 'audit',
  summary: 'the audit log, newest first',
  verbs: {
    list: {
      args: `[--key <id>] [--actor <name>] [--action <a>] [--target-type <t>] [--target-id <id>] [--since <when>] [--until <when>] ${PAGE_ARGS}`,
      flags: { ...PAGE_FLAGS, key: s, actor: s, action: s, 'target-type': s, 'target-id': s, since: s, until: s },
      run: (ctx) => {
        const since = str(ctx.v, 'since');
        const until = str(ctx.v, 'until');
        return listPages(ctx, '/v1/audit', {
          keyId: str(ctx.v, 'key'), actor: str(ctx.v, 'actor'), action: str(ctx.v, 'action'),
          targetType: str(ctx.v, 'target-type'), targetId: str(ctx.v, 'target-id'),
          since: since === undefined ? undefined : parseWhen('since', since),
          until: until === undefined ? undefined : parseWhen('until', until),
        }, AUDIT_COLUMNS);
      },
    },
  },
  defaultVerb: 'list',
};

const nodes: Resource = {
  name: 'nodes',
  summary: 'the keygate nodes sharing this store, and the store version each applied',
  verbs: { list: { args: '', run: async (ctx) => show(ctx, await ctx.client().call('GET', '/v1/nodes'), NODE_COLUMNS) } },
  defaultVerb: 'list',
};

const signingKeys: Resource = {
  name: 'signing-keys',
  summary: 'the keys that sign /auth/token JWTs (public halves only)',
  verbs: {
    list: { args: '', run: async (ctx) => show(ctx, await ctx.client().call('GET', '/v1/signing-keys'), SIGNING_KEY_COLUMNS) },
    rotate: { args: '', run: async (ctx) => show(ctx, await ctx.client().call('POST', '/v1/signing-keys/rotate', {})) },
  },
  defaultVerb: 'list',
};

const adminTokens: Resource = {
  name: 'admin-tokens',
  summary: 'scoped admin tokens',
  verbs: {
    create: {
      args: '--name <name> --scope <scope>... [--workspace <id>]... [--data <json>]',
      flags: { ...DATA, name: s, scope: many, workspace: many },
      run: async (ctx) => {
        const body = dataOf(ctx.v);
        put(body, 'name', str(ctx.v, 'name'));
        put(body, 'scopes', list(ctx.v, 'scope'));
        put(body, 'workspaces', list(ctx.v, 'workspace'));
        showWithSecret(ctx, (await ctx.client().call('POST', '/v1/admin-tokens', body)).body as Record<string, unknown>, 'token');
      },
    },
    list: { args: PAGE_ARGS, flags: PAGE_FLAGS, run: (ctx) => listPages(ctx, '/v1/admin-tokens', {}, ADMIN_TOKEN_COLUMNS) },
    get: get('/v1/admin-tokens', 'token id'),
    delete: remove('/v1/admin-tokens', 'token id'),
  },
  notes: 'scopes: <resource>:read or <resource>:write (write implies read) for keys, workspaces, groups, owners, audit,\n'
    + 'signing-keys, admin-tokens; or * for everything. --workspace confines the token to those workspaces.',
};

const permissions: Resource = {
  name: 'permissions',
  summary: 'the permission catalogue (from the routes) and the presets',
  verbs: {
    list: {
      args: '',
      run: async (ctx) => {
        const body = (await ctx.client().call('GET', '/v1/permissions')).body as { modules: Record<string, string[]>; presets: Record<string, string[]> };
        if (ctx.format === 'json') return show(ctx, body);
        ctx.io.out(renderList(Object.entries(body.modules).map(([module, perms]) => ({ module, perms })), [col('MODULE', 'module'), col('PERMISSIONS', 'perms')]));
        ctx.io.out('');
        ctx.io.out(renderList(Object.entries(body.presets).map(([preset, perms]) => ({ preset, perms })), [col('PRESET', 'preset'), col('PERMISSIONS', 'perms')]));
      },
    },
  },
  defaultVerb: 'list',
};

export const RESOURCES: readonly Resource[] = [workspaces, groups, owners, keys, usageResource, audit, nodes, signingKeys, adminTokens, permissions];
