import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KeygateError } from '../errors/catalogue.js';

// The admin console's static files (built by `npm run build` into dist/console), served under
// /console/ on the admin port. Every file is read once at start into a map keyed by its URL
// name: a request is a map lookup, never a filesystem path, so no `..` or encoding can reach
// any other file.

export const CONSOLE_PATH = '/console/';

/**
 * No inline script or style, nothing from another origin, no framing: the console talks to
 * its own origin's admin API only; QR codes are data: images.
 */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
};

/** Built names carry a content hash (`app-3FX2K.js`): they never change, so they are cached for good. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/;
/** Worth compressing: text above a packet's size. */
const GZIP_MIN_BYTES = 1024;

interface Asset {
  body: Buffer;
  gzip: Buffer | null;
  etag: string;
  headers: Record<string, string>;
}

export interface ConsoleAssets {
  /** How many files are served (0: the console was not built). */
  readonly size: number;
  /** Answers a request whose path starts with /console/ (or is /console); returns the status. */
  serve(req: IncomingMessage, res: ServerResponse, path: string): number;
}

function loadDir(root: string, dir: string, into: Map<string, Asset>): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) {
      loadDir(root, full, into);
      continue;
    }
    const type = TYPES[extname(entry.name)];
    if (!entry.isFile() || type === undefined) continue;
    const body = readFileSync(full);
    const name = full.slice(root.length).split('\\').join('/').replace(/^\/+/, '');
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    const compressible = type.startsWith('text/') || type === 'image/svg+xml' || type.startsWith('application/json');
    const gzip = compressible && body.length >= GZIP_MIN_BYTES ? gzipSync(body, { level: 9 }) : null;
    into.set(name, {
      body,
      gzip,
      etag,
      headers: {
        ...SECURITY_HEADERS,
        'content-type': type,
        // The page itself is revalidated every time, so a new build's asset names are seen at once.
        'cache-control': HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache',
        etag,
        ...(gzip !== null ? { vary: 'Accept-Encoding' } : {}),
      },
    });
  }
}

/** Reads the built console under `dir`; a missing directory serves a 404 that says how to build it. */
export function loadConsoleAssets(dir: string): ConsoleAssets {
  const assets = new Map<string, Asset>();
  if (existsSync(dir) && statSync(dir).isDirectory()) loadDir(dir, dir, assets);
  const index = assets.get('index.html');
  if (index) assets.set('', index);

  return {
    size: assets.size,
    serve(req, res, path) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        throw new KeygateError('METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed on ${path}.`, { allow: 'GET, HEAD' });
      }
      if (path === '/console') {
        res.writeHead(308, { ...SECURITY_HEADERS, location: CONSOLE_PATH, 'content-length': 0, 'cache-control': 'no-cache' });
        res.end();
        return 308;
      }
      const asset = assets.get(path.slice(CONSOLE_PATH.length));
      if (!asset) {
        throw new KeygateError('NOT_FOUND', index ? `No console file at ${path}.` : 'The admin console is not built here: run `npm run build`.');
      }
      if (matchesEtag(req.headers['if-none-match'], asset.etag)) {
        res.writeHead(304, asset.headers);
        res.end();
        return 304;
      }
      const gzip = asset.gzip !== null && acceptsGzip(req.headers['accept-encoding']);
      const body = gzip ? asset.gzip! : asset.body;
      res.writeHead(200, { ...asset.headers, 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return 200;
    },
  };
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** `gzip` listed with a q-value above 0 (RFC 9110 §12.5.3). */
function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding?.trim() !== 'gzip') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}
