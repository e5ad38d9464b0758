import { parseArgs } from 'node:util';
import { AdminClient } from './admin-client.js';

export class UsageError extends Error {}

const COMMON = {
  'admin-url': { type: 'string' },
  token: { type: 'string' },
  data: { type: 'string' },
} as const;

const KEY_FLAGS = {
  ...COMMON,
  workspace: { type: 'string' },
  name: { type: 'string' },
  description: { type: 'string' },
  type: { type: 'string' },
  env: { type: 'string' },
  group: { type: 'string' },
  owner: { type: 'string' },
  permission: { type: 'string', multiple: true },
  preset: { type: 'string' },
  ip: { type: 'string', multiple: true },
  expires: { type: 'string' },
  enable: { type: 'boolean' },
  disable: { type: 'boolean' },
  q: { type: 'string' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  grace: { type: 'string' },
} as const;

export const KEYS_USAGE = `usage:
  keygate keys create --workspace <id> --name <name> [--type workspace|profile] [--env live|test]
                      [--permission <p>]... [--preset <name>] [--ip <cidr>]... [--group <id>]
                      [--owner <id>] [--description <text>] [--expires <ISO date>|never] [--data <json>]
  keygate keys list   [--q <text>] [--workspace <id>] [--group <id>] [--type <t>] [--env <e>]
                      [--status <s>] [--limit <n>] [--cursor <c>]
  keygate keys get <id>
  keygate keys update <id> [--name <n>] [--description <d>] [--permission <p>]... [--ip <cidr>]...
                      [--enable|--disable] [--expires <ISO date>|never] [--data <json>]
  keygate keys rotate <id> [--grace <seconds>]
  keygate keys delete <id>
common options: --admin-url <url> (env KEYGATE_ADMIN_URL, default http://127.0.0.1:8081)
                --token <admin token> (env KEYGATE_ADMIN_TOKEN)
--data takes a JSON object merged into the request body, for fields without a flag.`;

type Values = ReturnType<typeof parse>['values'];
function parse(args: string[]) {
  return parseArgs({ args, options: KEY_FLAGS, allowPositionals: true, strict: true });
}

function bodyFrom(v: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (v.data !== undefined) {
    let extra: unknown;
    try {
      extra = JSON.parse(v.data);
    } catch {
      throw new UsageError('--data must be a JSON object');
    }
    if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) throw new UsageError('--data must be a JSON object');
    Object.assign(body, extra);
  }
  if (v.workspace !== undefined) body.workspaceId = v.workspace;
  if (v.name !== undefined) body.name = v.name;
  if (v.description !== undefined) body.description = v.description;
  if (v.type !== undefined) body.type = v.type;
  if (v.env !== undefined) body.environment = v.env;
  if (v.group !== undefined) body.groupId = v.group;
  if (v.owner !== undefined) body.ownerId = v.owner;
  if (v.permission !== undefined) body.permissions = v.permission;
  if (v.preset !== undefined) body.preset = v.preset;
  if (v.ip !== undefined) body.ipAllowlist = v.ip;
  if (v.expires !== undefined) body.expiresAt = v.expires === 'never' ? null : v.expires;
  if (v.enable && v.disable) throw new UsageError('give --enable or --disable, not both');
  if (v.enable) body.enabled = true;
  if (v.disable) body.enabled = false;
  return body;
}

function onlyId(positionals: string[], sub: string): string {
  const id = positionals[0];
  if (id === undefined || positionals.length > 1) throw new UsageError(`keys ${sub} takes exactly one key id`);
  return encodeURIComponent(id);
}

/** Runs `keygate keys …`; returns the exit code. */
export async function runKeysCommand(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === 'help') {
    out(KEYS_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const { values: v, positionals } = parse(rest);
  const token = v.token ?? env.KEYGATE_ADMIN_TOKEN;
  if (!token) throw new UsageError('an admin token is needed: --token or KEYGATE_ADMIN_TOKEN');
  const client = new AdminClient(v['admin-url'] ?? env.KEYGATE_ADMIN_URL ?? 'http://127.0.0.1:8081', token);
  let res: { status: number; body: unknown };
  switch (sub) {
    case 'create':
      if (positionals.length > 0) throw new UsageError('keys create takes no positional arguments');
      res = await client.call('POST', '/v1/keys', bodyFrom(v));
      break;
    case 'list': {
      const qs = new URLSearchParams();
      const map: Array<[string, string | undefined]> = [
        ['q', v.q], ['workspaceId', v.workspace], ['groupId', v.group], ['type', v.type],
        ['environment', v.env], ['status', v.status], ['limit', v.limit], ['cursor', v.cursor],
      ];
      for (const [k, val] of map) if (val !== undefined) qs.set(k, val);
      res = await client.call('GET', `/v1/keys${qs.size > 0 ? `?${qs.toString()}` : ''}`);
      break;
    }
    case 'get':
      res = await client.call('GET', `/v1/keys/${onlyId(positionals, sub)}`);
      break;
    case 'update':
      res = await client.call('PATCH', `/v1/keys/${onlyId(positionals, sub)}`, bodyFrom(v));
      break;
    case 'rotate': {
      const body: Record<string, unknown> = {};
      if (v.grace !== undefined) {
        if (!/^\d+$/.test(v.grace)) throw new UsageError('--grace takes a whole number of seconds');
        body.gracePeriodSeconds = Number(v.grace);
      }
      res = await client.call('POST', `/v1/keys/${onlyId(positionals, sub)}/rotate`, body);
      break;
    }
    case 'delete':
      res = await client.call('DELETE', `/v1/keys/${onlyId(positionals, sub)}`);
      break;
    default:
      throw new UsageError(`unknown keys command "${sub}"\n${KEYS_USAGE}`);
  }
  if (res.status >= 400) {
    const e = (res.body as { error?: { code?: string; message?: string } } | null)?.error;
    err(`error ${res.status} ${e?.code ?? ''}: ${e?.message ?? ''}`.trim());
    return 1;
  }
  if (res.status === 204) out('deleted');
  else out(JSON.stringify(res.body, null, 2));
  return 0;
}
