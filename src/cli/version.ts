import { readFileSync } from 'node:fs';

/** keygate's version, from the package.json it ships in (one directory above dist/ and src/). */
export function keygateVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
