import { randomBytes, createHash } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, expectError, rawRequest, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, metricSamples, metricSum, scrape } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, openRaw, sendRaw } from './support/raw-http.js';
import { closedPort, headerValue, headerValues, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let kg: Keygate;
let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
const pair = useUpstreamPair();
let ws: string;
/** A live workspace key holding every permission. */
let live: { key: any; secret: string };

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  const downPort = await closedPort();
  kg = await startKeygate({ config: gatewayConfig({ events, eventsTest, downPort }) });
  ws = await createWorkspace(kg, 'forwarding');
  live = await createKey(kg, { workspaceId: ws, name: 'all', permissions: ['*'] });
});

afterAll(async () => {
  await stopAndClean(kg);
});

describe('forwarding a request', () => {
  it('forwards an X-Api-Key request with method, path, query and body bytes unchanged', async () => {
    const body = Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0d, 0x0a]), randomBytes(4096)]);
    const target = '/v1/blobs/a/b.bin?x=1&y=%2F&z=%20&empty=&x=2';
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('PUT', target, [
      ['Host', hostOf(kg.gatewayUrl!)],
      ['X-Api-Key', live.secret],
      ['Content-Type', 'application/octet-stream'],
      ['Content-Length', String(body.length)],
    ], body));
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
    const got = events.requests[0]!;
    expect(got.method).toBe('PUT');
    expect(got.url).toBe(target);
    expect(got.body.equals(body)).toBe(true);
    expect(headerValue(got.rawHeaders, 'content-type')).toBe('application/octet-stream');
  });

  it('forwards an Authorization: Bearer <secret> request with the JSON body bytes unchanged', async () => {
    const body = '{"action":"page.view",  "props":{"ü":"✓"}}\n';
    const res = await gw(kg, '/v1/events?source=web', { method: 'POST', headers: { authorization: `Bearer ${live.secret}`, 'content-type': 'application/json' }, body });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
    const got = events.requests[0]!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/v1/events?source=web');
    expect(got.body.equals(Buffer.from(body))).toBe(true);
  });

  it('gives the upstream the key identity, X-Request-Id equal to the response header, and X-Forwarded-For/Proto/Host', async () => {
    const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': live.secret } });
    expect(res.status, res.text).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValue(h, 'x-keygate-key-id')).toBe(live.key.id);
    expect(headerValue(h, 'x-keygate-workspace-id')).toBe(ws);
    expect(headerValue(h, 'x-keygate-key-type')).toBe('workspace');
    expect(headerValue(h, 'x-keygate-environment')).toBe('live');
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    expect(headerValue(h, 'x-request-id')).toBe(requestId);
    const xff = headerValue(h, 'x-forwarded-for');
    expect(xff?.split(',').map((s) => s.trim()).at(-1)).toBe('127.0.0.1');
    expect(headerValue(h, 'x-forwarded-proto')).toBe('http');
    expect(headerValue(h, 'x-forwarded-host')).toBe(hostOf(kg.gatewayUrl!));
  });

  it('never passes the client credentials (X-Api-Key, Authorization) to the upstream', async () => {
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': live.secret } })).status).toBe(200);
    expect((await gw(kg, '/v1/events', { headers: { authorization: `Bearer ${live.secret}` } })).status).toBe(200);
    expect(events.requests).toHaveLength(2);
    for (const r of events.requests) {
      expect(headerValues(r.rawHeaders, 'x-api-key')).toEqual([]);
      expect(headerValues(r.rawHeaders, 'authorization')).toEqual([]);
      expect(r.rawHeaders.join('\n')).not.toContain(live.secret);
    }
  });

  it('drops client-sent X-Keygate-* headers (a forged X-Keygate-Key-Id never reaches the upstream)', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)],
      ['X-Api-Key', live.secret],
      ['X-Keygate-Key-Id', 'forged'],
      ['x-keygate-workspace-id', 'forged-ws'],
      ['X-KEYGATE-ENVIRONMENT', 'test'],
      ['X-Keygate-Profile', 'someone-else'],
      ['X-Keygate-Anything', 'x'],
    ]));
    expect(res.status, res.text).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValues(h, 'x-keygate-key-id')).toEqual([live.key.id]);
    expect(headerValues(h, 'x-keygate-workspace-id')).toEqual([ws]);
    expect(headerValues(h, 'x-keygate-environment')).toEqual(['live']);
    expect(headerValues(h, 'x-keygate-profile')).toEqual([]);
    expect(headerValues(h, 'x-keygate-anything')).toEqual([]);
    expect(h).not.toContain('forged');
  });

  it('strips the request hop-by-hop headers, including those the Connection header names', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)],
      ['X-Api-Key', live.secret],
      ['Connection', 'keep-alive, X-Client-Hop'],
      ['X-Client-Hop', 'secret-hop'],
      ['Keep-Alive', 'timeout=5'],
      ['Proxy-Authorization', 'Basic Zm9vOmJhcg=='],
      ['X-End-To-End', 'kept'],
    ]));
    expect(res.status, res.text).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValues(h, 'x-client-hop')).toEqual([]);
    expect(headerValues(h, 'keep-alive')).toEqual([]);
    expect(headerValues(h, 'proxy-authorization')).toEqual([]);
    expect(headerValues(h, 'x-end-to-end')).toEqual(['kept']);
  });

  it('still adds the identity headers when the client names them in Connection', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)],
      ['X-Api-Key', live.secret],
      ['Connection', 'X-Keygate-Key-Id, X-Request-Id, X-Forwarded-For'],
    ]));
    expect(res.status, res.text).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValues(h, 'x-keygate-key-id')).toEqual([live.key.id]);
    expect(headerValues(h, 'x-request-id')).toEqual([res.headers['x-request-id']]);
    expect(headerValues(h, 'x-forwarded-for')).toHaveLength(1);
  });

  it('streams the upstream response back unchanged (status, headers, body) but strips hop-by-hop headers (Connection: x-hop and x-hop)', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/files/report.json?q=1', [
      ['Host', hostOf(kg.gatewayUrl!)],
      ['X-Api-Key', live.secret],
      ['X-Upstream-Status', '203'],
    ]));
    expect(res.status).toBe(203);
    expect(headerValues(res.rawHeaders, 'x-custom')).toEqual(['custom-value']);
    expect(headerValues(res.rawHeaders, 'x-upstream-name')).toEqual(['events']);
    expect(headerValues(res.rawHeaders, 'set-cookie')).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(headerValues(res.rawHeaders, 'content-type')).toEqual(['application/json']);
    expect(headerValues(res.rawHeaders, 'x-hop')).toEqual([]);
    for (const c of headerValues(res.rawHeaders, 'connection')) expect(c.toLowerCase()).not.toContain('x-hop');
    expect(res.json).toEqual({ name: 'events', method: 'GET', url: '/v1/files/report.json?q=1', length: 0, sha256: createHash('sha256').digest('hex') });
    expect(res.headers['x-request-id']).toBe(headerValue(events.requests[0]!.rawHeaders, 'x-request-id'));
  });

  it('passes an upstream error status and body through as the upstream sent it, not as a gateway error', async () => {
    const res = await gw(kg, '/v1/files/missing', { headers: { 'x-api-key': live.secret, 'x-upstream-status': '404' } });
    expect(res.status).toBe(404);
    expect(res.body.name).toBe('events');
    expect(res.body.error).toBeUndefined();
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('streams a 5 MB PUT body with Content-Length to a non-inspected route intact (same sha256 at the upstream)', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    const res = await rawRequest(`${kg.gatewayUrl}/v1/blobs/big.bin`, { method: 'PUT', headers: { 'x-api-key': live.secret, 'content-type': 'application/octet-stream', 'content-length': String(body.length) }, body });
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    expect(res.body).toMatchObject({ length: body.length, sha256: sha });
    expect(events.requests).toHaveLength(1);
    expect(events.requests[0]!.sha256).toBe(sha);
  });

  it('streams a 5 MB chunked PUT body (no Content-Length) to a non-inspected route intact', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    const res = await rawRequest(`${kg.gatewayUrl}/v1/blobs/chunked.bin`, { method: 'PUT', headers: { 'x-api-key': live.secret, 'content-type': 'application/octet-stream' }, body, chunked: true });
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    expect(res.body).toMatchObject({ length: body.length, sha256: sha });
    expect(events.requests[0]!.sha256).toBe(sha);
  });

  it('streams a request body to the upstream as it arrives on a non-inspected route (the upstream sees the request before the body ends)', async () => {
    const conn = await openRaw(kg.gatewayUrl!);
    try {
      const first = randomBytes(1000);
      const second = randomBytes(1000);
      conn.write(buildRequest('PUT', '/v1/blobs/streamed', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', live.secret], ['Content-Type', 'application/octet-stream'], ['Transfer-Encoding', 'chunked'],
      ]));
      conn.write(`${first.length.toString(16)}\r\n`);
      conn.write(first);
      conn.write('\r\n');
      // The body is not finished, yet the upstream already has the request.
      await events.waitForStarted(1, 2000);
      expect(events.requests).toHaveLength(0);
      conn.write(`${second.length.toString(16)}\r\n`);
      conn.write(second);
      conn.write('\r\n0\r\n\r\n');
      const res = await conn.response();
      expect(res.status, res.text).toBe(200);
      expect(events.requests[0]!.sha256).toBe(createHash('sha256').update(first).update(second).digest('hex'));
    } finally {
      conn.close();
    }
  });

  it('streams the upstream response to the client as it is produced (first part arrives before the upstream ends)', async () => {
    const started = Date.now();
    const res = await fetch(`${kg.gatewayUrl}/v1/files/trickle`, { headers: { 'x-api-key': live.secret, 'x-upstream-trickle': '1500' } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    expect(Buffer.from(first.value!).toString()).toBe('first\n');
    expect(firstAt).toBeLessThan(1000);
    let rest = '';
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += Buffer.from(r.value).toString();
    }
    expect(rest).toBe('second\n');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  });

  it('handles Expect: 100-continue on a streamed PUT: the body is sent after 100 Continue and arrives intact', async () => {
    const conn = await openRaw(kg.gatewayUrl!);
    try {
      const body = randomBytes(64 * 1024);
      conn.write(buildRequest('PUT', '/v1/blobs/expect', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', live.secret], ['Content-Length', String(body.length)], ['Expect', '100-continue'],
      ]));
      const started = Date.now();
      while (!conn.received().toString('latin1').startsWith('HTTP/1.1 100') && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 10));
      expect(conn.received().toString('latin1')).toMatch(/^HTTP\/1\.1 100 /);
      conn.write(body);
      const res = await conn.response();
      expect(res.status, res.text).toBe(200);
      await events.waitFor(1, 2000);
      expect(events.requests[0]!.sha256).toBe(createHash('sha256').update(body).digest('hex'));
      expect(headerValues(events.requests[0]!.rawHeaders, 'expect')).toEqual([]);
    } finally {
      conn.close();
    }
  });

  it('refuses an unauthenticated 5 MB PUT with 401 and forwards nothing', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const res = await rawRequest(`${kg.gatewayUrl}/v1/blobs/big.bin`, { method: 'PUT', headers: { 'x-api-key': 'kg_live_000000000000000000000000_000000', 'content-length': String(body.length) }, body }).catch((err: Error) => err);
    if (res instanceof Error) throw res;
    await expectRefused(res, 401, 'UNAUTHENTICATED', [events, eventsTest]);
  });

  it('puts X-Request-Id on a successful response too, a different one per request', async () => {
    const a = await gw(kg, '/v1/events', { headers: { 'x-api-key': live.secret } });
    const b = await gw(kg, '/v1/events', { headers: { 'x-api-key': live.secret } });
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.headers.get('x-request-id')).toBeTruthy();
    expect(b.headers.get('x-request-id')).toBeTruthy();
    expect(a.headers.get('x-request-id')).not.toBe(b.headers.get('x-request-id'));
  });
});

