// Writes the admin API's OpenAPI document (run by `npm run build`: docs/openapi.json).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { adminOpenApi } from '../control-plane/admin-server.js';

export function openApiText(): string {
  return `${JSON.stringify(adminOpenApi(), null, 2)}\n`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = process.argv[2] ?? 'docs/openapi.json';
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, openApiText());
}
