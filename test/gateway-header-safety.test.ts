import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw, metricSum, pollUntil, scrape } from './support/gateway.js';
import { ADMIN_TOKEN, startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, sendRaw } from './support/raw-http.js';
import { bearer, mintToken, postToken, simpleAuthSignature } from './support/tokens.js';
import { headerValue, headerValues, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let kg: Keygate;
let events: RecordingUpstream;
let ups: RecordingUpstream[];
const pair = useUpstreamPair();
let ws: string;
/** Every permission, no lists. */
let open: { key: any; secret: string };
/** Events: `page.*` and `transaction.*` allowed, `transaction.charge` denied. */
let listed: { key: any; secret: string };
/** A profile key with simple authentication. */
let profileKey: { key: any; secret: string };
let salt: string;

beforeAll(async () => {
  ({ events } = pair);
  ups = pair.all;
  kg = await startKeygate({ config: gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest }) });
  ws = await createWorkspace(kg, 'header-safety');
  open = await createKey(kg, { workspaceId: ws, name: 'open', permissions: ['*'] });
  listed = await createKey(kg, {
    workspaceId: ws, name: 'listed', permissions: ['*'], eventAllowlist: ['page.*', 'transaction.*'], eventDenylist: ['transaction.charge'],
  });
  profileKey = await createKey(kg, { workspaceId: ws, name: 'simple-auth', type: 'profile', permissions: ['*'], simpleAuth: { enabled: true } });
  salt = profileKey.key.simpleAuth.salt as string;
});

afterAll(async () => {
  await stopAndClean(kg);
});

/** Writes `bytes` on a fresh connection and resolves with everything received once the gateway closes it. */
function untilClosed(bytes: Buffer, timeoutMs = 5_000): Promise<string> {
  const u = new URL(kg.gatewayUrl!);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) }, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the connection was still open after ${timeoutMs} ms; received ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

