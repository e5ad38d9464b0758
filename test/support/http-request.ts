import { request } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

export interface SimpleResponse { status: number; headers: IncomingHttpHeaders; text: string; body: any }

/**
 * One HTTP/1.1 request through node:http (no connection reuse), so a test can set any header
 * (fetch refuses some) and the local address it comes from (`127.0.0.9`: any 127/8 address is
 * the loopback on Linux), to stand for a client behind a proxy.
 */
export function httpRequest(url: string, init: { method?: string; headers?: Record<string, string | string[]>; body?: string; localAddress?: string } = {}): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    // The path as given, never normalised (a WHATWG URL would resolve `%2e%2e`).
    const origin = /^http:\/\/([^/:]+):(\d+)(.*)$/.exec(url);
    if (origin === null) throw new Error(`not an http://host:port URL: ${url}`);
    const req = request({ host: origin[1], port: Number(origin[2]), path: origin[3] || '/', method: init.method ?? 'GET', headers: init.headers ?? {}, agent: false, ...(init.localAddress ? { localAddress: init.localAddress } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = null;
        if (text !== '') {
          try { body = JSON.parse(text); } catch { body = text; }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${init.method ?? 'GET'} ${url}: no answer within 10 s`)));
    req.end(init.body);
  });
}
