// A real Caddy on a free port, with its own Caddyfile, home and data directories in a
// temporary directory, its admin endpoint off and no automatic HTTPS.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, superviseProxy, swapOnce, which, type RunningProxy } from './proxy-binaries.js';

const RECIPE = join(import.meta.dirname, '..', '..', 'deploy', 'caddy', 'Caddyfile');

/** The shipped Caddy recipe (deploy/caddy/Caddyfile) listening on `{{PORT}}`, asking `keygate`, proxying to `api` (`host:port`). */
export function caddyRecipe(keygate: string, api: string): string {
  let text = readFileSync(RECIPE, 'utf8');
  text = swapOnce(text, ':8000 {', 'http://127.0.0.1:{{PORT}} {');
  text = swapOnce(text, 'forward_auth 127.0.0.1:8080 {', `forward_auth ${keygate} {`);
  return swapOnce(text, 'reverse_proxy 127.0.0.1:9000', `reverse_proxy ${api}`);
}

export type Caddy = RunningProxy;

/**
 * Starts `caddy run` on `sites` (Caddyfile site blocks) in which every `{{PORT}}` is replaced by
 * a free port Caddy listens on.
 */
export async function startCaddy(sites: string | ((port: number) => string)): Promise<Caddy> {
  const bin = which('caddy');
  if (bin === null) throw new Error('no caddy binary on the PATH (apt-get install caddy)');
  const dir = mkdtempSync(join(tmpdir(), 'keygate-caddy-'));
  const port = await freePort();
  const text = typeof sites === 'string' ? sites.replaceAll('{{PORT}}', String(port)) : sites(port);
  const file = join(dir, 'Caddyfile');
  writeFileSync(file, `{\n\tadmin off\n\tauto_https off\n}\n\n${text}\n`);
  const proc = spawn(bin, ['run', '--config', file, '--adapter', 'caddyfile'], {
    env: { PATH: process.env.PATH ?? '', HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return superviseProxy('caddy', proc, port, dir, 15_000);
}
