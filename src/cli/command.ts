import { parseArgs } from 'node:util';
import { AdminClient, type ApiResponse } from './admin-client.js';
import { CliError, EXIT, UsageError } from './exit-codes.js';
import { outputFormat, render, type Column, type OutputFormat } from './output.js';

export interface Io {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
}

export interface FlagSpec { type: 'string' | 'boolean'; multiple?: boolean; short?: string }
export type Flags = Record<string, FlagSpec>;
export type Values = Record<string, string | boolean | string[] | undefined>;

/** Flags every admin API command takes. */
export const CONNECTION_FLAGS: Flags = {
  'admin-url': { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string', short: 'o' },
  timeout: { type: 'string' },
};

export const CONNECTION_HELP = `common options:
  --admin-url <url>     the admin port (env KEYGATE_ADMIN_URL, default http://127.0.0.1:8081)
  --token <token>       an admin token (env KEYGATE_ADMIN_TOKEN)
  -o, --output json|table  how answers are printed (env KEYGATE_OUTPUT, default json)
  --timeout <seconds>   how long to wait for an answer (default 30)`;

export interface VerbContext {
  io: Io;
  v: Values;
  /** The positional id, URL-encoded for a path. */
  id: string;
  format: OutputFormat;
  client: () => AdminClient;
}

export interface Verb {
  /** What follows the verb in the usage line, e.g. `<id> [--name <name>]`. */
  args: string;
  flags?: Flags;
  /** Takes exactly one positional argument (an id). */
  id?: string;
  run(ctx: VerbContext): Promise<void>;
}

export interface Resource {
  name: string;
  summary: string;
  verbs: Record<string, Verb>;
  /** The verb run when none is given (`keygate audit` lists). */
  defaultVerb?: string;
  /** Extra help after the usage lines. */
  notes?: string;
}

export const str = (v: Values, k: string): string | undefined => v[k] as string | undefined;
export const list = (v: Values, k: string): string[] | undefined => v[k] as string[] | undefined;
export const bool = (v: Values, k: string): boolean => v[k] === true;

/** The admin client for these flags: the token from --token or the environment, or exit 4. */
export function clientFor(v: Values, env: NodeJS.ProcessEnv): AdminClient {
  const flagToken = str(v, 'token');
  const token = flagToken ?? env.KEYGATE_ADMIN_TOKEN;
  if (token === undefined || token === '') {
    throw new CliError('no admin token: pass --token <token> or set KEYGATE_ADMIN_TOKEN (one of admin.tokens in the config, or a token made with keygate admin-tokens create)', EXIT.AUTH);
  }
  const timeout = str(v, 'timeout');
  if (timeout !== undefined && !/^\d+(\.\d+)?$/.test(timeout)) throw new UsageError(`--timeout: "${timeout}" is not a number of seconds`);
  return new AdminClient({
    baseUrl: str(v, 'admin-url') ?? env.KEYGATE_ADMIN_URL ?? 'http://127.0.0.1:8081',
    token,
    tokenSource: flagToken !== undefined ? '--token' : 'KEYGATE_ADMIN_TOKEN',
    timeoutMs: timeout === undefined ? 30_000 : Math.max(1, Number(timeout) * 1000),
  });
}

/** Parses a verb's arguments (its own flags and the connection flags) and runs it. */
export async function runVerb(resource: Resource, verbName: string, verb: Verb, args: string[], io: Io): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { ...CONNECTION_FLAGS, ...verb.flags }, allowPositionals: true, strict: true });
  const v = values as Values;
  let id = '';
  if (verb.id !== undefined) {
    const given = positionals[0];
    if (given === undefined || positionals.length > 1) throw new UsageError(`${resource.name} ${verbName} takes exactly one ${verb.id}`);
    id = encodeURIComponent(given);
  } else if (positionals.length > 0) {
    throw new UsageError(`${resource.name} ${verbName} takes no positional arguments (got "${positionals[0]}")`);
  }
  const format = outputFormat(str(v, 'output'), io.env);
  let client: AdminClient | null = null;
  await verb.run({ io, v, id, format, client: () => (client ??= clientFor(v, io.env)) });
}

export function usageOf(resource: Resource): string {
  const lines = Object.entries(resource.verbs).map(([name, verb]) => `  keygate ${resource.name} ${name}${verb.args ? ` ${verb.args}` : ''}`);
  return [`usage (${resource.summary}):`, ...lines, ...(resource.notes ? [resource.notes] : []), CONNECTION_HELP].join('\n');
}

/** A JSON object from --data, merged into a request body, for fields without a flag. */
export function dataOf(v: Values): Record<string, unknown> {
  const data = str(v, 'data');
  if (data === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    throw new UsageError('--data must be a JSON object');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('--data must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** Request headers from --if-match. */
export function conditional(v: Values): Record<string, string> {
  const etag = str(v, 'if-match');
  return etag === undefined ? {} : { 'if-match': etag };
}

export function show(ctx: VerbContext, res: ApiResponse | unknown, columns?: readonly Column[]): void {
  const body = res !== null && typeof res === 'object' && 'status' in res && 'headers' in res ? (res as ApiResponse).body : res;
  ctx.io.out(render(body, ctx.format, columns));
}

/** A whole number flag within bounds, or a usage error naming it. */
export function whole(v: Values, flag: string, min = 0): number | undefined {
  const s = str(v, flag);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < min) throw new UsageError(`--${flag}: "${s}" is not a whole number${min > 0 ? ` ≥ ${min}` : ''}`);
  return Number(s);
}

export const PAGE_FLAGS: Flags = { limit: { type: 'string' }, cursor: { type: 'string' }, all: { type: 'boolean' } };
export const PAGE_ARGS = '[--limit <n>] [--cursor <c>] [--all]';

/**
 * A list: one page (`--limit`, `--cursor`), or with `--all` every page, following
 * `nextCursor` until the end; printed as `{items, nextCursor}` or a table.
 */
export async function listPages(ctx: VerbContext, path: string, query: Record<string, string | undefined>, columns: readonly Column[]): Promise<void> {
  const qs = new URLSearchParams();
  for (const [k, val] of Object.entries(query)) if (val !== undefined) qs.set(k, val);
  const limit = whole(ctx.v, 'limit', 1);
  if (limit !== undefined) qs.set('limit', String(limit));
  const cursor = str(ctx.v, 'cursor');
  if (cursor !== undefined) qs.set('cursor', cursor);
  const get = async (): Promise<{ items: unknown[]; nextCursor?: string | null }> =>
    (await ctx.client().call('GET', `${path}${qs.size > 0 ? `?${qs.toString()}` : ''}`)).body as { items: unknown[]; nextCursor?: string | null };
  let page = await get();
  if (bool(ctx.v, 'all')) {
    const items = [...page.items];
    const seen = new Set<string>();
    while (typeof page.nextCursor === 'string' && !seen.has(page.nextCursor)) {
      seen.add(page.nextCursor);
      qs.set('cursor', page.nextCursor);
      page = await get();
      items.push(...page.items);
    }
    page = { items, nextCursor: null };
  }
  show(ctx, page, columns);
}
