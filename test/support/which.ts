// Finding a binary the tests start (redis-server, redis-cli, nginx, caddy, promtool, chromium…).
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** An executable on the PATH, or in /usr/sbin or /sbin (where Debian puts nginx, often off a user's PATH); null when there is none. */
export function which(binary: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