describe('test environment keys', () => {
  it('sends a test key to the route upstreamTest, which sees X-Keygate-Environment: test', async () => {
    const test = await createKey(kg, { workspaceId: ws, name: 'test-key', environment: 'test', permissions: ['*'] });
    expect(test.secret.startsWith('kg_test_')).toBe(true);
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': test.secret, 'content-type': 'application/json' }, body: '{"action":"a"}' });
    expect(res.status, res.text).toBe(200);
    expect(res.body.name).toBe('events-test');
    expect(eventsTest.requests).toHaveLength(1);
    expect(headerValue(eventsTest.requests[0]!.rawHeaders, 'x-keygate-environment')).toBe('test');
    expect(headerValue(eventsTest.requests[0]!.rawHeaders, 'x-keygate-key-id')).toBe(test.key.id);
    expect(events.requests).toEqual([]);
  });

  it('sends a test key to the route upstream when the route has no upstreamTest, still with X-Keygate-Environment: test', async () => {
    const test = await createKey(kg, { workspaceId: ws, name: 'test-key-2', environment: 'test', permissions: ['*'] });
    const res = await gw(kg, '/v1/events', { headers: { 'x-api-key': test.secret } });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-environment')).toBe('test');
    expect(eventsTest.requests).toEqual([]);
  });

  it('sends a live key to the route upstream, never to upstreamTest', async () => {
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': live.secret, 'content-type': 'application/json' }, body: '{"action":"a"}' });
    expect(res.status, res.text).toBe(200);
    expect(res.body.name).toBe('events');
    expect(events.requests).toHaveLength(1);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-environment')).toBe('live');
    expect(eventsTest.requests).toEqual([]);
  });
});

