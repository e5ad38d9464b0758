// The built console as `keygate serve` ships it: on the admin port only, public static files
// under a strict CSP, nothing inline, nothing from another origin; the gateway port knows nothing of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAndClean } from './support/admin.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, sendRaw } from './support/raw-http.js';

let kg: Keygate;

beforeAll(async () => {
  kg = await startKeygate();
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('the admin console over HTTP', () => {
  it('serves the page without a token, under the strict CSP, loading only its own hashed script and stylesheet', async () => {
    const res = await fetch(`${kg.adminUrl}/console/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const page = await res.text();
    // No inline script or style: every script has a src, and no style element or attribute.
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page).not.toMatch(/<style|style=/);
    const refs = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBe(3);
    for (const ref of refs) {
      expect(ref, 'relative to /console/, never another origin').toMatch(/^[\w.-]+$/);
      const asset = await fetch(`${kg.adminUrl}/console/${ref}`);
      expect(asset.status, ref).toBe(200);
      expect(asset.headers.get('content-security-policy'), ref).not.toBeNull();
      const type = asset.headers.get('content-type');
      if (ref.endsWith('.js')) {
        expect(type).toBe('text/javascript; charset=utf-8');
        expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
        const code = await asset.text();
        // Bundled, not fetched: no module import of another file, no URL of a CDN.
        expect(code).not.toMatch(/\bimport\s*\(|from\s*["']https?:|unpkg|jsdelivr|cdnjs/);
      } else if (ref.endsWith('.css')) {
        expect(type).toBe('text/css; charset=utf-8');
      } else {
        expect(type).toBe('image/svg+xml');
      }
    }
  });

  it('keeps the admin API behind its token, and the console off the gateway port', async () => {
    expect((await fetch(`${kg.adminUrl}/v1/keys`)).status).toBe(401);
    const gateway = await fetch(`${kg.gatewayUrl}/console/`);
    expect(gateway.status).toBe(404);
    expect(((await gateway.json()) as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('reaches no file outside the console by dot segments or encodings', async () => {
    for (const target of ['/console/../../package.json', '/console/..%2f..%2fpackage.json', '/console/%2e%2e/%2e%2e/package.json',
      '/console/../config/gateway.yaml', '/console/..\\..\\package.json']) {
      const res = await sendRaw(kg.adminUrl, buildRequest('GET', target, [['Host', hostOf(kg.adminUrl)]]));
      expect(res.status, target).toBe(404);
      expect(res.text, target).not.toContain('"dependencies"');
    }
  });

  it('counts console requests under one route label', async () => {
    await fetch(`${kg.adminUrl}/console/`);
    const metrics = await (await fetch(`${kg.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/keygate_admin_requests_total\{route="\/console\/",method="GET",status="200"\} \d+/);
  });
});
