import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AccessLog } from '../src/observability/access-log.js';
import { LineWriter } from '../src/observability/line-writer.js';
import { startGateway, type GatewayHarness } from './support/gateway-harness.js';
import { buildRequest, sendRaw } from './support/raw-http.js';

// X-Request-Id and W3C trace context (https://www.w3.org/TR/trace-context/): what the client
// sends is kept when well formed and passed upstream; the upstream call gets a child span; the
// access log line names both ids.

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

let gw: GatewayHarness;
let secret: string;
let dir: string;
let fd: number;
let accessLog: AccessLog;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keygate-correlation-'));
  fd = openSync(join(dir, 'access.log'), 'w');
  accessLog = new AccessLog(new LineWriter({ fd }));
  gw = await startGateway({ accessLog });
  secret = gw.addKey({ id: 'key_corr', workspaceId: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', permissions: ['*'] });
});

afterAll(async () => {
  await gw.close();
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  gw.upstreamRequests.length = 0;
});

async function send(headers: Record<string, string>, path = '/v1/events'): Promise<Response> {
  const res = await fetch(`${gw.url}${path}`, { headers: { 'x-api-key': secret, ...headers } });
  await res.arrayBuffer();
  return res;
}

/** The access log's line for `requestId`, once written. */
async function logged(requestId: string): Promise<Record<string, unknown>> {
  await accessLog.flush();
  const lines = readFileSync(join(dir, 'access.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const mine = lines.filter((l) => l.requestId === requestId);
  expect(mine, requestId).toHaveLength(1);
  return mine[0]!;
}

describe('X-Request-Id', () => {
  it('keeps a well-formed client X-Request-Id: on the answer, to the upstream and in the access log', async () => {
    const id = 'client-req_42.a:b';
    const res = await send({ 'x-request-id': id });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    expect(gw.upstreamRequests[0]!.headers['x-request-id']).toBe(id);
    expect(await logged(id)).toMatchObject({ requestId: id, route: 'list-events', status: 200, outcome: 'OK', keyId: 'key_corr' });
  });

  it('keeps it on a refusal too: the error body and header carry the client id', async () => {
    const id = 'refused-1';
    const res = await fetch(`${gw.url}/v1/events`, { headers: { 'x-request-id': id } });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-request-id')).toBe(id);
    expect(((await res.json()) as { error: { requestId: string } }).error.requestId).toBe(id);
    expect(await logged(id)).toMatchObject({ status: 401, outcome: 'UNAUTHENTICATED', keyId: null });
  });

  it('replaces an ill-formed or repeated X-Request-Id with its own, and the upstream sees only that one', async () => {
    for (const bad of ['has space', 'x'.repeat(129), 'quote"d', '', 'ünï']) {
      gw.upstreamRequests.length = 0;
      const res = await send({ 'x-request-id': bad });
      const id = res.headers.get('x-request-id')!;
      expect(id, bad).not.toBe(bad);
      expect(id.length).toBeGreaterThan(0);
      expect(gw.upstreamRequests[0]!.headers['x-request-id'], bad).toBe(id);
    }
    const url = new URL(gw.url);
    const res = await sendRaw(gw.url, buildRequest('GET', '/v1/events', [['Host', url.host], ['X-Api-Key', secret], ['X-Request-Id', 'one'], ['X-Request-Id', 'two']]));
    expect(res.status).toBe(200);
    expect(['one', 'two']).not.toContain(res.headers['x-request-id']);
  });
});

describe('traceparent and tracestate', () => {
  it('sends a valid client trace on with a new span id for the upstream call, the flags and the tracestate unchanged, and logs its trace id', async () => {
    const id = 'traced-1';
    const res = await send({ 'x-request-id': id, traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7' });
    expect(res.status).toBe(200);
    const up = gw.upstreamRequests[0]!.headers;
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(up.traceparent));
    expect(m, String(up.traceparent)).not.toBeNull();
    expect(m![1]).toBe(TRACE);
    expect(m![2]).not.toBe(PARENT);
    expect(m![3]).toBe('01');
    expect(up.tracestate).toBe('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7');
    expect(await logged(id)).toMatchObject({ traceId: TRACE });
  });

  it('keeps an unsampled flag unsampled', async () => {
    await send({ traceparent: `00-${TRACE}-${PARENT}-00` });
    expect(String(gw.upstreamRequests[0]!.headers.traceparent)).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
  });

  it('starts a new trace when none came: a sampled traceparent upstream, its trace id in the log', async () => {
    const id = 'untraced-1';
    await send({ 'x-request-id': id });
    const up = gw.upstreamRequests[0]!.headers;
    const m = /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(String(up.traceparent));
    expect(m, String(up.traceparent)).not.toBeNull();
    expect(up.tracestate).toBeUndefined();
    expect(await logged(id)).toMatchObject({ traceId: m![1] });
  });

  it('starts a new trace for an invalid traceparent and drops its tracestate', async () => {
    for (const bad of [`00-${TRACE.toUpperCase()}-${PARENT}-01`, `00-${'0'.repeat(32)}-${PARENT}-01`, `ff-${TRACE}-${PARENT}-01`, 'nonsense']) {
      gw.upstreamRequests.length = 0;
      await send({ traceparent: bad, tracestate: 'a=1' });
      const up = gw.upstreamRequests[0]!.headers;
      expect(String(up.traceparent), bad).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(String(up.traceparent)).not.toContain(TRACE);
      expect(up.tracestate, bad).toBeUndefined();
    }
  });

  it('gives each request a different trace id of its own', async () => {
    await send({});
    await send({});
    const [a, b] = gw.upstreamRequests.map((r) => String(r.headers.traceparent).split('-')[1]);
    expect(a).not.toBe(b);
  });
});
