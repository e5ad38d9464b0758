import { expect } from 'vitest';
import { expectError } from './admin.js';
import { ADMIN_TOKEN, PEPPER, type Keygate } from './keygate.js';
import type { RecordingUpstream } from './upstream.js';

export interface GatewayResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/** A request to the gateway through fetch; JSON parsed when possible. */
export async function gw(kg: Keygate, path: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<GatewayResponse> {
  if (kg.gatewayUrl === null) throw new Error('keygate has no gateway URL');
  const res = await fetch(kg.gatewayUrl + path, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await res.text();
  let body: unknown = null;
  if (text !== '') {
    try { body = JSON.parse(text); } catch { body = text; }
  }
  return { status: res.status, headers: res.headers, text, body };
}

/**
 * A gateway-made refusal: the uniform error shape with X-Request-Id equal to the body's
 * requestId, and not one request reached any of the given upstreams.
 */
export async function expectRefused(
  res: { status: number; body: any; headers: Headers | Record<string, string | string[] | undefined> },
  status: number,
  code: string,
  upstreams: readonly RecordingUpstream[],
): Promise<void> {
  expectError(res, status, code);
  // A forwarded request would normally arrive before the answer; give a straggler a moment.
  await new Promise((r) => setTimeout(r, 20));
  for (const up of upstreams) {
    expect(up.started.map((r) => `${r.method} ${r.url}`), `${up.name} received requests`).toEqual([]);
    expect(up.requests.map((r) => `${r.method} ${r.url}`), `${up.name} received requests`).toEqual([]);
  }
}

export interface GatewayConfigOptions {
  events: RecordingUpstream;
  eventsTest: RecordingUpstream;
  /** A port with nothing listening, for the "down" upstream. */
  downPort?: number;
  gateway?: Record<string, unknown>;
  propagation?: Record<string, unknown>;
}

/**
 * The base routes plus routes these suites need: a streamed (non-inspected) PUT, a GET
 * wildcard, a workspace-only route, a 300 ms-timeout upstream and an upstream that is down.
 */
export function gatewayConfig(opts: GatewayConfigOptions): (dataDir: string) => Record<string, unknown> {
  return (dataDir) => ({
    gateway: { listen: { host: '127.0.0.1', port: 0 }, ...opts.gateway },
    admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'ops', token: ADMIN_TOKEN }] },
    status: { listen: { host: '127.0.0.1', port: 0 } },
    store: { driver: 'embedded', path: dataDir },
    secrets: { pepper: PEPPER },
    ...(opts.propagation ? { propagation: opts.propagation } : {}),
    upstreams: {
      events: { url: opts.events.url },
      'events-test': { url: opts.eventsTest.url },
      slow: { url: opts.events.url, timeoutMs: 300 },
      down: { url: `http://127.0.0.1:${opts.downPort ?? 9}`, timeoutMs: 2000 },
    },
    routes: [
      { name: 'send-events', method: 'POST', path: '/v1/events', upstream: 'events', upstreamTest: 'events-test', permission: 'events.create', events: { field: 'action' } },
      { name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'events', permission: 'events.read' },
      { name: 'update-profile', method: 'PATCH', path: '/v1/profiles/{profileId}', upstream: 'events', permission: 'profiles.update', profileAttributes: true, profileScope: 'profileId' },
      { name: 'get-profile', method: 'GET', path: '/v1/profiles/{profileId}', upstream: 'events', permission: 'profiles.read' },
      { name: 'put-blob', method: 'PUT', path: '/v1/blobs/*', upstream: 'events', permission: 'blobs.write' },
      { name: 'get-file', method: 'GET', path: '/v1/files/*', upstream: 'events', upstreamTest: 'events-test', permission: 'files.read' },
      { name: 'stats', method: 'GET', path: '/v1/stats', upstream: 'events', permission: 'stats.read', keyTypes: ['workspace'] },
      { name: 'slow', method: 'GET', path: '/v1/slow', upstream: 'slow', permission: 'slow.read' },
      { name: 'down', method: 'GET', path: '/v1/down', upstream: 'down', permission: 'down.read' },
    ],
  });
}

/** Polls `fn` every `everyMs` until `done(value)` or `timeoutMs`; returns the last value and the time taken. */
export async function pollUntil<T>(fn: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, everyMs = 25): Promise<{ value: T; ms: number; ok: boolean }> {
  const start = Date.now();
  for (;;) {
    const value = await fn();
    const ms = Date.now() - start;
    if (done(value)) return { value, ms, ok: true };
    if (ms >= timeoutMs) return { value, ms, ok: false };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Prometheus text → sample lines, `name{labels} value`. */
export function metricSamples(text: string): Array<{ name: string; labels: Record<string, string>; value: number; line: string }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number; line: string }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[4]), line });
  }
  return out;
}

/** Sum of a metric's samples whose labels include `match`. */
export function metricSum(text: string, name: string, match: Record<string, string> = {}): number {
  return metricSamples(text)
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

export async function scrape(kg: Keygate): Promise<string> {
  const res = await fetch(`${kg.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}
