// Config text for the loader tests: a small valid config whose sections can be replaced, and
// the two ways to read a load result.
import type { LoadResult } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

export const PEPPER = 'a-test-pepper-of-enough-length';
export const TOKEN = 'a-test-admin-token-of-enough-length';

export interface Parts {
  gateway?: string;
  admin?: string;
  store?: string;
  secrets?: string;
  upstreams?: string;
  routes?: string;
  extra?: string;
}

/** A small valid config; each section can be replaced with YAML text (indented under its key). */
export function yaml(parts: Parts = {}): string {
  return [
    parts.gateway !== undefined ? `gateway:\n${parts.gateway}` : '',
    `admin:\n${parts.admin ?? `  tokens:\n    - { name: ops, token: "${TOKEN}" }`}`,
    parts.store !== undefined ? `store:\n${parts.store}` : '',
    `secrets:\n${parts.secrets ?? `  pepper: "${PEPPER}"`}`,
    `upstreams:\n${parts.upstreams ?? '  events: { url: "http://127.0.0.1:9000" }\n  events-test: { url: "http://127.0.0.1:9001" }'}`,
    `routes:\n${parts.routes ?? '  - { name: send-events, method: POST, path: /v1/events, upstream: events, permission: events.create }'}`,
    parts.extra ?? '',
  ].filter((s) => s !== '').join('\n') + '\n';
}

export function ok(result: LoadResult): Config {
  if (!result.ok) throw new Error(`expected the config to load, got:\n${result.errors.join('\n')}`);
  return result.config;
}

export function errors(result: LoadResult): string[] {
  if (result.ok) throw new Error('expected the config to be refused');
  return result.errors;
}