describe('upstream failures', () => {
  it('answers 502 UPSTREAM_UNAVAILABLE when nothing listens on the upstream port', async () => {
    const res = await gw(kg, '/v1/down', { headers: { 'x-api-key': live.secret } });
    await expectRefused(res, 502, 'UPSTREAM_UNAVAILABLE', [events, eventsTest]);
  });

  it('answers 504 UPSTREAM_TIMEOUT well within 1 s (under 800 ms) when the upstream delays its headers beyond timeoutMs (300 ms)', async () => {
    const started = Date.now();
    const res = await gw(kg, '/v1/slow', { headers: { 'x-api-key': live.secret, 'x-upstream-delay': '3000' } });
    const ms = Date.now() - started;
    expectError(res, 504, 'UPSTREAM_TIMEOUT');
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(800);
    // The upstream did get the request; the gateway gave up waiting, it did not refuse.
    expect(events.requests).toHaveLength(1);
  });

  it('cuts the response when the upstream stalls its body beyond timeoutMs (300 ms) after the headers, and counts an UPSTREAM_TIMEOUT', async () => {
    const before = metricSum(await scrape(kg), 'keygate_requests_total', { outcome: 'UPSTREAM_TIMEOUT' });
    const started = Date.now();
    const res = await fetch(`${kg.gatewayUrl}/v1/slow`, { headers: { 'x-api-key': live.secret, 'x-upstream-trickle': '3000' } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toBe('first\n');
    await expect((async () => { for (;;) if ((await reader.read()).done) return; })()).rejects.toThrow();
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(1500);
    await expect.poll(async () => metricSum(await scrape(kg), 'keygate_requests_total', { outcome: 'UPSTREAM_TIMEOUT' })).toBe(before + 1);
  });

  it('does not cut off a client that reads slowly: the upstream is paused, not stalled (32 MB, client idle 4 × timeoutMs)', async () => {
    const size = 32 * 1024 * 1024;
    const u = new URL(kg.gatewayUrl!);
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    socket.pause();
    socket.write(`GET /v1/slow HTTP/1.1\r\nHost: ${u.host}\r\nX-Api-Key: ${live.secret}\r\nX-Upstream-Size: ${size}\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 1_200));
    let received = 0;
    let head = '';
    await new Promise<void>((resolve) => {
      socket.on('data', (d: Buffer) => {
        if (head.indexOf('\r\n\r\n') === -1) {
          head += d.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end !== -1) received += Buffer.byteLength(head, 'latin1') - end - 4;
        } else received += d.length;
      });
      socket.on('close', () => resolve());
      socket.resume();
    });
    expect(head.slice(0, 12)).toBe('HTTP/1.1 200');
    expect(received).toBe(size);
  });

  it('does not count a slow upload against the upstream: timeoutMs (300 ms) starts once the request is sent', async () => {
    const u = new URL(kg.gatewayUrl!);
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    let text = '';
    socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(`GET /v1/slow HTTP/1.1\r\nHost: ${u.host}\r\nX-Api-Key: ${live.secret}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
    for (let i = 0; i < 3; i++) {
      socket.write('5\r\nhello\r\n');
      await new Promise((r) => setTimeout(r, 400));
    }
    socket.write('0\r\n\r\n');
    await closed;
    expect(text.slice(0, 12), text.slice(0, 300)).toBe('HTTP/1.1 200');
    expect(text).toContain('"length":15');
  });

  it('lets a slow body through when no gap between its parts exceeds timeoutMs, however long it takes in all', async () => {
    const res = await fetch(`${kg.gatewayUrl}/v1/slow`, { headers: { 'x-api-key': live.secret, 'x-upstream-delay': '200', 'x-upstream-trickle': '200' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('first\nsecond\n');
  });

  it('answers 502 UPSTREAM_UNAVAILABLE when the upstream drops the connection without answering', async () => {
    const res = await gw(kg, '/v1/files/drop', { headers: { 'x-api-key': live.secret, 'x-upstream-destroy': '1' } });
    expectError(res, 502, 'UPSTREAM_UNAVAILABLE');
    // And the next request through the same upstream is fine.
    expect((await gw(kg, '/v1/files/after-drop', { headers: { 'x-api-key': live.secret } })).status).toBe(200);
  });

  it('still answers 200 through the 300 ms upstream when it answers within its timeout', async () => {
    const res = await gw(kg, '/v1/slow', { headers: { 'x-api-key': live.secret, 'x-upstream-delay': '50' } });
    expect(res.status, res.text).toBe(200);
  });
});

describe('gateway-made errors', () => {
  it('answers every gateway-made error with exactly {error:{code,message,requestId}}, JSON, and X-Request-Id equal to requestId', async () => {
    const disabled = await createKey(kg, { workspaceId: ws, name: 'off', permissions: ['*'], enabled: false });
    const readOnly = await createKey(kg, { workspaceId: ws, name: 'ro', permissions: ['events.read'] });
    const cases: Array<[Promise<{ status: number; body: any; headers: Headers | Record<string, string> }>, number, string]> = [
      [gw(kg, '/v1/events'), 401, 'UNAUTHENTICATED'],
      [gw(kg, '/v1/events', { headers: { 'x-api-key': 'kg_live_000000000000000000000000_000000' } }), 401, 'UNAUTHENTICATED'],
      [gw(kg, '/v1/events', { headers: { 'x-api-key': disabled.secret } }), 403, 'KEY_DISABLED'],
      [gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': readOnly.secret, 'content-type': 'application/json' }, body: '{"action":"a"}' }), 403, 'PERMISSION_DENIED'],
      [gw(kg, '/v1/nope', { headers: { 'x-api-key': live.secret } }), 404, 'ROUTE_NOT_FOUND'],
      [gw(kg, '/v1/events', { headers: { 'x-api-key': live.secret, authorization: `Bearer ${live.secret}` } }), 400, 'AMBIGUOUS_CREDENTIALS'],
      [sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/%2e%2e/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', live.secret]])).then((r) => ({ ...r, body: r.json })), 400, 'BAD_REQUEST'],
      [gw(kg, '/v1/down', { headers: { 'x-api-key': live.secret } }), 502, 'UPSTREAM_UNAVAILABLE'],
    ];
    const ids = new Set<string>();
    for (const [p, status, code] of cases) {
      const res = await p;
      expectError(res, status, code);
      const ct = res.headers instanceof Headers ? res.headers.get('content-type') : res.headers['content-type'];
      expect(ct).toMatch(/^application\/json/);
      ids.add(res.body.error.requestId);
    }
    expect(ids.size).toBe(cases.length);
    await new Promise((r) => setTimeout(r, 20));
    expect(events.requests).toEqual([]);
  });
});

describe('metrics', () => {
  it('exposes keygate_requests_total{route,outcome,status_class} counting OK and refused requests on the admin /metrics', async () => {
    const ro = await createKey(kg, { workspaceId: ws, name: 'metrics-ro', permissions: ['files.read'] });
    const before = await scrape(kg);
    const okBefore = metricSum(before, 'keygate_requests_total', { route: 'get-file', outcome: 'OK' });
    const deniedBefore = metricSum(before, 'keygate_requests_total', { route: 'stats', outcome: 'PERMISSION_DENIED' });
    const notFoundBefore = metricSum(before, 'keygate_requests_total', { outcome: 'ROUTE_NOT_FOUND' });
    for (let i = 0; i < 3; i++) expect((await gw(kg, `/v1/files/m${i}`, { headers: { 'x-api-key': ro.secret } })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await gw(kg, '/v1/stats', { headers: { 'x-api-key': ro.secret } })).status).toBe(403);
    expect((await gw(kg, '/v1/unknown-route', { headers: { 'x-api-key': ro.secret } })).status).toBe(404);
    const after = await scrape(kg);
    expect(metricSum(after, 'keygate_requests_total', { route: 'get-file', outcome: 'OK' }) - okBefore).toBe(3);
    expect(metricSum(after, 'keygate_requests_total', { route: 'stats', outcome: 'PERMISSION_DENIED' }) - deniedBefore).toBe(2);
    expect(metricSum(after, 'keygate_requests_total', { outcome: 'ROUTE_NOT_FOUND' }) - notFoundBefore).toBe(1);
    for (const s of metricSamples(after).filter((x) => x.name === 'keygate_requests_total')) {
      expect(Object.keys(s.labels).sort()).toEqual(['outcome', 'route', 'status_class']);
    }
  });

  it('exposes keygate_request_duration_seconds with kind="total" and kind="overhead", and keygate_upstream_duration_seconds{upstream}', async () => {
    expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': live.secret } })).status).toBe(200);
    const text = await scrape(kg);
    expect(text).toMatch(/^# TYPE keygate_request_duration_seconds histogram$/m);
    expect(metricSum(text, 'keygate_request_duration_seconds_count', { kind: 'total' })).toBeGreaterThan(0);
    expect(metricSum(text, 'keygate_request_duration_seconds_count', { kind: 'overhead' })).toBeGreaterThan(0);
    expect(text).toMatch(/^# TYPE keygate_upstream_duration_seconds histogram$/m);
    expect(metricSum(text, 'keygate_upstream_duration_seconds_count', { upstream: 'events' })).toBeGreaterThan(0);
    // The overhead never exceeds the total.
    expect(metricSum(text, 'keygate_request_duration_seconds_sum', { kind: 'overhead' }))
      .toBeLessThanOrEqual(metricSum(text, 'keygate_request_duration_seconds_sum', { kind: 'total' }));
  });

  it('exposes key cache hits and misses, store errors and propagation lag', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'cache', permissions: ['*'] });
    const before = await scrape(kg);
    for (let i = 0; i < 3; i++) expect((await gw(kg, '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
    const text = await scrape(kg);
    expect(text).toMatch(/^# TYPE keygate_key_cache_hits_total counter$/m);
    expect(text).toMatch(/^# TYPE keygate_key_cache_misses_total counter$/m);
    expect(metricSum(text, 'keygate_key_cache_misses_total') - metricSum(before, 'keygate_key_cache_misses_total')).toBeGreaterThanOrEqual(1);
    expect(metricSum(text, 'keygate_key_cache_hits_total') - metricSum(before, 'keygate_key_cache_hits_total')).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^# TYPE keygate_store_errors_total counter$/m);
    expect(text).toMatch(/^# TYPE keygate_propagation_lag_seconds histogram$/m);
    // Creating keys above went through the change feed.
    expect(metricSum(text, 'keygate_propagation_lag_seconds_count')).toBeGreaterThan(0);
  });

  it('exposes keygate_rate_limited_total (CONTRACT §5 lists it among the required metrics)', async () => {
    const text = await scrape(kg);
    expect(text).toMatch(/^# TYPE keygate_rate_limited_total counter$/m);
  });

  it('never puts a key id, prefix or secret in a metric label', async () => {
    const text = await scrape(kg);
    const list = await kg.admin('GET', `/v1/keys?workspaceId=${ws}&limit=500`);
    expect(list.status).toBe(200);
    expect(list.body.items.length).toBeGreaterThan(3);
    for (const key of list.body.items as any[]) {
      expect(text).not.toContain(key.id);
      expect(text).not.toContain(key.prefix);
    }
    expect(text).not.toContain(live.secret);
    for (const s of metricSamples(text)) for (const v of Object.values(s.labels)) expect(v).not.toMatch(/^key_|kg_(live|test)_/);
  });
});
