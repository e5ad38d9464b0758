import fc from 'fast-check';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../src/errors/catalogue.js';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { gatewayConfig } from './support/gateway.js';
import { anyCodeUnit, fuzz, fuzzTimeout } from './support/fuzz.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, openRaw, sendRaw, type RawConnection } from './support/raw-http.js';
import { headerValues, useUpstreamPair, type RecordingUpstream } from './support/upstream.js';
import { editPayload, segment, simpleAuthSignature } from './support/tokens.js';

// Generated requests against one real `keygate serve` and real recording upstreams that
// always answer 200: whatever the request, the gateway answers (over a raw socket or undici),
// never with a 5xx, only with the upstream's answer, a local endpoint's, or a catalogued error;
// no request whose client got a 4xx reached an upstream; a Transfer-Encoding other than chunked
// is a 400 and the connection closed; and profile identities of any script reach the upstream
// percent-encoded, or are refused with 400 when minted.

let kg: Keygate;
let ups: RecordingUpstream[];
let host: string;
let client: Client;
const pair = useUpstreamPair();
/** Credentials and ids known once keys exist; generators pick from them by index. */
const known = { secrets: [] as string[], keyIds: [] as string[], workspaceId: '', token: '', profileSecret: '', salt: '' };

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
  // Not among the keys the request generators pick from: it has a property of its own.
  const simple = await createKey(kg, { workspaceId: ws, name: 'simple-auth', type: 'profile', permissions: ['*'], simpleAuth: { enabled: true } });
  known.profileSecret = simple.secret;
  known.salt = simple.key.simpleAuth.salt as string;
  known.keyIds.push(simple.key.id as string);
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
  ['GET', '/auth/forward'], ['GET', '/auth/envoy/v1/events'], ['POST', '/auth/envoy/v1/events'], ['POST', '/auth/verify'],
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
  // Standard base64, padded or not (both are accepted).
  fc.tuple(fc.mixedCase(fc.constant('basic')), fc.nat(4), fc.boolean(), fc.boolean()).map(([scheme, k, rightWs, padded]) => ({ kind: 'basic' as const, scheme, key: k, rightWs, padded })),
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
      const encoded = Buffer.from(`${ws}:${known.secrets[c.key]!}`).toString('base64');
      return ['Authorization', `${c.scheme} ${c.padded ? encoded : encoded.replace(/=+$/, '')}`];
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
  // Underscore look-alikes of keygate's own, credential, forwarding and hop-by-hop headers
  // (CGI and WSGI read X_Api_Key as X-Api-Key): the forwarded-header check reads "_" as "-".
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('X_Keygate_Key_Id', 'x_keygate_workspace_id', 'X_KEYGATE_PROFILE', 'X-Keygate_Environment', 'X_Keygate-Key-Type',
    'X_Api_Key', 'Authorization_', '_Authorization', 'X_Request_Id', 'X_Forwarded_For', 'X_Forwarded_Host', 'x_forwarded_proto', 'Proxy_Authorization', 'Keep_Alive', 'Proxy_Connection'),
  fc.constantFrom('key_forged', 'kg_live_x', 'Bearer x', '203.0.113.7')).map(([n, v]): Header => [n, v]) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('X-Odd', 'x-odd'), fc.string({ unit: 'binary-ascii', maxLength: 12 }).map((v) => v.replace(/[\0-\x1f\x7f]/g, ' '))).map(([n, v]): Header => [n, v]) },
  // Latin-1 (obs-text) in values, and a name outside the token characters.
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('X-Odd', 'X-Odd-\u00e9'), fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 12 }))
    .map(([n, v]): Header => [n, v]) },
);

const contentType = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/vnd.api+json', 'text/plain', '', 'multipart/form-data') },
  { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-7', 'application/json; charset=UTF-16', 'application/json;charset="utf-16le"', 'application/json; charset=ibm037',
    'application/vnd.api+json; charset=latin1', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'application/json; x="charset=utf-7"') },
);
/** A Content-Type that declares a charset other than utf-8 (or hides one in a quoted value). */
const foreignCharset = (type: string): boolean => /charset=(?!"?utf-8"?$)/i.test(type);
/** Transfer-Encodings other than chunked alone, which the gateway cannot frame (RFC 9112 §6.3). */
const oddTransferEncoding = fc.constantFrom('xchunked', 'gzip', 'identity', 'deflate', 'gzip, chunked', 'chunked, gzip', 'chunked,chunked', '"chunked"', 'chunkedx', '');
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
  // Content-Length, chunked (the coding's name in any case), or a Transfer-Encoding other than chunked.
  framing: fc.oneof(
    { weight: 4, arbitrary: fc.constant({ kind: 'length' as const, te: '' }) },
    { weight: 2, arbitrary: fc.constantFrom('chunked', 'Chunked', ' CHUNKED').map((te) => ({ kind: 'chunked' as const, te })) },
    { weight: 1, arbitrary: oddTransferEncoding.map((te) => ({ kind: 'odd' as const, te })) },
  ),
  viaUndici: fc.boolean(),
});
type GeneratedRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;


