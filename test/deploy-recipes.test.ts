// The recipes under deploy/ that CI cannot run against their proxy (Envoy, Traefik,
// ingress-nginx) still name keygate's endpoints and headers as keygate answers them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const DEPLOY = join(import.meta.dirname, '..', 'deploy');
const read = (file: string): string => readFileSync(join(DEPLOY, file), 'utf8');
const IDENTITY = ['X-Keygate-Key-Id', 'X-Keygate-Workspace-Id', 'X-Keygate-Key-Type', 'X-Keygate-Environment', 'X-Keygate-Profile'];

/** The first value at `key` anywhere in a parsed YAML document. */
function find(node: unknown, key: string): unknown {
  if (node === null || typeof node !== 'object') return undefined;
  if (key in node) return (node as Record<string, unknown>)[key];
  for (const v of Object.values(node)) {
    const found = find(v, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

describe('deploy/ recipes', () => {
  it('Envoy asks /auth/envoy with the key headers, fails closed, and copies X-Keygate-* upstream and refusal headers to the client', () => {
    const doc = parse(read('envoy/ext-authz.yaml'));
    const http = find(doc, 'http_service') as Record<string, any>;
    expect(http.path_prefix).toBe('/auth/envoy');
    expect(find(doc, 'failure_mode_allow')).toBe(false);
    expect(http.authorization_request.allowed_headers.patterns).toEqual(expect.arrayContaining([{ exact: 'x-api-key' }, { exact: 'x-forwarded-for' }]));
    expect(http.authorization_response.allowed_upstream_headers.patterns).toContainEqual({ prefix: 'x-keygate-' });
    expect(http.authorization_response.allowed_client_headers.patterns).toEqual(expect.arrayContaining([{ exact: 'www-authenticate' }, { exact: 'retry-after' }, { prefix: 'ratelimit-' }]));
    expect(find(doc, 'request_headers_to_remove')).toEqual(['x-api-key', 'authorization']);
  });

  it('Traefik asks /auth/forward, copies every identity header, and strips the credential after deciding', () => {
    const doc = parse(read('traefik/keygate-forward-auth.yaml'));
    const fa = doc.http.middlewares.keygate.forwardAuth;
    expect(fa.address).toMatch(/\/auth\/forward$/);
    expect(fa.trustForwardHeader).toBe(false);
    expect(fa.authResponseHeaders).toEqual(expect.arrayContaining(IDENTITY));
    expect(doc.http.routers.api.middlewares).toEqual(['keygate', 'keygate-strip-credentials']);
    expect(doc.http.middlewares['keygate-strip-credentials'].headers.customRequestHeaders).toEqual({ 'X-Api-Key': '', Authorization: '' });
  });

  it('ingress-nginx asks /auth/forward and copies every identity header', () => {
    const annotations = parse(read('ingress-nginx/ingress.yaml')).metadata.annotations as Record<string, string>;
    expect(annotations['nginx.ingress.kubernetes.io/auth-url']).toMatch(/\/auth\/forward$/);
    expect(annotations['nginx.ingress.kubernetes.io/auth-response-headers']!.split(',')).toEqual(expect.arrayContaining(IDENTITY));
    expect(annotations['nginx.ingress.kubernetes.io/configuration-snippet']).toContain('error_page 401 403 500 = @keygate_refused;');
    expect(annotations['nginx.ingress.kubernetes.io/server-snippet']).toContain('if ($kg_status = 429) { return 429 $kg_error; }');
  });
});
