import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, sleep, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, sendRaw, sendRawMany, type RawHttpResponse } from './support/raw-http.js';
import { headerValues, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let kg: Keygate;
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
const pair = useUpstreamPair();
let ups: RecordingUpstream[];
let secret: string;
let host: string;

const asRes = (r: RawHttpResponse): RawHttpResponse & { body: any } => ({ ...r, body: r.json });

/** Sends `METHOD target` with a Host header, the key and any extra headers, over a raw socket. */
function send(method: string, target: string, extra: Array<[string, string]> = [], body?: string | Buffer): Promise<RawHttpResponse> {
  return sendRaw(kg.gatewayUrl!, buildRequest(method, target, [['Host', host], ['X-Api-Key', secret], ...extra], body));
}

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  ups = pair.all;
  kg = await startKeygate({ config: gatewayConfig({ events, eventsTest }) });
  host = hostOf(kg.gatewayUrl!);
  const ws = await createWorkspace(kg, 'paths');
  secret = (await createKey(kg, { workspaceId: ws, name: 'paths', permissions: ['*'] })).secret;
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('request paths', () => {
  const refused: Array<[string, string]> = [
    ['a ".." segment', '/v1/../v1/events'],
    ['an encoded ".." segment (%2e%2e)', '/v1/%2e%2e/events'],
    ['an encoded "." segment (%2E)', '/v1/%2E/events'],
    ['an encoded slash (%2f)', '/v1/events%2fx'],
    ['an encoded backslash (%5c)', '/v1/events%5cx'],
    ['a backslash', '/v1\\events'],
    ['a ";" parameter', '/v1/events;x=1'],
    ['an encoded NUL (%00)', '/v1/events%00'],
    ['a "." segment', '/v1/./events'],
    ['a ".." segment under a wildcard route', '/v1/files/../../admin'],
    ['a trailing ".." segment under a wildcard route', '/v1/files/a/..'],
    ['a mixed-case encoded dot segment under a wildcard route', '/v1/files/%2E%2e/x'],
    ['a half-encoded dot segment under a wildcard route', '/v1/files/.%2e/x'],
    ['an encoded slash under a wildcard route (%2F)', '/v1/files/a%2F..%2Fsecret'],
    ['a backslash dot-dot under a wildcard route', '/v1/files/..\\secret'],
    ['a ";" parameter under a wildcard route', '/v1/files/a;jsessionid=1'],
    ['an encoded NUL under a wildcard route', '/v1/files/a%00.txt'],
  ];

  for (const [what, target] of refused) {
    it(`refuses a path with ${what} (${target}) with 400 BAD_REQUEST and forwards nothing`, async () => {
      await expectRefused(asRes(await send('GET', target)), 400, 'BAD_REQUEST', ups);
    });
  }

  it('forwards a path with a dot inside a segment (/v1/files/.well-known/a..b.txt) exactly as received', async () => {
    const res = await send('GET', '/v1/files/.well-known/a..b.txt');
    expect(res.status, res.text).toBe(200);
    expect(events.requests.map((r) => r.url)).toEqual(['/v1/files/.well-known/a..b.txt']);
  });

  it('forwards a path with ordinary percent-encoding and a query with dots, slashes and %2F exactly as received', async () => {
    const target = '/v1/files/a%20b/%C3%BC.txt?next=/../x&enc=%2F%2e%2e&q=a;b';
    const res = await send('GET', target);
    expect(res.status, res.text).toBe(200);
    expect(events.requests.map((r) => r.url)).toEqual([target]);
  });

  it('refuses an absolute-form target (GET http://evil.example/v1/events) with 400 and forwards nothing', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', 'http://evil.example/v1/events', [['Host', 'evil.example'], ['X-Api-Key', secret]]));
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
  });

  it('refuses an absolute-form target naming the gateway itself with 400 and forwards nothing', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', `http://${host}/v1/events`, [['Host', host], ['X-Api-Key', secret]]));
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
  });

  it('refuses an asterisk-form target (OPTIONS *) with a 4xx and forwards nothing', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('OPTIONS', '*', [['Host', host], ['X-Api-Key', secret]]));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await sleep(50);
    expect(events.requests).toEqual([]);
  });

  it('never sends a //evil/v1/events path anywhere but the configured upstream (404, or forwarded there verbatim)', async () => {
    const res = await send('GET', '//evil.example/v1/events');
    if (res.status === 404) {
      await expectRefused(asRes(res), 404, 'ROUTE_NOT_FOUND', ups);
    } else {
      expect(res.status).toBe(200);
      expect(events.requests.map((r) => r.url)).toEqual(['//evil.example/v1/events']);
    }
  });

  it('forwards /v1/files//evil.example/x under a wildcard route to the configured upstream, path verbatim', async () => {
    const res = await send('GET', '/v1/files//evil.example/x');
    expect(res.status, res.text).toBe(200);
    expect(res.json.name).toBe('events');
    expect(events.requests.map((r) => r.url)).toEqual(['/v1/files//evil.example/x']);
  });
});

