import { Agent, request } from 'undici';
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { gatewayConfig, metricSum, pollUntil, scrape } from './support/gateway.js';
import { buildRequest, hostOf, sendRaw } from './support/raw-http.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { mintToken, postToken, simpleAuthSignature } from './support/tokens.js';
import { type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

// The access log end to end: `keygate serve` with the default `gateway.accessLog: true`, its
// stdout read as an operator's log shipper would.

let events: RecordingUpstream;
const pair = useUpstreamPair();
beforeAll(() => {
  ({ events } = pair);
});

type Line = Record<string, unknown>;
const parse = (lines: readonly string[]): Line[] => lines.map((l) => JSON.parse(l) as Line);
const accessLines = (kg: Keygate, from = 0): Line[] => parse(kg.output.slice(from)).filter((l) => l.msg === 'request');

const FIELDS = ['level', 'time', 'pid', 'msg', 'requestId', 'traceId', 'method', 'route', 'status', 'outcome', 'keyId', 'workspaceId', 'clientIp',
  'requestBytes', 'responseBytes', 'upstreamMs', 'totalMs'];

describe('access log lines', () => {
  let kg: Keygate;
  let ws: string;
  let secret: string;
  let keyId: string;
  const needles: Array<[string, string]> = [];

  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events, eventsTest: pair.eventsTest }) });
    ws = await createWorkspace(kg, 'logged');
    const key = await createKey(kg, { workspaceId: ws, name: 'logged', permissions: ['*'], basicAuth: true });
    secret = key.secret;
    keyId = key.key.id;
  });
  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('has the ready line and every other log line with the level as a word and an ISO 8601 time', () => {
    const ready = parse(kg.output).find((l) => l.msg === 'ready')!;
    expect(ready).toMatchObject({ level: 'info', msg: 'ready', gateway: kg.gatewayUrl, admin: kg.adminUrl });
    for (const l of parse(kg.output)) {
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], JSON.stringify(l)).toContain(l.level);
      expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  it('writes one line per request with every field, forwarded or refused', async () => {
    const from = kg.output.length;
    const ok = await fetch(`${kg.gatewayUrl}/v1/events?limit=5`, { headers: { 'x-api-key': secret, 'x-request-id': 'fields-ok' } });
    const okBody = await ok.text();
    const refused = await fetch(`${kg.gatewayUrl}/v1/nowhere`, { headers: { 'x-request-id': 'fields-404' } });
    await refused.text();
    const polled = await pollUntil(async () => accessLines(kg, from), (ls) => ls.length >= 2, 3_000);
    const [a, b] = [polled.value.find((l) => l.requestId === 'fields-ok')!, polled.value.find((l) => l.requestId === 'fields-404')!];
    expect(Object.keys(a)).toEqual(FIELDS);
    expect(a).toMatchObject({
      level: 'info', method: 'GET', route: 'list-events', status: 200, outcome: 'OK', keyId, workspaceId: ws, clientIp: '127.0.0.1',
    });
    expect(a.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.requestBytes as number).toBeGreaterThan(50);
    expect(a.responseBytes as number).toBeGreaterThan(okBody.length);
    expect(a.upstreamMs as number).toBeGreaterThanOrEqual(0);
    expect(a.totalMs as number).toBeGreaterThanOrEqual(a.upstreamMs as number);
    expect(b).toMatchObject({ route: 'unmatched', status: 404, outcome: 'ROUTE_NOT_FOUND', keyId: null, workspaceId: null, upstreamMs: 0 });
  });

  it('logs a request the HTTP parser refused (headers over 16 KiB) with what is known of it', async () => {
    const from = kg.output.length;
    const res = await sendRaw(kg.gatewayUrl!, buildRequest('GET', '/v1/events', [['Host', hostOf(kg.gatewayUrl!)], ['X-Big', '~'.repeat(20_000)]]));
    expect(res.status).toBe(431);
    const id = res.headers['x-request-id'] as string;
    const polled = await pollUntil(async () => accessLines(kg, from).filter((l) => l.requestId === id), (ls) => ls.length > 0, 3_000);
    expect(polled.value).toHaveLength(1);
    expect(polled.value[0]).toMatchObject({ method: null, route: 'unmatched', status: 431, outcome: 'HEADERS_TOO_LARGE', keyId: null, clientIp: '127.0.0.1' });
    expect(polled.value[0]!.traceId).toMatch(/^[0-9a-f]{32}$/);
    // '~' is in no id, trace id, time or number a line holds: any of the value in it would show.
    expect(JSON.stringify(polled.value[0])).not.toContain('~~~~');
  });

  it('never logs a secret, a token, a signature, a salt, a query string or a header value, under a request carrying every credential kind', async () => {
    const profile = await createKey(kg, { workspaceId: ws, name: 'profile', type: 'profile', permissions: ['*'], simpleAuth: { enabled: true } });
    const salt = profile.key.simpleAuth.salt as string;
    const token = await mintToken(kg, secret);
    const signature = simpleAuthSignature(salt, 'user-42');
    const minted = await postToken(kg, { apiKey: profile.secret, identity: { customId: 'user-42' }, signature });
    expect(minted.status, minted.text).toBe(200);
    const profileToken = minted.body.token as string;
    const basic = `Basic ${Buffer.from(`${ws}:${secret}`).toString('base64')}`;
    needles.push(['secret', secret], ['profile secret', profile.secret], ['token', token], ['profile token', profileToken], ['salt', salt],
      ['signature', signature], ['basic', basic.slice(6)], ['query', 'qmarker-7f3a'], ['cookie', 'cookiemarker-91b2'], ['header', 'hdrmarker-c4d5'],
      ['identity', 'user-42']);
    const extra = { cookie: 'session=cookiemarker-91b2', 'x-custom': 'hdrmarker-c4d5', 'user-agent': 'hdrmarker-c4d5' };
    const q = `?api_key=${secret}&token=${token}&q=qmarker-7f3a`;
    const from = kg.output.length;
    const sent: Array<[string, RequestInit]> = [
      // Every kind at once (ambiguous), then each alone, each with a query string and headers to leave out.
      [`/v1/events${q}`, { headers: { ...extra, 'x-api-key': secret, authorization: `Bearer ${token}` } }],
      [`/v1/events${q}`, { headers: { ...extra, 'x-api-key': secret, authorization: basic } }],
      [`/v1/events${q}`, { headers: { ...extra, 'x-api-key': secret } }],
      [`/v1/events${q}`, { headers: { ...extra, authorization: `Bearer ${secret}` } }],
      [`/v1/events${q}`, { headers: { ...extra, authorization: basic } }],
      [`/v1/events${q}`, { headers: { ...extra, authorization: `Bearer ${token}` } }],
      [`/v1/events${q}`, { headers: { ...extra, authorization: `Bearer ${profileToken}` } }],
      [`/auth/token${q}`, { method: 'POST', headers: { ...extra, 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: secret }) }],
      [`/auth/token${q}`, { method: 'POST', headers: { ...extra, 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: profile.secret, identity: { customId: 'user-42' }, signature }) }],
      [`/auth/token${q}`, { method: 'POST', headers: { ...extra, 'content-type': 'application/json' }, body: JSON.stringify({ apiKey: profile.secret, identity: { customId: 'user-42' }, signature: 'ab'.repeat(32) }) }],
      [`/v1/nowhere${q}`, { headers: { ...extra, 'x-api-key': secret } }],
    ];
    for (const [i, [path, init]] of sent.entries()) {
      const res = await fetch(`${kg.gatewayUrl}${path}`, { ...init, headers: { ...init.headers as Record<string, string>, 'x-request-id': `hygiene-${i}` } });
      await res.arrayBuffer();
    }
    const mine = (ls: Line[]): Line[] => ls.filter((l) => String(l.requestId).startsWith('hygiene-'));
    const polled = await pollUntil(async () => mine(accessLines(kg, from)), (ls) => ls.length >= sent.length, 3_000);
    expect(polled.value.map((l) => [l.requestId, l.status])).toEqual([400, 400, 200, 200, 200, 200, 200, 200, 200, 401, 404].map((s, i) => [`hygiene-${i}`, s]));
    const text = kg.output.join('\n');
    for (const [what, needle] of needles) expect(text.includes(needle), `${what} in the log`).toBe(false);
    expect(text).not.toContain('api_key');
    expect(text).not.toContain('?');
  });
});

