import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, rawRequest, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, pollUntil, type GatewayResponse } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, openRaw, sendRaw, sendRawMany, type RawHttpResponse } from './support/raw-http.js';
import { headerValue, headerValues, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

/** The gateway's body cap in this suite: small, so "one byte over" is cheap to send. */
const CAP = 1024;
const TIMEOUT_MS = 1500;

let kg: Keygate;
let events: RecordingUpstream;
let ups: RecordingUpstream[];
const pair = useUpstreamPair();
let ws: string;
/** Every permission, no lists. */
let open: { key: any; secret: string };
/** Events: `page.*`, `checkout.start` and `transaction.*` allowed, `transaction.charge` denied. */
let listed: { key: any; secret: string };
/** Profile attributes: only firstName, tags and address. */
let attrs: { key: any; secret: string };

beforeAll(async () => {
  ({ events } = pair);
  ups = pair.all;
  kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest, gateway: { maxBodyBytes: CAP, requestTimeoutMs: TIMEOUT_MS } }) });
  ws = await createWorkspace(kg, 'body-policies');
  open = await createKey(kg, { workspaceId: ws, name: 'open', permissions: ['*'] });
  listed = await createKey(kg, {
    workspaceId: ws, name: 'listed', permissions: ['*'],
    eventAllowlist: ['page.*', 'checkout.start', 'transaction.*'], eventDenylist: ['transaction.charge'],
  });
  attrs = await createKey(kg, { workspaceId: ws, name: 'attrs', permissions: ['*'], profileAttributeAllowlist: ['firstName', 'tags', 'address'] });
});

afterAll(async () => {
  await stopAndClean(kg);
});

/** POSTs a JSON body to the events route with the given key. */
function postEvents(secret: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<GatewayResponse> {
  return gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json', ...headers }, body });
}

function patchProfile(secret: string, body: string, profile = 'user-42'): Promise<GatewayResponse> {
  return gw(kg, `/v1/profiles/${profile}`, { method: 'PATCH', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body });
}

/** A raw request to the events route: exactly these headers (plus Host and the key) and bytes. */
function rawEvents(secret: string, headers: Array<[string, string]>, body?: Buffer | string): Promise<RawHttpResponse> {
  return sendRaw(kg.gatewayUrl!, buildRequest('POST', '/v1/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', secret], ...headers], body));
}

const asResponse = (r: RawHttpResponse) => ({ status: r.status, body: r.json, headers: r.headers });

/** One chunk of a chunked body. */
const chunk = (bytes: Buffer | string): Buffer => {
  const b = Buffer.from(bytes);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
};

/** A connection that reports when the server closes it. */
function watchedSocket(url: string): Promise<{ write(b: Buffer | string): void; closed: Promise<number>; received(): string; destroy(): void }> {
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port) });
  let text = '';
  socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  socket.on('error', () => { /* a reset counts as closed */ });
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => resolve({
      write: (b) => { if (!socket.destroyed) socket.write(b); },
      closed,
      received: () => text,
      destroy: () => socket.destroy(),
    }));
  });
}

/** `{"action":"page.view","pad":"xx…"}` of exactly `size` bytes. */
function eventOfSize(size: number): string {
  const empty = JSON.stringify({ action: 'page.view', pad: '' });
  return JSON.stringify({ action: 'page.view', pad: 'x'.repeat(size - empty.length) });
}

/** The upstream received exactly one request, with exactly these body bytes and their Content-Length. */
async function expectForwarded(res: { status: number }, body: Buffer, path = '/v1/events'): Promise<void> {
  expect(res.status).toBe(200);
  await events.waitFor(1);
  expect(events.requests).toHaveLength(1);
  const got = events.requests[0]!;
  expect(got.url).toBe(path);
  expect(got.body.equals(body), `upstream got ${JSON.stringify(got.body.toString('latin1'))}`).toBe(true);
  expect(headerValue(got.rawHeaders, 'content-length')).toBe(String(body.length));
  expect(headerValues(got.rawHeaders, 'transfer-encoding')).toEqual([]);
}

