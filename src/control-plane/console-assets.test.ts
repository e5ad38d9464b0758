import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, loadConsoleAssets } from './console-assets.js';
import { sendError } from './http.js';

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

/** A raw request: the path goes out exactly as given (no client-side normalisation of `..`). */
function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function serve(dir: string): Promise<{ server: Server; port: number }> {
  const assets = loadConsoleAssets(dir);
  const server = createServer((req, res) => {
    try {
      assets.serve(req, res, (req.url ?? '/').split('?')[0]!);
    } catch (err) {
      sendError(res, err, 'req-1');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

describe('console assets', () => {
  let root: string;
  let port: number;
  let server: Server;
  const script = `console.log(${JSON.stringify('x'.repeat(4000))});\n`;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'keygate-console-'));
    const dir = join(root, 'console');
    mkdirSync(join(dir, 'nested'), { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title><script type="module" src="app-ABCD2345.js"></script>');
    writeFileSync(join(dir, 'app-ABCD2345.js'), script);
    writeFileSync(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(join(dir, 'nested', 'note.txt'), 'nested');
    writeFileSync(join(dir, 'app.js.map'), '{}'); // a type it does not serve
    writeFileSync(join(root, 'secret.txt'), 'outside the console');
    ({ server, port } = await serve(dir));
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the page at /console/ with the strict CSP, nosniff, its type and a revalidated cache', async () => {
    const res = await get(port, '/console/');
    expect(res.status).toBe(200);
    expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toBe("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body.toString()).toContain('app-ABCD2345.js');
    expect((await get(port, '/console/index.html')).body).toEqual(res.body);
  });

  it('answers 304 to a matching If-None-Match, and HEAD with headers only', async () => {
    const first = await get(port, '/console/');
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await get(port, '/console/', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect((await get(port, '/console/', { 'if-none-match': '"other"' })).status).toBe(200);
    const head = await get(port, '/console/', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(first.body.length));
  });

  it('caches content-hashed files for good and gzips them for clients that accept it', async () => {
    const plain = await get(port, '/console/app-ABCD2345.js');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('Accept-Encoding');
    expect(plain.body.toString()).toBe(script);
    const zipped = await get(port, '/console/app-ABCD2345.js', { 'accept-encoding': 'br, gzip;q=0.8' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.body.length).toBeLessThan(plain.body.length);
    expect(gunzipSync(zipped.body).toString()).toBe(script);
    expect((await get(port, '/console/app-ABCD2345.js', { 'accept-encoding': 'gzip;q=0' })).headers['content-encoding']).toBeUndefined();
    const icon = await get(port, '/console/favicon.svg');
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.headers['cache-control']).toBe('no-cache');
    expect((await get(port, '/console/nested/note.txt')).body.toString()).toBe('nested');
  });

  it('serves nothing but the files it loaded: no traversal, no other type', async () => {
    for (const path of ['/console/../secret.txt', '/console/..%2fsecret.txt', '/console/%2e%2e/secret.txt', '/console/nested/../../secret.txt',
      '/console//etc/passwd', '/console/app.js.map', '/console/nested/', '/console/APP-ABCD2345.JS', '/console/index.html/']) {
      const res = await get(port, path);
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body.toString()).error.code, path).toBe('NOT_FOUND');
      expect(res.body.toString(), path).not.toContain('outside the console');
    }
  });

  it('redirects /console to /console/ and refuses other methods with 405 and Allow', async () => {
    const res = await get(port, '/console');
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('/console/');
    const post = await get(port, '/console/', {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('says how to build the console when it was not built', async () => {
    const empty = await serve(join(root, 'nowhere'));
    try {
      const res = await get(empty.port, '/console/');
      expect(res.status).toBe(404);
      expect(JSON.parse(res.body.toString()).error.message).toContain('npm run build');
    } finally {
      await new Promise((r) => empty.server.close(r));
    }
  });
});
