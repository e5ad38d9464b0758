// A real nginx on a free port, with its own config and prefix in a temporary directory.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, superviseProxy, swapOnce, which, type RunningProxy } from './proxy-binaries.js';

const RECIPE = join(import.meta.dirname, '..', '..', 'deploy', 'nginx', 'keygate-forward-auth.conf');

/**
 * The shipped nginx recipe (deploy/nginx/keygate-forward-auth.conf) on other addresses: it
 * listens on `{{PORT}}` (see startNginx), asks keygate at `keygate` and proxies to `api`
 * (each `host:port`). Nothing else of it changes.
 */
export function nginxRecipe(keygate: string, api: string): string {
  let text = readFileSync(RECIPE, 'utf8');
  text = swapOnce(text, 'listen 8000;', 'listen 127.0.0.1:{{PORT}};');
  text = swapOnce(text, 'server 127.0.0.1:8080;', `server ${keygate};`);
  return swapOnce(text, 'server 127.0.0.1:9000;', `server ${api};`);
}

export type Nginx = RunningProxy;

/**
 * Starts nginx with `servers` (the text of one or more `server {}` / `upstream {}` blocks of
 * its http context) in which every `{{PORT}}` is replaced by a free port nginx listens on.
 * One worker, the access log off, every temp path inside its own prefix.
 */
export async function startNginx(servers: string | ((port: number) => string), opts: { workers?: number; core?: string } = {}): Promise<Nginx> {
  const bin = which('nginx');
  if (bin === null) throw new Error('no nginx binary on the PATH (apt-get install nginx-light)');
  const dir = mkdtempSync(join(tmpdir(), 'keygate-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const text = typeof servers === 'string' ? servers.replaceAll('{{PORT}}', String(port)) : servers(port);
  const temp = (name: string): string => `${name}_temp_path ${join(dir, name)};`;
  // As root nginx's workers would run as nobody, who cannot enter this directory.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  writeFileSync(join(dir, 'nginx.conf'), `${user}worker_processes ${opts.workers ?? 1};
events { worker_connections 4096; }
http {
  access_log off;
  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}
  keepalive_timeout 65s;
  keepalive_requests 1000000;
${text}
}
`);
  const args = ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')}; error_log stderr warn;`];
  const proc = opts.core !== undefined ? spawn('taskset', ['-c', opts.core, bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return superviseProxy('nginx', proc, port, dir, 10_000);
}