describe('a refused body never reaches the upstream', () => {
  it('refuses duplicate keys hiding a denied event with 400 INVALID_BODY', async () => {
    const res = await postEvents(listed.secret, '{"action":"transaction.charge","action":"page.view"}');
    await expectRefused(res, 400, 'INVALID_BODY', ups);
    expect(res.body.error.message).toMatch(/duplicate key/);
  });

  it('refuses duplicate keys with 400 INVALID_BODY for a key with no lists too', async () => {
    await expectRefused(await postEvents(open.secret, '{"action":"denied","action":"ok"}'), 400, 'INVALID_BODY', ups);
  });

  it('refuses a duplicate key spelled with escapes ("\\u0061ction") with 400 INVALID_BODY', async () => {
    await expectRefused(await postEvents(listed.secret, '{"action":"page.view","\\u0061ction":"transaction.charge"}'), 400, 'INVALID_BODY', ups);
  });

  it('checks a field name spelled with escapes as decoded: a denied event behind "\\u0061ction" is 403', async () => {
    const res = await postEvents(listed.secret, '{"\\u0061ction":"transaction.charge"}');
    await expectRefused(res, 403, 'EVENT_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"transaction.charge"');
  });

  it('checks an event name spelled with escapes as decoded: "transaction.\\u0063harge" is 403', async () => {
    const res = await postEvents(listed.secret, '{"action":"transaction.\\u0063harge"}');
    await expectRefused(res, 403, 'EVENT_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"transaction.charge"');
  });

  it('refuses an event not on the allowlist with 403 EVENT_NOT_ALLOWED naming it', async () => {
    const res = await postEvents(listed.secret, '{"action":"checkout.done"}');
    await expectRefused(res, 403, 'EVENT_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"checkout.done"');
  });

  it('refuses a whole batch with one denied event among allowed ones, naming it', async () => {
    const body = JSON.stringify([{ action: 'page.view' }, { action: 'checkout.start' }, { action: 'transaction.charge' }, { action: 'page.click' }]);
    const res = await postEvents(listed.secret, body);
    await expectRefused(res, 403, 'EVENT_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"transaction.charge"');
  });

  it('names the first refused event of a batch', async () => {
    const res = await postEvents(listed.secret, JSON.stringify([{ action: 'page.view' }, { action: 'first.bad' }, { action: 'transaction.charge' }]));
    await expectRefused(res, 403, 'EVENT_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"first.bad"');
    expect(res.body.error.message).not.toContain('transaction.charge');
  });

  it('refuses nested arrays where a batch is expected with 400 INVALID_BODY', async () => {
    await expectRefused(await postEvents(open.secret, '[[{"action":"page.view"}],[{"action":"page.view"}]]'), 400, 'INVALID_BODY', ups);
  });

  it('refuses a batch with a nested array after a valid element with 400 INVALID_BODY', async () => {
    await expectRefused(await postEvents(open.secret, '[{"action":"page.view"},[{"action":"page.view"}]]'), 400, 'INVALID_BODY', ups);
  });

  const badFields: Array<[string, string]> = [
    ['missing', '{"event":"page.view"}'],
    ['null', '{"action":null}'],
    ['a number', '{"action":7}'],
    ['an array', '{"action":["page.view"]}'],
    ['an object', '{"action":{"name":"page.view"}}'],
  ];
  for (const [what, body] of badFields) {
    it(`refuses an event field that is ${what} with 400 INVALID_BODY`, async () => {
      const res = await postEvents(open.secret, body);
      await expectRefused(res, 400, 'INVALID_BODY', ups);
      expect(res.body.error.message).toContain('"action"');
    });
  }

  it('refuses a top-level string or number with 400 INVALID_BODY', async () => {
    await expectRefused(await postEvents(open.secret, '"page.view"'), 400, 'INVALID_BODY', ups);
    await expectRefused(await postEvents(open.secret, '42'), 400, 'INVALID_BODY', ups);
  });

  it('refuses a syntax error with 400 INVALID_BODY', async () => {
    await expectRefused(await postEvents(open.secret, '{"action":"page.view",}'), 400, 'INVALID_BODY', ups);
  });

  it('refuses nesting deeper than 64 levels with 400 INVALID_BODY', async () => {
    const deep = `{"action":"page.view","x":${'['.repeat(64)}${']'.repeat(64)}}`;
    await expectRefused(await postEvents(open.secret, deep), 400, 'INVALID_BODY', ups);
  });

  it('refuses invalid UTF-8 with 400 INVALID_BODY', async () => {
    const body = Buffer.concat([Buffer.from('{"action":"page.view","x":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]);
    const res = await postEvents(open.secret, body);
    await expectRefused(res, 400, 'INVALID_BODY', ups);
    expect(res.body.error.message).toMatch(/UTF-8/);
  });

  it('refuses a non-JSON Content-Type with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    await expectRefused(await postEvents(open.secret, '{"action":"page.view"}', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
  });

  it('refuses a body without Content-Type with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const body = '{"action":"page.view"}';
    const res = await rawEvents(open.secret, [['Content-Length', String(body.length)]], body);
    await expectRefused(asResponse(res), 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
  });

  it('refuses two Content-Type headers with 400 BAD_REQUEST', async () => {
    const body = '{"action":"page.view"}';
    const res = await rawEvents(open.secret, [['Content-Type', 'application/json'], ['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]], body);
    await expectRefused(asResponse(res), 400, 'BAD_REQUEST', ups);
  });

  it('refuses two Content-Type headers that both say JSON with 400 BAD_REQUEST', async () => {
    const body = '{"action":"page.view"}';
    const res = await rawEvents(open.secret, [['Content-Type', 'application/json'], ['content-type', 'application/json'], ['Content-Length', String(body.length)]], body);
    await expectRefused(asResponse(res), 400, 'BAD_REQUEST', ups);
  });

  it('refuses Content-Encoding: gzip with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const body = gzipSync('{"action":"page.view"}');
    const res = await rawEvents(open.secret, [['Content-Type', 'application/json'], ['Content-Encoding', 'gzip'], ['Content-Length', String(body.length)]], body);
    await expectRefused(asResponse(res), 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
  });

  it('refuses a body one byte over gateway.maxBodyBytes with 413 BODY_TOO_LARGE', async () => {
    const body = eventOfSize(CAP + 1);
    expect(Buffer.byteLength(body)).toBe(CAP + 1);
    const res = await postEvents(open.secret, body);
    await expectRefused(res, 413, 'BODY_TOO_LARGE', ups);
  });

  it('refuses a declared Content-Length over the cap at once, without waiting for the body', async () => {
    const conn = await openRaw(kg.gatewayUrl!);
    try {
      const t0 = Date.now();
      conn.write(buildRequest('POST', '/v1/events', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', String(CAP * 1000)],
      ]));
      const res = await conn.response(5_000);
      expect(Date.now() - t0, 'answered before the request timeout').toBeLessThan(TIMEOUT_MS - 300);
      await expectRefused(asResponse(res), 413, 'BODY_TOO_LARGE', ups);
      expect(res.headers.connection).toBe('close');
    } finally {
      conn.close();
    }
  });

  it('refuses a chunked body as soon as what arrived passes the cap, without waiting for the rest', async () => {
    const conn = await openRaw(kg.gatewayUrl!);
    try {
      const t0 = Date.now();
      conn.write(buildRequest('POST', '/v1/events', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked'],
      ]));
      conn.write(chunk(eventOfSize(CAP + 1))); // one byte over; the last chunk is never sent
      const res = await conn.response(5_000);
      expect(Date.now() - t0, 'answered before the request timeout').toBeLessThan(TIMEOUT_MS - 300);
      await expectRefused(asResponse(res), 413, 'BODY_TOO_LARGE', ups);
    } finally {
      conn.close();
    }
  });

  it('answers a body sent one byte every 300 ms with 408 REQUEST_TIMEOUT after about gateway.requestTimeoutMs, and closes the connection', async () => {
    const body = '{"action":"page.view","slow":true}';
    const conn = await openRaw(kg.gatewayUrl!);
    let timer: NodeJS.Timeout | undefined;
    try {
      const t0 = Date.now();
      conn.write(buildRequest('POST', '/v1/events', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)],
      ]));
      let sent = 0;
      timer = setInterval(() => {
        if (sent < body.length) conn.write(body[sent++]!);
      }, 300);
      const res = await conn.response(TIMEOUT_MS + 5_000);
      const elapsed = Date.now() - t0;
      clearInterval(timer);
      expect(sent, 'the body was still arriving').toBeLessThan(body.length);
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + 1_000);
      await expectRefused(asResponse(res), 408, 'REQUEST_TIMEOUT', ups);
      expect(res.headers.connection).toBe('close');
    } finally {
      clearInterval(timer);
      conn.close();
    }
  });

  it('closes the connection after a 408 while the client is still sending', async () => {
    const conn = await watchedSocket(kg.gatewayUrl!);
    let timer: NodeJS.Timeout | undefined;
    try {
      const t0 = Date.now();
      conn.write(buildRequest('POST', '/v1/events', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', '1000'],
      ]));
      timer = setInterval(() => conn.write(' '), 100);
      const closedAt = await Promise.race([conn.closed, new Promise<number>((r) => setTimeout(() => r(-1), TIMEOUT_MS + 3_000))]);
      expect(closedAt, 'the server closed the connection').toBeGreaterThan(0);
      expect(closedAt - t0).toBeLessThan(TIMEOUT_MS + 1_000);
      expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(events.started).toEqual([]);
    } finally {
      clearInterval(timer);
      conn.destroy();
    }
  });

  it('closes the connection after a 413 without reading the rest of the body', async () => {
    const conn = await watchedSocket(kg.gatewayUrl!);
    try {
      conn.write(buildRequest('POST', '/v1/events', [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', String(CAP * 100)],
      ], Buffer.alloc(CAP * 2, 0x20)));
      const closedAt = await Promise.race([conn.closed, new Promise<number>((r) => setTimeout(() => r(-1), TIMEOUT_MS + 3_000))]);
      expect(closedAt, 'the server closed the connection').toBeGreaterThan(0);
      expect(conn.received()).toMatch(/^HTTP\/1\.1 413 /);
      expect(events.started).toEqual([]);
    } finally {
      conn.destroy();
    }
  });

  it('keeps a connection usable after refusing a body it did not read: the next pipelined request is parsed from the right byte', async () => {
    const host = hostOf(kg.gatewayUrl!);
    const smuggled = buildRequest('POST', '/v1/events', [['Host', host], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', '22']], '{"action":"smuggled"}\n');
    const good = Buffer.from('{"action":"page.view"}');
    const bytes = Buffer.concat([
      // Refused by Content-Type before its body is read; the body looks like a request of its own.
      buildRequest('POST', '/v1/events', [['Host', host], ['X-Api-Key', open.secret], ['Content-Type', 'text/plain'], ['Content-Length', String(smuggled.length)]], smuggled),
      // Refused for a duplicate key after its body was read.
      buildRequest('POST', '/v1/events', [['Host', host], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', '17']], '{"a":"x","a":"y"}'),
      buildRequest('POST', '/v1/events', [['Host', host], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', String(good.length)]], good),
    ]);
    const [r1, r2, r3] = await sendRawMany(kg.gatewayUrl!, bytes, 3);
    expect(r1?.status, r1?.text).toBe(415);
    expect(r2?.status, r2?.text).toBe(400);
    expect(r2?.json.error.code).toBe('INVALID_BODY');
    expect(r3?.status, r3?.text).toBe(200);
    await events.waitFor(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(events.requests).toHaveLength(1);
    expect(events.requests[0]!.body.equals(good)).toBe(true);
  });

  it('does not read the body of a request without a credential: 401, not a body error', async () => {
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"action":"a","action":"b"}' });
    await expectRefused(res, 401, 'UNAUTHENTICATED', ups);
  });
});

describe('a client that leaves while sending an inspected body', () => {
  it('counts a client that leaves while sending an inspected body as a closed request, not as a gateway fault', async () => {
    const conn = await watchedSocket(kg.gatewayUrl!);
    const before = kg.output.length;
    conn.write(buildRequest('POST', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Content-Length', '100'],
    ], '{"action":'));
    await new Promise((r) => setTimeout(r, 100));
    conn.destroy();
    const lines = (): Array<Record<string, unknown>> => kg.output.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    await pollUntil(async () => lines(), (ls) => ls.some((l) => l.msg === 'request' || l.level === 'error' || l.level === 'fatal'), 2_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(lines().filter((l) => l.level === 'error' || l.level === 'fatal'), 'no error is logged').toEqual([]);
    const access = lines().filter((l) => l.msg === 'request' && l.route === 'send-events');
    expect(access, 'one access-log line for the request').toHaveLength(1);
    expect(access[0]).toMatchObject({ keyId: open.key.id, outcome: 'CLIENT_CLOSED' });
    expect(events.started).toEqual([]);
  });
});

describe('forwarding an allowed body', () => {
  it('forwards an allowed event with exactly the bytes received (odd whitespace, key order, escapes) and their Content-Length', async () => {
    const body = Buffer.from(' {\r\n\t"z" : 1,\n  "action"  :\t"page.\\u0076iew" , "ü":"✓\\n", "a":[ ] , "n":1.50E+2 }  \n', 'utf8');
    const res = await rawEvents(listed.secret, [['Content-Type', 'application/json; charset=utf-8'], ['Content-Length', String(body.length)]], body);
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body);
    expect(headerValue(events.requests[0]!.rawHeaders, 'content-type')).toBe('application/json; charset=utf-8');
    expect(res.json.sha256).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('forwards the same bytes with a Content-Length when the client sent the body chunked', async () => {
    const body = Buffer.from('{ "action" : "checkout.start",\n "items":[{"sku":"A-1","qty":2}], "note":"ü✓😀" }', 'utf8');
    const parts = [body.subarray(0, 5), body.subarray(5, 31), body.subarray(31, 70), body.subarray(70)]; // splits inside multi-byte characters
    const raw = Buffer.concat([
      buildRequest('POST', '/v1/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', listed.secret], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']]),
      ...parts.map(chunk), Buffer.from('0\r\n\r\n'),
    ]);
    const res = await sendRaw(kg.gatewayUrl!, raw);
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body);
  });

  it('forwards a chunked body whose chunks arrive over time', async () => {
    const body = Buffer.from('{"action":"page.scroll","depth":[1,2,3]}');
    const conn = await openRaw(kg.gatewayUrl!);
    try {
      conn.write(buildRequest('POST', '/v1/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', listed.secret], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']]));
      for (let k = 0; k < body.length; k += 10) {
        conn.write(chunk(body.subarray(k, k + 10)));
        await new Promise((r) => setTimeout(r, 30));
      }
      conn.write('0\r\n\r\n');
      const res = await conn.response(5_000);
      expect(res.status, res.text).toBe(200);
      await expectForwarded(res, body);
    } finally {
      conn.close();
    }
  });

  it('forwards a body exactly at gateway.maxBodyBytes', async () => {
    const body = eventOfSize(CAP);
    expect(Buffer.byteLength(body)).toBe(CAP);
    const res = await postEvents(open.secret, body);
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, Buffer.from(body));
  });

  it('forwards a chunked body exactly at gateway.maxBodyBytes', async () => {
    const body = Buffer.from(eventOfSize(CAP));
    const raw = Buffer.concat([
      buildRequest('POST', '/v1/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']]),
      chunk(body.subarray(0, 500)), chunk(body.subarray(500)), Buffer.from('0\r\n\r\n'),
    ]);
    const res = await sendRaw(kg.gatewayUrl!, raw);
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body);
  });

  it('forwards an allowed batch whole', async () => {
    const body = Buffer.from(JSON.stringify([{ action: 'page.view' }, { action: 'checkout.start', cart: { total: 3 } }, { action: 'transaction.refund' }]));
    const res = await postEvents(listed.secret, body);
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body);
  });

  it('forwards an event by a +json type and Content-Encoding: identity', async () => {
    const body = Buffer.from('{"action":"page.view"}');
    const res = await rawEvents(listed.secret, [['Content-Type', 'application/vnd.acme.events+json'], ['Content-Encoding', 'identity'], ['Content-Length', String(body.length)]], body);
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body);
  });

  it('forwards the bytes received to the test upstream for a test key', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'test-env', environment: 'test', permissions: ['*'], eventAllowlist: ['page.*'] });
    const body = Buffer.from('{ "action":"page.view" ,"t":1}');
    const res = await postEvents(k.secret, body);
    expect(res.status, res.text).toBe(200);
    await pair.eventsTest.waitFor(1);
    expect(pair.eventsTest.requests[0]!.body.equals(body)).toBe(true);
    expect(headerValue(pair.eventsTest.requests[0]!.rawHeaders, 'content-length')).toBe(String(body.length));
    expect(events.started).toEqual([]);
    await expectRefused(await postEvents(k.secret, '{"action":"checkout.start"}'), 403, 'EVENT_NOT_ALLOWED', []);
  });

  it('applies a denylist changed by admin PATCH to the next request', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'propagation', permissions: ['*'] });
    expect((await postEvents(k.secret, '{"action":"page.view"}')).status).toBe(200);
    const patch = await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { eventDenylist: ['page.*'] });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    await events.waitFor(1);
    events.reset();
    const res = await postEvents(k.secret, '{"action":"page.view"}');
    await expectRefused(res, 403, 'EVENT_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"page.view"');
    expect((await kg.admin('PATCH', `/v1/keys/${k.key.id}`, { eventDenylist: [] })).status).toBe(200);
    expect((await postEvents(k.secret, '{"action":"page.view"}')).status).toBe(200);
  });

  it('does not count a refused body against the rate limit', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'limited', permissions: ['*'], eventDenylist: ['bad'], rateLimit: { limit: 1, windowSeconds: 60 } });
    await expectRefused(await postEvents(k.secret, '{"action":"bad"}'), 403, 'EVENT_NOT_ALLOWED', ups);
    await expectRefused(await postEvents(k.secret, '{"action":1}'), 400, 'INVALID_BODY', ups);
    expect((await postEvents(k.secret, '{"action":"good"}')).status).toBe(200);
    expect((await postEvents(k.secret, '{"action":"good"}')).status).toBe(429);
  });

  it('streams the body of a route without body policies untouched and uncapped (a GET body many times the cap)', async () => {
    const body = randomBytes(CAP * 2048 + 7); // 2 MiB and a bit, not JSON
    const res = await rawRequest(`${kg.gatewayUrl}/v1/events?bulk=1`, {
      method: 'GET',
      headers: { 'x-api-key': open.secret, 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
      body,
    });
    expect(res.status, res.text).toBe(200);
    await events.waitFor(1);
    const got = events.requests[0]!;
    expect(got.method).toBe('GET');
    expect(got.url).toBe('/v1/events?bulk=1');
    expect(got.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(res.body.length).toBe(body.length);
    expect(headerValue(got.rawHeaders, 'content-length')).toBe(String(body.length));
  });

  it('streams a chunked body on a route without body policies, however it is encoded', async () => {
    const body = gzipSync(randomBytes(CAP * 4));
    const res = await rawRequest(`${kg.gatewayUrl}/v1/events`, {
      method: 'GET',
      headers: { 'x-api-key': open.secret, 'content-type': 'text/plain', 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' },
      body,
      chunked: true,
    });
    expect(res.status, res.text).toBe(200);
    await events.waitFor(1);
    expect(events.requests[0]!.body.equals(body)).toBe(true);
  });
});

describe('profile attributes', () => {
  it('forwards a profile update whose attributes are all allowed, byte for byte', async () => {
    const body = Buffer.from('{"firstName":"Ada", "tags":["a","b"]}');
    const res = await patchProfile(attrs.secret, body.toString());
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body, '/v1/profiles/user-42');
    expect(events.requests[0]!.method).toBe('PATCH');
  });

  it('refuses a profile update with an attribute not on the allowlist with 403 ATTRIBUTE_NOT_ALLOWED naming it', async () => {
    const res = await patchProfile(attrs.secret, '{"firstName":"Ada","email":"ada@example.com"}');
    await expectRefused(res, 403, 'ATTRIBUTE_NOT_ALLOWED', ups);
    expect(res.body.error.message).toContain('"email"');
  });

  it('forwards a nested object under an allowed attribute whole', async () => {
    const body = Buffer.from('{"address":{"street":"1 Main St","email":"not an attribute here","geo":{"lat":1.5}}}');
    const res = await patchProfile(attrs.secret, body.toString());
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body, '/v1/profiles/user-42');
  });

  it('forwards any attributes for a key with an empty allowlist', async () => {
    const body = Buffer.from('{"email":"x@example.com","anything":1}');
    const res = await patchProfile(open.secret, body.toString());
    expect(res.status, res.text).toBe(200);
    await expectForwarded(res, body, '/v1/profiles/user-42');
  });

  it('refuses a profile update that is an array with 400 INVALID_BODY', async () => {
    await expectRefused(await patchProfile(attrs.secret, '[{"firstName":"Ada"}]'), 400, 'INVALID_BODY', ups);
  });

  it('refuses a duplicate attribute with 400 INVALID_BODY', async () => {
    await expectRefused(await patchProfile(attrs.secret, '{"firstName":"Ada","firstName":"Eve"}'), 400, 'INVALID_BODY', ups);
  });
});