describe('HEAD requests', () => {
  it('answers HEAD on a GET route through that route: checked like the GET, forwarded as HEAD, headers and no body back (regression)', async () => {
    const res = await gw(kg, '/v1/events?x=1', { method: 'HEAD', headers: { 'x-api-key': secret } });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('x-upstream-name')).toBe('events');
    expect(res.headers.get('x-request-id')).toMatch(/.+/);
    await events.waitFor(1);
    expect(events.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['HEAD /v1/events?x=1']);
    const one = await gw(kg, '/v1/profiles/42', { method: 'HEAD', headers: { 'x-api-key': secret } });
    expect(one.status).toBe(200);
    await events.waitFor(2);
    expect(events.requests[1]!.method).toBe('HEAD');
    expect(events.requests[1]!.url).toBe('/v1/profiles/42');
  });

  it('runs the GET route\'s pipeline for HEAD: no credential is 401, a key without the route\'s permission is 403, and nothing is forwarded', async () => {
    const noKey = await gw(kg, '/v1/events', { method: 'HEAD' });
    expect(noKey.status).toBe(401);
    expect(noKey.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const ws = await createWorkspace(kg, 'head');
    const narrow = (await createKey(kg, { workspaceId: ws, name: 'narrow', permissions: ['events.create'] })).secret;
    expect((await gw(kg, '/v1/events', { method: 'HEAD', headers: { 'x-api-key': narrow } })).status).toBe(403);
    await sleep(20);
    for (const up of ups) expect(up.started).toEqual([]);
  });

  it('answers HEAD on a path whose routes have no GET with 404, forwarding nothing', async () => {
    const res = await gw(kg, '/v1/blobs/x', { method: 'HEAD', headers: { 'x-api-key': secret } });
    expect(res.status).toBe(404);
    await sleep(20);
    for (const up of ups) expect(up.started).toEqual([]);
  });
});