describe('profile identities in X-Keygate-Profile', () => {
  const identities: Array<[string, Record<string, string>, string, string]> = [
    ['a CJK custom id', { customId: '用户-42' }, '用户-42', '%E7%94%A8%E6%88%B7-42'],
    ['an emoji custom id', { customId: 'fox-🦊' }, 'fox-🦊', 'fox-%F0%9F%A6%8A'],
    ['an internationalised email', { email: 'jöns@exämple.香港' }, 'jöns@exämple.香港', 'j%C3%B6ns@ex%C3%A4mple.%E9%A6%99%E6%B8%AF'],
    ['a custom id with a space and a percent sign', { customId: 'a b%20c' }, 'a b%20c', 'a%20b%2520c'],
  ];

  for (const [what, identity, value, encoded] of identities) {
    it(`forwards a profile token for ${what} with X-Keygate-Profile percent-encoded as UTF-8, and answers 200 (regression)`, async () => {
      const token = await mintToken(kg, profileKey.secret, { identity, signature: simpleAuthSignature(salt, value) });
      const res = await gw(kg, '/v1/events', { headers: bearer(token) });
      expect(res.status, res.text).toBe(200);
      expect(events.requests).toHaveLength(1);
      const header = headerValue(events.requests[0]!.rawHeaders, 'x-keygate-profile');
      expect(header).toBe(encoded);
      expect(decodeURIComponent(header!)).toBe(value);
    });
  }

  it('forwards a plain ASCII custom id and email unchanged', async () => {
    for (const [identity, value] of [[{ customId: 'user-42_A.b~c' }, 'user-42_A.b~c'], [{ email: 'a+tag@b.example' }, 'a+tag@b.example']] as const) {
      events.reset();
      const token = await mintToken(kg, profileKey.secret, { identity, signature: simpleAuthSignature(salt, value) });
      expect((await gw(kg, '/v1/events', { headers: bearer(token) })).status).toBe(200);
      expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-profile')).toBe(value);
    }
  });

  it('lets a CJK profile token reach its own profile route, the path naming it percent-encoded', async () => {
    const token = await mintToken(kg, profileKey.secret, { identity: { customId: '用户-42' }, signature: simpleAuthSignature(salt, '用户-42') });
    const res = await gw(kg, `/v1/profiles/${encodeURIComponent('用户-42')}`, { method: 'PATCH', headers: { ...bearer(token), 'content-type': 'application/json' }, body: '{}' });
    expect(res.status, res.text).toBe(200);
    expect(headerValue(events.requests[0]!.rawHeaders, 'x-keygate-profile')).toBe('%E7%94%A8%E6%88%B7-42');
  });

  const refused: Array<[string, 'customId' | 'email', string]> = [
    ['CR LF', 'customId', 'user\r\nX-Keygate-Key-Id: forged'],
    ['LF', 'customId', 'user\n42'],
    ['NUL', 'customId', 'user\u000042'],
    ['a C1 control (U+0085)', 'customId', 'user\u008542'],
    ['DEL', 'customId', 'user\u007f42'],
    ['CR LF', 'email', 'a@b.c\r\nx: y'],
    ['NUL', 'email', 'a\u0000@b.c'],
  ];
  for (const [what, field, value] of refused) {
    it(`refuses to mint for an identity.${field} holding ${what} with 400 BAD_REQUEST naming the field (regression)`, async () => {
      const res = await postToken(kg, { apiKey: profileKey.secret, identity: { [field]: value }, signature: simpleAuthSignature(salt, value) });
      await expectRefused(res, 400, 'BAD_REQUEST', ups);
      expect(res.body.error.message).toMatch(new RegExp(`^identity\\.${field}: must not contain control characters`));
    });
  }

  it('refuses to mint for an identity holding a lone surrogate with 400 BAD_REQUEST naming the field', async () => {
    const res = await postToken(kg, `{"apiKey":${JSON.stringify(profileKey.secret)},"identity":{"customId":"user-\\ud800"},"signature":"${'0'.repeat(64)}"}`);
    await expectRefused(res, 400, 'BAD_REQUEST', ups);
    expect(res.body.error.message).toMatch(/^identity\.customId: /);
  });
});

describe('underscore look-alikes of the headers the gateway owns', () => {
  it('never passes a header whose name reads, "_" taken for "-", as a credential, identity, forwarding or hop-by-hop header (regression)', async () => {
    const lookAlikes: Array<[string, string]> = [
      ['X_Keygate_Key_Id', 'key_forged'], ['x_keygate_workspace_id', 'ws_forged'], ['X_KEYGATE_PROFILE', 'someone-else'], ['X-Keygate_Environment', 'test'],
      ['X_Api_Key', 'kg_live_forged'], ['X_Request_Id', 'rid_forged'], ['X_Forwarded_For', '10.9.9.9'], ['X_Forwarded_Host', 'evil.example'],
      ['X_Forwarded_Proto', 'https'], ['Proxy_Authorization', 'Basic Zm9vOmJhcg=='], ['Keep_Alive', 'timeout=5'], ['Proxy_Connection', 'keep-alive'],
    ];
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [
      ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ...lookAlikes, ['X_Custom_Header', 'kept'],
    ]));
    expect(res.status, res.text).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    const names = [];
    for (let i = 0; i < h.length; i += 2) names.push(h[i]!);
    for (const [name] of lookAlikes) expect(names, name).not.toContain(name);
    expect(h.join('\n')).not.toMatch(/forged|10\.9\.9\.9|evil\.example|someone-else/);
    expect(headerValues(h, 'x-keygate-key-id')).toEqual([open.key.id]);
    expect(headerValues(h, 'x_custom_header')).toEqual(['kept']);
  });
});