interface Answer { status: number; headers: Record<string, string>; text: string }

let seq = 0;
/** `closed`: for a Transfer-Encoding other than chunked, whether the gateway closed the connection after its answer. */
async function send(g: GeneratedRequest): Promise<{ answer: Answer; headers: Header[]; target: string; closed: boolean | null }> {
  const r = { ...g, ...g.methodAndTarget };
  const headers: Header[] = [];
  for (let i = 0; i < r.hosts; i++) headers.push(['Host', host]);
  for (const c of r.credentials) headers.push(credentialHeader(c));
  headers.push(...r.odd, ['X-Fuzz-Seq', String(++seq)]);
  if (r.contentType !== null) headers.push(['Content-Type', r.contentType]);
  const bytes = r.body;
  const printable = (s: string): boolean => /^[\x21-\x7e]*$/.test(s);
  const undiciCan = r.viaUndici && r.hosts === 1 && /^[A-Z]+$/.test(r.method) && printable(r.target) && r.framing.kind === 'length'
    && headers.every(([n, v]) => printable(n) && /^[\x20-\x7e]*$/.test(v) && !/^(connection|keep-alive|upgrade|expect|te|host)$/i.test(n));
  if (undiciCan) {
    const res = await client.request({
      method: r.method as 'GET', path: r.target, headers: headers.filter(([n]) => n.toLowerCase() !== 'host').flat(),
      ...(bytes !== null && r.method !== 'GET' && r.method !== 'HEAD' ? { body: bytes } : {}),
    });
    const flat: Record<string, string> = {};
    for (const [n, v] of Object.entries(res.headers)) flat[n] = Array.isArray(v) ? v.join(', ') : v ?? '';
    return { answer: { status: res.statusCode, headers: flat, text: await res.body.text() }, headers, target: r.target, closed: null };
  }
  // A request with an odd Transfer-Encoding carries it whether or not it has a body.
  if (r.framing.kind === 'odd') headers.push(['Transfer-Encoding', r.framing.te]);
  else if (bytes !== null) {
    if (r.framing.kind === 'chunked') headers.push(['Transfer-Encoding', r.framing.te]);
    else headers.push(['Content-Length', String(bytes.length)]);
  }
  const payload = r.framing.kind === 'length' ? bytes ?? undefined : bytes === null ? (r.framing.kind === 'odd' ? Buffer.from('0\r\n\r\n') : undefined)
    : Buffer.concat([Buffer.from(bytes.length > 0 ? `${bytes.length.toString(16)}\r\n` : ''), bytes, Buffer.from(bytes.length > 0 ? '\r\n0\r\n\r\n' : '0\r\n\r\n')]);
  const wire = buildRequest(r.method, r.target, headers, payload);
  if (r.method !== 'HEAD' && r.framing.kind !== 'odd') {
    const res = await sendRaw(kg.gatewayUrl!, wire, 15_000);
    return { answer: { status: res.status, headers: res.headers, text: res.text }, headers, target: r.target, closed: null };
  }
  const conn = await openRaw(kg.gatewayUrl!);
  try {
    conn.write(wire);
    let answer: Answer;
    if (r.method === 'HEAD') answer = await headAnswer(conn);
    else {
      const res = await conn.response(15_000);
      answer = { status: res.status, headers: res.headers, text: res.text };
    }
    return { answer, headers, target: r.target, closed: r.framing.kind === 'odd' ? await conn.whenClosed(5_000) : null };
  } finally {
    conn.close();
  }
}

/** The answer to a HEAD has headers only (its Content-Length describes a body not sent). */
async function headAnswer(conn: RawConnection): Promise<Answer> {
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
}

const started = (): number => ups.reduce((n, u) => n + u.started.length, 0);