describe('request framing and headers', () => {
  it('refuses two Host headers with 400 BAD_REQUEST and forwards nothing', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [['Host', host], ['Host', 'evil.example'], ['X-Api-Key', secret]]));
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
  });

  it('refuses two Host headers differing only in case with 400', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [['host', host], ['HOST', host], ['X-Api-Key', secret]]));
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
  });

  it('refuses an HTTP/1.1 request without Host with 400 BAD_REQUEST in the catalogued error shape and forwards nothing (regression)', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [['X-Api-Key', secret]]));
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
  });

  it('forwards an HTTP/1.0 request without Host, which needs none', async () => {
    const res = await sendRaw(kg.gatewayUrl!, `GET /v1/events HTTP/1.0\r\nX-Api-Key: ${secret}\r\n\r\n`);
    expect(res.status, res.text).toBe(200);
    expect(events.requests.map((r) => r.url)).toEqual(['/v1/events']);
  });

  it('refuses Content-Length together with Transfer-Encoding: chunked with 400 and forwards nothing (not even a smuggled request)', async () => {
    const smuggled = `0\r\n\r\nGET /v1/files/smuggled HTTP/1.1\r\nHost: ${host}\r\nX-Api-Key: ${secret}\r\n\r\n`;
    const res = await send('PUT', '/v1/blobs/x', [['Content-Type', 'application/octet-stream'], ['Content-Length', '4'], ['Transfer-Encoding', 'chunked']], smuggled);
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
    await sleep(200);
    expect(events.requests).toEqual([]);
  });

  it('refuses two different Content-Length headers with 400 and forwards nothing', async () => {
    const res = await send('PUT', '/v1/blobs/x', [['Content-Length', '3'], ['Content-Length', '5']], 'abcde');
    await expectRefused(asRes(res), 400, 'BAD_REQUEST', ups);
  });

  it('authenticates with X-Api-Key even when Connection names it ("Connection: close, X-Api-Key"), and does not forward it', async () => {
    const res = await send('GET', '/v1/events', [['Connection', 'close, X-Api-Key']]);
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
    expect(headerValues(events.requests[0]!.rawHeaders, 'x-api-key')).toEqual([]);
    expect(events.requests[0]!.rawHeaders.join('\n')).not.toContain(secret);
  });

  it('answers headers totalling about 20 KB with 431 and a JSON error body whose requestId equals X-Request-Id, forwarding nothing', async () => {
    const res = await send('GET', '/v1/events', [['X-Big-1', 'a'.repeat(10_000)], ['X-Big-2', 'b'.repeat(10_000)]]);
    expect(res.status).toBe(431);
    if (res.headers['content-type']?.startsWith('application/json')) {
      // Our own answer: the uniform error shape.
      expect(Object.keys(res.json)).toEqual(['error']);
      expect(Object.keys(res.json.error).sort()).toEqual(['code', 'message', 'requestId']);
      expect(res.headers['x-request-id']).toBe(res.json.error.requestId);
    } else {
      throw new Error(`431 without a JSON body: ${JSON.stringify(res.raw.toString('latin1').slice(0, 300))}`);
    }
    await sleep(20);
    expect(events.requests).toEqual([]);
  });

  it('accepts headers totalling about 12 KB (under 16 KiB)', async () => {
    const res = await send('GET', '/v1/events', [['X-Big-1', 'a'.repeat(6_000)], ['X-Big-2', 'b'.repeat(6_000)]]);
    expect(res.status, res.text).toBe(200);
    expect(headerValues(events.requests[0]!.rawHeaders, 'x-big-1')).toEqual(['a'.repeat(6_000)]);
  });

  it('accepts a request head of 16,300 bytes (request line and headers under 16 KiB)', async () => {
    const base = buildRequest('GET', '/v1/events', [['Host', host], ['X-Api-Key', secret], ['X-Pad', '']]);
    const req = buildRequest('GET', '/v1/events', [['Host', host], ['X-Api-Key', secret], ['X-Pad', 'p'.repeat(16_300 - base.length)]]);
    expect(req.length).toBe(16_300);
    const res = await sendRaw(kg.gatewayUrl!, req);
    expect(res.status, res.text).toBe(200);
  });

  it('answers a request head of 17,000 bytes (over 16 KiB) with a JSON 431', async () => {
    const base = buildRequest('GET', '/v1/events', [['Host', host], ['X-Api-Key', secret], ['X-Pad', '']]);
    const req = buildRequest('GET', '/v1/events', [['Host', host], ['X-Api-Key', secret], ['X-Pad', 'p'.repeat(17_000 - base.length)]]);
    const res = await sendRaw(kg.gatewayUrl!, req);
    expect(res.status).toBe(431);
    expect(res.json?.error?.requestId).toBe(res.headers['x-request-id']);
    await sleep(20);
    expect(events.started).toEqual([]);
  });

  it('never tunnels a CONNECT request: it is refused or the connection closed, and nothing is forwarded', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('CONNECT', 'evil.example:443', [['Host', 'evil.example:443'], ['X-Api-Key', secret]])).catch(() => null);
    if (res !== null) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).not.toBe(200);
    }
    await sleep(50);
    expect(events.started).toEqual([]);
  });

  it('keeps serving the next request on a keep-alive connection after a refused one', async () => {
    const bytes = Buffer.concat([
      buildRequest('GET', '/v1/events', [['Host', host]]),
      buildRequest('GET', '/v1/events', [['Host', host], ['X-Api-Key', secret], ['Connection', 'close']]),
    ]);
    const [first, second] = await sendRawMany(kg.gatewayUrl!, bytes, 2);
    expect(first?.status).toBe(401);
    expect(second?.status, second?.text).toBe(200);
    expect(second?.headers['x-request-id']).not.toBe(first?.headers['x-request-id']);
    expect(events.requests).toHaveLength(1);
  });
});