describe('stopping under load', () => {
  it('has a whole line for every request answered when SIGTERM came mid-load, and none after the stopped line', async () => {
    const kg = await startKeygate({ config: gatewayConfig({ events, eventsTest: pair.eventsTest }) });
    try {
      const ws = await createWorkspace(kg, 'stop');
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'stop', permissions: ['*'] });
      const agent = new Agent({ connections: 32, pipelining: 1 });
      const answered = new Set<string>();
      let n = 0;
      let stopping = false;
      const worker = async (): Promise<void> => {
        while (true) {
          const id = `load-${n++}`;
          try {
            const res = await request(`${kg.gatewayUrl}/v1/events`, { dispatcher: agent, headers: { 'x-api-key': secret, 'x-request-id': id, 'x-upstream-delay': String(n % 20) } });
            await res.body.dump();
            expect([200]).toContain(res.statusCode);
            answered.add(id);
          } catch {
            // The port has closed: the load is over.
            if (stopping) return;
            throw new Error(`request ${id} failed before the stop`);
          }
        }
      };
      const load = Promise.all(Array.from({ length: 32 }, () => worker()));
      await new Promise((r) => setTimeout(r, 2_000));
      stopping = true;
      const code = await kg.stop('SIGTERM');
      await load;
      await agent.close();
      expect(code).toBe(0);
      expect(answered.size, 'requests answered before and during the stop').toBeGreaterThan(20);
      // Every stdout line is whole JSON; every answered request has exactly one line.
      const all = parse(kg.output);
      const ids = all.filter((l) => l.msg === 'request').map((l) => l.requestId as string);
      expect(new Set(ids).size).toBe(ids.length);
      const logged = new Set(ids);
      const missing = [...answered].filter((id) => !logged.has(id));
      expect(missing, `${missing.length} of ${answered.size} answered requests have no line`).toEqual([]);
      const stopped = all.findIndex((l) => l.msg === 'stopped');
      expect(stopped).toBeGreaterThan(0);
      expect(all.slice(stopped).filter((l) => l.msg === 'request')).toEqual([]);
    } finally {
      await stopAndClean(kg);
    }
  }, 60_000);
});