describe('JSON bodies declared in a charset other than utf-8', () => {
  const smuggling = '{"action":"page.visit+ACI-,+ACI-action+ACI-:+ACI-transaction.charge"}';

  it('refuses the utf-7 smuggling body on an inspected route with 415 UNSUPPORTED_MEDIA_TYPE and forwards nothing (regression)', async () => {
    const res = await gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': listed.secret, 'content-type': 'application/json; charset=utf-7' }, body: smuggling });
    await expectRefused(res, 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
    expect(res.body.error.message).toMatch(/charset/);
  });

  it('refuses utf-16, UTF-16LE, ibm037 and a quoted "UTF-7" on an inspected route with 415, and accepts charset=UTF-8', async () => {
    for (const charset of ['utf-16', 'UTF-16LE', 'ibm037', '"UTF-7"']) {
      const res = await gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': listed.secret, 'content-type': `application/json; charset=${charset}` }, body: '{"action":"page.view"}' });
      await expectRefused(res, 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
    }
    const ok = await gw(kg, '/v1/events', { method: 'POST', headers: { 'x-api-key': listed.secret, 'content-type': 'application/json; charset="UTF-8"' }, body: '{"action":"page.view"}' });
    expect(ok.status, ok.text).toBe(200);
  });

  it('refuses a token request body declared utf-7 with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const res = await postToken(kg, { apiKey: open.secret }, { 'content-type': 'application/json; charset=utf-7' });
    await expectRefused(res, 415, 'UNSUPPORTED_MEDIA_TYPE', ups);
  });

  it('refuses an admin API body declared utf-16 with 415 UNSUPPORTED_MEDIA_TYPE, and creates nothing', async () => {
    const res = await fetch(`${kg.adminUrl}/v1/workspaces`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json; charset=utf-16' }, body: '{"name":"utf16"}',
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const list = await kg.admin('GET', '/v1/workspaces');
    expect(JSON.stringify(list.body)).not.toContain('utf16');
  });
});

describe('a Transfer-Encoding other than chunked', () => {
  it('answers xchunked, gzip, identity and gzip before chunked with 400 BAD_REQUEST and closes the connection, logged and counted as 400, whatever the path (regression)', async () => {
    const before = metricSum(await scrape(kg), 'keygate_requests_total', { outcome: 'BAD_REQUEST' });
    const logFrom = kg.output.length;
    // The access log is written in batches: lines of earlier requests may still come after
    // logFrom, so this test's lines are told by their request ids.
    const ids = new Set<string>();
    const cases: Array<[string, string]> = [['xchunked', '/v1/events'], ['gzip', '/v1/events'], ['identity', '/v1/events'], ['gzip', '/v1/../events'], ['xchunked', '/no/route'], ['gzip, chunked', '/v1/events']];
    for (const [te, target] of cases) {
      const text = await untilClosed(buildRequest('POST', target, [
        ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/json'], ['Transfer-Encoding', te],
      ], '16\r\n{"action":"page.view"}\r\n0\r\n\r\n'));
      expect(text, te).toMatch(/^HTTP\/1\.1 400 /);
      expect(text.toLowerCase(), te).toContain('connection: close');
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; requestId: string } };
      expect(body.error.code, te).toBe('BAD_REQUEST');
      ids.add(body.error.requestId);
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(events.started).toEqual([]);
    const access = (): Array<Record<string, unknown>> => kg.output.slice(logFrom).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' && ids.has(l.requestId as string));
    await pollUntil(async () => access(), (ls) => ls.length >= cases.length, 2_000);
    expect(access().map((l) => [l.status, l.outcome])).toEqual(cases.map(() => [400, 'BAD_REQUEST']));
    expect(metricSum(await scrape(kg), 'keygate_requests_total', { outcome: 'BAD_REQUEST' })).toBe(before + cases.length);
  });

  it('still forwards a request with Transfer-Encoding: chunked, in any case', async () => {
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('PUT', '/v1/blobs/x', [
      ['Host', hostOf(kg.gatewayUrl!)], ['X-Api-Key', open.secret], ['Content-Type', 'application/octet-stream'], ['Transfer-Encoding', 'Chunked'],
    ], '3\r\nabc\r\n0\r\n\r\n'));
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
  });
});