describe('deeply nested bodies', () => {
  let big: Keygate;
  let secret: string;

  beforeAll(async () => {
    big = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest, gateway: { maxBodyBytes: 512 * 1024 } }) });
    const w = await createWorkspace(big, 'deep');
    secret = (await createKey(big, { workspaceId: w, name: 'deep', permissions: ['*'] })).secret;
  });

  afterAll(async () => {
    await stopAndClean(big);
  });

  it('refuses 100 000 nested brackets (under the cap) with 400 INVALID_BODY and keeps serving', async () => {
    const body = '['.repeat(100_000) + ']'.repeat(100_000);
    const res = await gw(big, '/v1/events', { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body });
    await expectRefused(res, 400, 'INVALID_BODY', ups);
    expect(big.proc.exitCode).toBeNull();
    expect(big.proc.signalCode).toBeNull();
    const ok = await gw(big, '/v1/events', { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body: '{"action":"page.view"}' });
    expect(ok.status, ok.text).toBe(200);
    await events.waitFor(1);
  });

  it('refuses 20 000 nested objects with 400 INVALID_BODY and keeps serving', async () => {
    const body = '{"action":"a","x":'.repeat(20_000) + '1' + '}'.repeat(20_000);
    expect(body.length).toBeLessThan(512 * 1024);
    const res = await gw(big, '/v1/events', { method: 'POST', headers: { 'x-api-key': secret, 'content-type': 'application/json' }, body });
    await expectRefused(res, 400, 'INVALID_BODY', ups);
    expect((await gw(big, '/v1/events', { headers: { 'x-api-key': secret } })).status).toBe(200);
  });
});