describe('workers sharing stdout', () => {
  it('writes every request of two workers as a whole line of its own, never two lines interleaved', async () => {
    const kg = await startKeygate({ config: gatewayConfig({ events, eventsTest: pair.eventsTest, gateway: { workers: 2 } }) });
    try {
      const ws = await createWorkspace(kg, 'workers');
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'workers', permissions: ['*'] });
      const before = kg.output.length;
      // Long lines (a 128-character request id), many at once from both workers: each request
      // on a connection of its own, so the kernel spreads them over both (SCHED_NONE).
      // stdout is read in spurts, as by a busy log shipper: the pipe fills, writes block and
      // resume part-way, where lines of two writers would interleave.
      const stdout = kg.proc.stdout!;
      const spurts = setInterval(() => (stdout.isPaused() ? stdout.resume() : stdout.pause()), 200);
      const agent = new Agent({ connections: 64 });
      let sent = 0;
      await Promise.all(Array.from({ length: 48 }, async () => {
        while (sent < 6_000) {
          sent++;
          const res = await request(`${kg.gatewayUrl}/v1/events`, { dispatcher: agent, reset: true, headers: { 'x-api-key': secret, 'x-request-id': 'w'.repeat(128) } });
          await res.body.dump();
          expect(res.statusCode).toBe(200);
        }
      }));
      await agent.close();
      clearInterval(spurts);
      stdout.resume();
      const polled = await pollUntil(async () => kg.output.length - before, (n) => n >= 6_000, 20_000, 100);
      expect(polled.ok, `${polled.value} lines`).toBe(true);
      const lines = accessLines(kg, before); // every line parses: none was split or joined
      expect(lines).toHaveLength(6_000);
      expect(new Set(lines.map((l) => l.pid)).size).toBe(2);
    } finally {
      await stopAndClean(kg);
    }
  }, 120_000);
});

describe('a stdout that blocks', () => {
  it('drops the lines that do not fit, counts them in keygate_access_log_dropped_total, and writes the rest whole once stdout reads again', async () => {
    const kg = await startKeygate({ config: gatewayConfig({ events, eventsTest: pair.eventsTest }) });
    try {
      const ws = await createWorkspace(kg, 'blocked');
      const { secret } = await createKey(kg, { workspaceId: ws, name: 'blocked', permissions: ['*'] });
      const before = kg.output.length;
      // Nothing reads keygate's stdout: the pipe fills, then the 8 MiB buffer, then lines drop.
      kg.proc.stdout!.pause();
      // Lines of ~550 bytes (a 128-character request id): 25 000 of them are past 8 MiB.
      const result = await autocannon({ url: `${kg.gatewayUrl}/v1/events`, connections: 32, amount: 25_000, headers: { 'x-api-key': secret, 'x-request-id': 'r'.repeat(128) } });
      expect(result.non2xx + result.errors).toBe(0);
      const dropped = metricSum(await scrape(kg), 'keygate_access_log_dropped_total');
      expect(dropped).toBeGreaterThan(0);
      kg.proc.stdout!.resume();
      const polled = await pollUntil(async () => accessLines(kg, before).length, (n) => n + dropped >= 25_000, 20_000, 100);
      expect(polled.value + dropped).toBe(25_000);
    } finally {
      await stopAndClean(kg);
    }
  }, 120_000);
});