describe('the gateway under generated requests (property-based)', () => {
  it('answers every request, never with a 5xx, only with a catalogued code, and forwards nothing it refused', async () => {
    let forwarded = 0;
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const before = started();
      const { answer, target, closed } = await send(r);
      const { method } = r.methodAndTarget;
      const what = `${method} ${JSON.stringify(target)} → ${answer.status} ${answer.text.slice(0, 300)}`;
      expect(answer.status, what).toBeLessThan(500);
      expect(answer.status === 200 || CATALOGUED.has(answer.status), what).toBe(true);
      // RFC 9112 §6.3: a body the gateway cannot frame is answered 400, then the connection closes.
      if (r.framing.kind === 'odd') {
        expect(answer.status, `${what} (Transfer-Encoding: ${r.framing.te})`).toBe(400);
        expect(closed, `${what}: the connection stayed open`).toBe(true);
      }
      const fromUpstream = answer.headers['x-upstream-name'] !== undefined;
      // An inspected route never forwards a body declared in a charset other than utf-8.
      const path = target.split('?')[0];
      const inspected = (method === 'POST' && path === '/v1/events') || (method === 'PATCH' && path === '/v1/profiles/p1');
      if (inspected && r.contentType !== null && foreignCharset(r.contentType)) expect(fromUpstream, `${what}: forwarded with ${r.contentType}`).toBe(false);
      if (fromUpstream) {
        forwarded++;
        expect(answer.status, what).toBe(200);
        return;
      }
      // A refusal (or a local endpoint's answer) reached no upstream.
      expect(started() - before, `${what}: the upstream saw it`).toBe(0);
      if (answer.status === 200) {
        const own = ['/auth/token', '/.well-known/jwks.json', '/auth/forward', '/auth/verify'];
        expect(own.includes(path!) || path!.startsWith('/auth/envoy/'), what).toBe(true);
        return;
      }
      if (method === 'HEAD') return; // no body to read the code from
      const err = (JSON.parse(answer.text) as { error: { code: keyof typeof ERROR_CATALOGUE; requestId: string } }).error;
      expect(ERROR_CATALOGUE[err.code]?.status, what).toBe(answer.status);
      expect(err.requestId, what).toBe(answer.headers['x-request-id']);
      if (r.framing.kind === 'odd') expect(err.code, what).toBe('BAD_REQUEST');
    }), { ...fuzz(250, 0.25), endOnFailure: true });
    // Every request an upstream saw was answered to its client from that upstream (stragglers included).
    await new Promise((r) => setTimeout(r, 100));
    expect(started()).toBe(forwarded);
    // The generators are meant to pass the pipeline often enough to test the forwarding side too.
    expect(forwarded).toBeGreaterThan(0);
  }, fuzzTimeout(60_000));

  it('forwards no client credential and no client-sent X-Keygate-* header, nor any look-alike of one with "_" for "-", only the key it authenticated', async () => {
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const { answer } = await send(r);
      if (answer.headers['x-upstream-name'] === undefined) return;
      // The upstream records a request before it answers it, so the forwarded one is there.
      const got = ups.flatMap((u) => u.requests).find((q) => headerValues(q.rawHeaders, 'x-fuzz-seq')[0] === String(seq))!;
      expect(got, 'the forwarded request was recorded').toBeDefined();
      // Header names as CGI and WSGI read them: "_" and "-" alike.
      const read = got.rawHeaders.map((v, i) => (i % 2 === 0 ? v.replaceAll('_', '-') : v));
      const sent = JSON.stringify(got.rawHeaders);
      for (const name of ['x-api-key', 'authorization', 'proxy-authorization', 'x-keygate-profile', 'keep-alive', 'proxy-connection', 'forwarded']) {
        expect(headerValues(read, name), `${name} in ${sent}`).toEqual([]);
      }
      const keyIds = headerValues(read, 'x-keygate-key-id');
      expect(keyIds, sent).toHaveLength(1);
      expect(known.keyIds).toContain(keyIds[0]);
      expect(headerValues(read, 'x-keygate-workspace-id'), sent).toEqual([known.workspaceId]);
      for (const name of ['x-keygate-environment', 'x-keygate-key-type', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) {
        expect(headerValues(read, name), `${name} in ${sent}`).toHaveLength(1);
      }
      expect(headerValues(read, 'x-request-id')[0]).toBe(answer.headers['x-request-id']);
      expect(headerValues(read, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    }), { ...fuzz(150, 0.1), endOnFailure: true });
  }, fuzzTimeout(60_000));

  it('answers 415 to a body declared in any charset but utf-8 on an inspected route, forwarding nothing, and forwards it declared utf-8', async () => {
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,10}$/);
    const charset = fc.oneof(fc.mixedCase(fc.constantFrom('utf-8', 'utf-7', 'utf-16', 'utf-16le', 'ibm037', 'utf8', 'latin1')), token);
    const route = fc.constantFrom(['POST', '/v1/events', '{"action":"page.view"}'], ['PATCH', '/v1/profiles/p1', '{"firstName":"a"}']);
    await fc.assert(fc.asyncProperty(route, charset, fc.boolean(), fc.constantFrom(';', '; ', ' ; '), async ([method, path, body], cs, quoted, sep) => {
      const before = started();
      const type = `application/json${sep}charset=${quoted ? `"${cs}"` : cs}`;
      const res = await client.request({ method: method as 'POST', path, headers: { 'x-api-key': known.secrets[0]!, 'content-type': type }, body });
      const text = await res.body.text();
      const what = `${method} ${path} with ${type} → ${res.statusCode} ${text.slice(0, 300)}`;
      if (cs.toLowerCase() === 'utf-8') {
        expect(res.statusCode, what).toBe(200);
        expect(res.headers['x-upstream-name'], what).toBeDefined();
        return;
      }
      expect(res.statusCode, what).toBe(415);
      expect((JSON.parse(text) as { error: { code: string } }).error.code, what).toBe('UNSUPPORTED_MEDIA_TYPE');
      expect(started() - before, `${what}: the upstream saw it`).toBe(0);
    }), { ...fuzz(60, 0.05), endOnFailure: true });
  }, fuzzTimeout(60_000));

  it('mints a simple-auth profile token for an identity of any script and forwards it as a visible-ASCII X-Keygate-Profile that decodes back to it, or refuses it with 400 at minting; never a 5xx', async () => {
    /** Characters of every kind: CJK, emoji, Latin-1, spaces and "%", controls (C0, DEL, C1), invisible ones. */
    const char = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('用', '户', '香', '港', '🦊', '👩‍💻', 'é', 'ß', 'ÿ', 'ǅ', '-', '4', '2', 'a', '@', '.', '+', ' ', '%', '%2', '"', '\\', '\u200b', '\ufeff', '\u2028') },
      { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
      { weight: 1, arbitrary: fc.constantFrom('\r', '\n', '\r\n', '\0', '\t', '\u007f', '\u0085', '\u009f') },
    );
    const value = fc.oneof(
      { weight: 4, arbitrary: fc.array(char, { maxLength: 12 }).map((cs) => cs.join('')) },
      // Any code point, or any code unit (lone surrogates too).
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
      { weight: 1, arbitrary: fc.string({ unit: anyCodeUnit, maxLength: 6 }) },
      // Around the length bounds (customId 1–256, email 3–320 characters, counted in code points).
      { weight: 1, arbitrary: fc.constantFrom('', 'a', 'ab', 'a@b', '🦊', '🦊🦊', 'x'.repeat(256), 'x'.repeat(257), '用'.repeat(256), '🦊'.repeat(256), '🦊'.repeat(257), 'y'.repeat(320), 'y'.repeat(321), '🦊'.repeat(320)) },
    );
    const bounds = { customId: [1, 256], email: [3, 320] } as const;
    await fc.assert(fc.asyncProperty(fc.constantFrom('customId', 'email'), value, async (field, id) => {
      const before = started();
      const length = [...id].length;
      const refused = /[\u0000-\u001f\u007f-\u009f]/.test(id) || /\p{Cs}/u.test(id) || length < bounds[field][0] || length > bounds[field][1];
      const mint = await client.request({
        method: 'POST', path: '/auth/token', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ apiKey: known.profileSecret, identity: { [field]: id }, signature: simpleAuthSignature(known.salt, id) }),
      });
      const minted = JSON.parse(await mint.body.text()) as { token?: string; error?: { code: string; message: string } };
      const what = `${field} ${JSON.stringify(id)} → ${mint.statusCode} ${JSON.stringify(minted).slice(0, 300)}`;
      if (refused) {
        expect(mint.statusCode, what).toBe(400);
        expect(minted.error?.code, what).toBe('BAD_REQUEST');
        expect(minted.error?.message, what).toMatch(/^identity\b/);
        expect(started() - before, what).toBe(0);
        return;
      }
      expect(mint.statusCode, what).toBe(200);
      const res = await client.request({ method: 'GET', path: '/v1/events', headers: { authorization: `Bearer ${minted.token!}`, 'x-fuzz-seq': String(++seq) } });
      const text = await res.body.text();
      expect(res.statusCode, `${what}; GET /v1/events → ${res.statusCode} ${text.slice(0, 300)}`).toBe(200);
      expect(res.headers['x-upstream-name'], what).toBeDefined();
      const got = ups.flatMap((u) => u.requests).find((q) => headerValues(q.rawHeaders, 'x-fuzz-seq')[0] === String(seq))!;
      expect(got, 'the forwarded request was recorded').toBeDefined();
      const profile = headerValues(got.rawHeaders, 'x-keygate-profile');
      expect(profile, what).toHaveLength(1);
      expect(profile[0], what).toMatch(/^[\x21-\x7e]+$/);
      expect(decodeURIComponent(profile[0]!), what).toBe(id);
    }), { ...fuzz(80, 0.05), endOnFailure: true });
  }, fuzzTimeout(60_000));
});