describe('a request trickled in past gateway.requestTimeoutMs (slowloris)', () => {
  /** Writes `head`, then one more byte of `rest` every 200 ms, until the answer comes; the answer and when it came. */
  async function trickle(head: string, rest: string): Promise<{ res: RawHttpResponse; elapsed: number; sent: number }> {
    const conn = await openRaw(kg.gatewayUrl!);
    let timer: NodeJS.Timeout | undefined;
    try {
      const t0 = Date.now();
      conn.write(head);
      let sent = 0;
      timer = setInterval(() => {
        if (sent < rest.length) conn.write(rest[sent++]!);
      }, 200);
      const res = await conn.response(TIMEOUT_MS + 5_000);
      return { res, elapsed: Date.now() - t0, sent };
    } finally {
      clearInterval(timer);
      conn.close();
    }
  }

  it('answers request headers trickled past the timeout with 408 REQUEST_TIMEOUT, not 400, and closes the connection (regression)', async () => {
    const headers = `Host: ${hostOf(kg.gatewayUrl!)}\r\nX-Api-Key: ${open.secret}\r\nX-Pad: ${'p'.repeat(100)}\r\n\r\n`;
    const { res, elapsed, sent } = await trickle('GET /v1/events HTTP/1.1\r\n', headers);
    expect(sent, 'the headers were still arriving').toBeLessThan(headers.length);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 2_000);
    expect(res.status).toBe(408);
    expect(res.json.error.code).toBe('REQUEST_TIMEOUT');
    expect(res.json.error.requestId).toBe(res.headers['x-request-id']);
    expect(res.headers.connection).toBe('close');
    expect(events.started).toEqual([]);
  });

  it('answers a streamed body trickled past the timeout with 408 REQUEST_TIMEOUT and closes the connection (regression)', async () => {
    const startedBefore = events.started.length;
    const body = 'x'.repeat(200);
    const head = buildRequest('PUT', '/v1/blobs/slow', [
      ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/octet-stream'], ['Content-Length', String(body.length)],
    ]).toString('latin1');
    const { res, elapsed, sent } = await trickle(head, body);
    expect(sent, 'the body was still arriving').toBeLessThan(body.length);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 2_000);
    expect(res.status).toBe(408);
    expect(res.json.error.code).toBe('REQUEST_TIMEOUT');
    expect(res.json.error.requestId).toBe(res.headers['x-request-id']);
    expect(res.headers.connection).toBe('close');
    // It had been forwarded (the route streams), and the upstream never answered it.
    expect(events.started.length).toBe(startedBefore + 1);
    expect(events.requests.filter((r) => r.url === '/v1/blobs/slow')).toEqual([]);
  });

  it('answers a POST /auth/token body trickled past the timeout with 408 REQUEST_TIMEOUT (regression)', async () => {
    const body = JSON.stringify({ apiKey: open.secret });
    const head = buildRequest('POST', '/auth/token', [
      ['Host', hostOf(kg.gatewayUrl!)], ['Content-Type', 'application/json'], ['Content-Length', String(body.length)],
    ]).toString('latin1');
    const { res, elapsed, sent } = await trickle(head, body);
    expect(sent, 'the body was still arriving').toBeLessThan(body.length);
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 2_000);
    expect(res.status).toBe(408);
    expect(res.json.error.code).toBe('REQUEST_TIMEOUT');
    expect(res.headers.connection).toBe('close');
  });
});
