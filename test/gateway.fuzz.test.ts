import fc from 'fast-check';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../src/errors.js';
import { createKey, createWorkspace, stopAndClean } from './helpers/admin.js';
import { gatewayConfig } from './helpers/gateway.js';
import { fuzz, fuzzTimeout } from './helpers/fuzz.js';
import { startKeygate, type Keygate } from './helpers/keygate.js';
import { buildRequest, hostOf, openRaw, sendRaw } from './helpers/raw-http.js';
import { headerValues, useUpstreamPair, type RecordingUpstream } from './helpers/upstream.js';
import { editPayload, segment } from './helpers/tokens.js';

// Generated requests against one real `keygate serve` and real recording upstreams that
// always answer 200: whatever the request, the gateway answers (over a raw socket or undici),
// never with a 5xx, only with the upstream's answer, a local endpoint's, or a catalogued error;
// and no request whose client got a 4xx reached an upstream.

let kg: Keygate;
let ups: RecordingUpstream[];
let host: string;
let client: Client;
const pair = useUpstreamPair();
/** Credentials and ids known once keys exist; generators pick from them by index. */
const known = { secrets: [] as string[], keyIds: [] as string[], workspaceId: '', token: '' };

beforeAll(async () => {
  ups = pair.all;
  const base = gatewayConfig({ events: pair.events, eventsTest: pair.eventsTest });
  // Only routes whose upstream is up: the "slow" and "down" routes answer 504 and 502 by design.
  kg = await startKeygate({
    config: (dir) => {
      const config = base(dir) as { routes: Array<{ name: string }> };
      return { ...config, routes: config.routes.filter((r) => r.name !== 'slow' && r.name !== 'down') };
    },
  });
  host = hostOf(kg.gatewayUrl!);
  client = new Client(kg.gatewayUrl!, { pipelining: 0 });
  const ws = await createWorkspace(kg, 'fuzz');
  known.workspaceId = ws;
  const keys = [
    await createKey(kg, { workspaceId: ws, name: 'all', permissions: ['*'], basicAuth: true, eventDenylist: ['transaction.*'], profileAttributeAllowlist: ['firstName', 'tags'] }),
    await createKey(kg, { workspaceId: ws, name: 'events-only', permissions: ['events.create'], eventAllowlist: ['page.*'] }),
    await createKey(kg, { workspaceId: ws, name: 'profile', type: 'profile', permissions: ['*'] }),
    await createKey(kg, { workspaceId: ws, name: 'test-env', environment: 'test', permissions: ['*'], ipAllowlist: ['127.0.0.0/8'] }),
    await createKey(kg, { workspaceId: ws, name: 'elsewhere', permissions: ['*'], ipAllowlist: ['203.0.113.0/24'] }),
  ];
  known.secrets = keys.map((k) => k.secret);
  known.keyIds = keys.map((k) => k.key.id as string);
  const minted = await fetch(`${kg.gatewayUrl}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: known.secrets[0] }) });
  known.token = ((await minted.json()) as { token: string }).token;
});

afterAll(async () => {
  await client?.close();
  await stopAndClean(kg);
});

const CATALOGUED = new Set<number>(Object.values(ERROR_CATALOGUE).map((e) => e.status));
/** What the config routes (and the gateway's own endpoints) accept, and paths no route has. */
const ENDPOINTS: Array<[string, string]> = [
  ['POST', '/v1/events'], ['GET', '/v1/events'], ['PATCH', '/v1/profiles/p1'], ['GET', '/v1/profiles/p1'], ['PUT', '/v1/blobs/a/b'],
  ['GET', '/v1/files/x.txt'], ['GET', '/v1/stats'], ['POST', '/auth/token'], ['GET', '/.well-known/jwks.json'], ['GET', '/'], ['GET', '/nope'],
];
const METHODS = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'get', 'TRACE'];

/** A method and target: mostly a route's own, else any method, path tricks (dot segments, encodings) and odd queries. */
const methodAndTarget = fc.tuple(
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ENDPOINTS.slice(0, 7)) }, { weight: 1, arbitrary: fc.constantFrom(...ENDPOINTS.slice(7)) }),
  fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
  fc.oneof(
    { weight: 8, arbitrary: fc.constant([] as string[]) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom('/', '/..', '/.', '/%2e%2e', '/%2E', '%2f', '%5c', '\\', ';x=1', '%00', '/a', '/%C3%BC', '/.well-known', '//', '%', '%zz', '*', '#f'), { minLength: 1, maxLength: 3 }) },
  ),
  fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.array(fc.constantFrom('a=1', 'next=/../x', 'enc=%2F%2e', 'q=a;b', 'x', '', '?', '%', '#'), { maxLength: 3 }).map((q) => `?${q.join('&')}`) }),
).map(([[routeMethod, path], method, tricks, q]) => ({ method: method ?? routeMethod, target: `${path}${tricks.join('')}${q ?? ''}` }));

type Header = [string, string];
/** Credential headers by recipe, resolved against the keys once they exist. */
const credential = fc.oneof(
  fc.tuple(fc.constantFrom('X-Api-Key', 'x-api-key', 'X-API-KEY'), fc.nat(4), fc.constantFrom('', ' ', 'x')).map(([n, k, pad]) => ({ kind: 'secret' as const, name: n, key: k, pad })),
  fc.tuple(fc.mixedCase(fc.constant('bearer')), fc.nat(4)).map(([scheme, k]) => ({ kind: 'bearer' as const, scheme, key: k })),
  fc.mixedCase(fc.constant('bearer')).map((scheme) => ({ kind: 'token' as const, scheme })),
  fc.constantFrom('forged-payload', 'alg-none', 'truncated').map((how) => ({ kind: 'bad-token' as const, how })),
  // Padded base64 only: unpadded Basic credentials are refused today, a known defect fixed
  // separately; both answers are 4xx, so the properties below would hold either way.
  fc.tuple(fc.mixedCase(fc.constant('basic')), fc.nat(4), fc.boolean()).map(([scheme, k, rightWs]) => ({ kind: 'basic' as const, scheme, key: k, rightWs })),
  fc.constantFrom('', 'Bearer', 'Bearer ', 'Basic !!!', 'Digest x', 'Bearer kg_live_x', 'Basic Og==', 'bearer a.b.c').map((v) => ({ kind: 'raw' as const, value: v })),
);
type CredentialRecipe = typeof credential extends fc.Arbitrary<infer T> ? T : never;

function credentialHeader(c: CredentialRecipe): Header {
  switch (c.kind) {
    case 'secret': return [c.name, c.pad === 'x' ? `${known.secrets[c.key]!}x` : `${c.pad}${known.secrets[c.key]!}${c.pad}`];
    case 'bearer': return ['Authorization', `${c.scheme} ${known.secrets[c.key]!}`];
    case 'token': return ['Authorization', `${c.scheme} ${known.token}`];
    case 'bad-token': {
      const forged = c.how === 'forged-payload' ? editPayload(known.token, (p) => ({ ...p, sub: known.keyIds[1] }))
        : c.how === 'alg-none' ? `${segment({ alg: 'none', typ: 'JWT' })}.${known.token.split('.')[1]!}.`
          : known.token.slice(0, -5);
      return ['Authorization', `Bearer ${forged}`];
    }
    case 'basic': {
      const ws = c.rightWs ? known.workspaceId : '00000000-0000-4000-8000-000000000000';
      return ['Authorization', `${c.scheme} ${Buffer.from(`${ws}:${known.secrets[c.key]!}`).toString('base64')}`];
    }
    case 'raw': return ['Authorization', c.value];
  }
}

/** Headers a client may add that the gateway must strip, ignore or refuse. */
const oddHeader = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom<Header>(
    ['X-Keygate-Key-Id', 'key_forged'], ['x-keygate-workspace-id', 'ws_forged'], ['X-Keygate-Environment', 'live'], ['X-Keygate-Profile', 'p1'],
    ['X-Keygate-Key-Type', 'workspace'], ['X-Forwarded-For', '203.0.113.7'], ['Forwarded', 'for=203.0.113.7'], ['X-Real-IP', '203.0.113.7'],
    ['Connection', 'keep-alive, X-Custom'], ['X-Custom', '1'], ['Connection', 'close'], ['Keep-Alive', 'timeout=5'], ['TE', 'trailers'],
    ['Proxy-Authorization', 'Basic eDp5'], ['Expect', '100-continue'], ['Content-Encoding', 'gzip'], ['Content-Encoding', 'identity'],
    ['Upgrade', 'websocket'], ['Cookie', 'a=1'], ['Accept-Encoding', 'gzip'], ['X-Request-Id', 'client-chosen'],
  ) },
  // Underscore look-alikes of keygate's headers reach the upstream today (a known defect fixed
  // separately); they are sent, but the forwarded-header check below reads the dash forms only.
  { weight: 1, arbitrary: fc.constantFrom<Header>(['X_Keygate_Key_Id', 'key_forged'], ['X_Api_Key', 'kg_live_x']) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('X-Odd', 'x-odd'), fc.string({ unit: 'binary-ascii', maxLength: 12 }).map((v) => v.replace(/[\0-\x1f\x7f]/g, ' '))).map(([n, v]): Header => [n, v]) },
  // Latin-1 (obs-text) in values, and a name outside the token characters.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('X-Odd', 'X-Odd-\u00e9'), fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 12 }))
    .map(([n, v]): Header => [n, v]) },
);

const contentType = fc.constantFrom('application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/vnd.api+json', 'text/plain', 'application/json; charset=utf-7', '', 'multipart/form-data');
const body = fc.oneof(
  { depthSize: 'small' },
  fc.constantFrom('page.view', 'page.visit', 'transaction.charge', 'other', '').map((a) => JSON.stringify({ action: a })),
  fc.array(fc.constantFrom('page.view', 'transaction.refund', 'x'), { maxLength: 3 }).map((as) => JSON.stringify(as.map((action) => ({ action })))),
  fc.constantFrom('{"action":"page.view","action":"transaction.charge"}', '{"firstName":"a"}', '{"firstName":"a","admin":true}', '{"tags":[1],"tags":[2]}',
    '{', '', 'null', '[]', '[[]]', '{"action":1}', '"x"', '{"apiKey":"kg_live_x"}', '{"action":"page.view"}garbage', '{"__proto__":{"action":"x"}}',
    '{"action":"page.visit+ACI-,+ACI-action+ACI-:+ACI-transaction.charge"}', '\u00ff\u00fe{'),
  fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('latin1')),
  fc.constantFrom('['.repeat(70) + ']'.repeat(70), `{"action":"page.view","pad":"${'x'.repeat(2000)}"}`),
).map((s) => Buffer.from(s, 'latin1'));

const request = fc.record({
  methodAndTarget,
  credentials: fc.oneof({ weight: 4, arbitrary: credential.map((c) => [c]) }, { weight: 1, arbitrary: fc.array(credential, { maxLength: 3 }) }),
  odd: fc.array(oddHeader, { maxLength: 2 }),
  hosts: fc.oneof({ weight: 12, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constantFrom(0, 2) }),
  contentType: fc.option(contentType, { freq: 5 }),
  body: fc.option(body, { freq: 5 }),
  // Content-Length, or chunked. Transfer-Encoding other than chunked is left out: the gateway
  // closes such a connection with no answer today (a known defect fixed separately).
  framing: fc.constantFrom('length', 'length', 'chunked'),
  viaUndici: fc.boolean(),
});
type GeneratedRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;


interface Answer { status: number; headers: Record<string, string>; text: string }

let seq = 0;
async function send(g: GeneratedRequest): Promise<{ answer: Answer; headers: Header[]; target: string }> {
  const r = { ...g, ...g.methodAndTarget };
  const headers: Header[] = [];
  for (let i = 0; i < r.hosts; i++) headers.push(['Host', host]);
  for (const c of r.credentials) headers.push(credentialHeader(c));
  headers.push(...r.odd, ['X-Fuzz-Seq', String(++seq)]);
  if (r.contentType !== null) headers.push(['Content-Type', r.contentType]);
  const bytes = r.body;
  const printable = (s: string): boolean => /^[\x21-\x7e]*$/.test(s);
  const undiciCan = r.viaUndici && r.hosts === 1 && /^[A-Z]+$/.test(r.method) && printable(r.target) && r.framing === 'length'
    && headers.every(([n, v]) => printable(n) && /^[\x20-\x7e]*$/.test(v) && !/^(connection|keep-alive|upgrade|expect|te|host)$/i.test(n));
  if (undiciCan) {
    const res = await client.request({
      method: r.method as 'GET', path: r.target, headers: headers.filter(([n]) => n.toLowerCase() !== 'host').flat(),
      ...(bytes !== null && r.method !== 'GET' && r.method !== 'HEAD' ? { body: bytes } : {}),
    });
    const flat: Record<string, string> = {};
    for (const [n, v] of Object.entries(res.headers)) flat[n] = Array.isArray(v) ? v.join(', ') : v ?? '';
    return { answer: { status: res.statusCode, headers: flat, text: await res.body.text() }, headers, target: r.target };
  }
  if (bytes !== null) {
    if (r.framing === 'chunked') headers.push(['Transfer-Encoding', 'chunked']);
    else headers.push(['Content-Length', String(bytes.length)]);
  }
  const payload = bytes === null ? undefined : r.framing === 'chunked'
    ? Buffer.concat([Buffer.from(bytes.length > 0 ? `${bytes.length.toString(16)}\r\n` : ''), bytes, Buffer.from(bytes.length > 0 ? '\r\n0\r\n\r\n' : '0\r\n\r\n')])
    : bytes;
  const wire = buildRequest(r.method, r.target, headers, payload);
  if (r.method === 'HEAD') return { answer: await headAnswer(wire), headers, target: r.target };
  const res = await sendRaw(kg.gatewayUrl!, wire, 15_000);
  return { answer: { status: res.status, headers: res.headers, text: res.text }, headers, target: r.target };
}

/** The answer to a HEAD has headers only (its Content-Length describes a body not sent). */
async function headAnswer(bytes: Buffer): Promise<Answer> {
  const conn = await openRaw(kg.gatewayUrl!);
  try {
    conn.write(bytes);
    const deadline = Date.now() + 15_000;
    let from = 0;
    let lines: string[];
    for (;;) {
      const head = conn.received().indexOf('\r\n\r\n', from);
      if (head === -1) {
        if (Date.now() > deadline) throw new Error(`no answer to HEAD: ${JSON.stringify(conn.received().toString('latin1'))}`);
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      lines = conn.received().subarray(from, head).toString('latin1').split('\r\n');
      from = head + 4;
      // An interim answer (100 Continue) comes before the final one.
      if (!/^HTTP\/1\.1 1\d\d /.test(lines[0]!)) break;
    }
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] ??= line.slice(colon + 1).trim();
    }
    return { status: Number(lines[0]!.split(' ')[1]), headers, text: '' };
  } finally {
    conn.close();
  }
}

const started = (): number => ups.reduce((n, u) => n + u.started.length, 0);

describe('the gateway under generated requests (property-based)', () => {
  it('answers every request, never with a 5xx, only with a catalogued code, and forwards nothing it refused', async () => {
    let forwarded = 0;
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const before = started();
      const { answer, target } = await send(r);
      const { method } = r.methodAndTarget;
      const what = `${method} ${JSON.stringify(target)} → ${answer.status} ${answer.text.slice(0, 300)}`;
      expect(answer.status, what).toBeLessThan(500);
      expect(answer.status === 200 || CATALOGUED.has(answer.status), what).toBe(true);
      const fromUpstream = answer.headers['x-upstream-name'] !== undefined;
      if (fromUpstream) {
        forwarded++;
        expect(answer.status, what).toBe(200);
        return;
      }
      // A refusal (or a local endpoint's answer) reached no upstream.
      expect(started() - before, `${what}: the upstream saw it`).toBe(0);
      if (answer.status === 200) {
        expect(['/auth/token', '/.well-known/jwks.json'], what).toContain(target.split('?')[0]);
        return;
      }
      if (method === 'HEAD') return; // no body to read the code from
      const err = (JSON.parse(answer.text) as { error: { code: keyof typeof ERROR_CATALOGUE; requestId: string } }).error;
      expect(ERROR_CATALOGUE[err.code]?.status, what).toBe(answer.status);
      expect(err.requestId, what).toBe(answer.headers['x-request-id']);
    }), { ...fuzz(250, 0.25), endOnFailure: true });
    // Every request an upstream saw was answered to its client from that upstream (stragglers included).
    await new Promise((r) => setTimeout(r, 100));
    expect(started()).toBe(forwarded);
    // The generators are meant to pass the pipeline often enough to test the forwarding side too.
    expect(forwarded).toBeGreaterThan(0);
  }, fuzzTimeout(60_000));

  it('forwards no client credential and no client-sent X-Keygate-* header, only the key it authenticated', async () => {
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const { answer } = await send(r);
      if (answer.headers['x-upstream-name'] === undefined) return;
      // The upstream records a request before it answers it, so the forwarded one is there.
      const got = ups.flatMap((u) => u.requests).find((q) => headerValues(q.rawHeaders, 'x-fuzz-seq')[0] === String(seq))!;
      expect(got, 'the forwarded request was recorded').toBeDefined();
      for (const name of ['x-api-key', 'authorization', 'proxy-authorization', 'x-keygate-profile']) {
        expect(headerValues(got.rawHeaders, name), name).toEqual([]);
      }
      const keyIds = headerValues(got.rawHeaders, 'x-keygate-key-id');
      expect(keyIds).toHaveLength(1);
      expect(known.keyIds).toContain(keyIds[0]);
      expect(headerValues(got.rawHeaders, 'x-keygate-workspace-id')).toEqual([known.workspaceId]);
      expect(headerValues(got.rawHeaders, 'x-keygate-environment')).toHaveLength(1);
      expect(headerValues(got.rawHeaders, 'x-keygate-key-type')).toHaveLength(1);
    }), { ...fuzz(150, 0.1), endOnFailure: true });
  }, fuzzTimeout(60_000));
});
