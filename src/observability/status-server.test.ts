import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createStatusServer, type StatusServer } from './status-server.js';

const logger = pino({ level: 'silent' });
let status: StatusServer | null = null;
afterEach(async () => {
  await status?.close();
  status = null;
});

async function start(reason: { value: string | null }, metricsText: () => Promise<string> = async () => 'keygate_up 1\n'): Promise<string> {
  status = createStatusServer({ notReady: () => reason.value, metricsText }, logger);
  await new Promise<void>((resolve) => status!.server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(status.server.address() as AddressInfo).port}`;
}

describe('status server', () => {
  it('answers /healthz 200 and /readyz 200 or 503 with the reason of the moment, with no token', async () => {
    const reason: { value: string | null } = { value: 'store not loaded' };
    const url = await start(reason);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    let ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await ready.json()).toEqual({ ready: false, status: 'not ready', reason: 'store not loaded' });
    reason.value = null;
    ready = await fetch(`${url}/readyz?verbose=1`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, status: 'ready' });
    reason.value = 'draining';
    ready = await fetch(`${url}/readyz`);
    expect(await ready.json()).toEqual({ ready: false, status: 'not ready', reason: 'draining' });
  });

  it('serves /metrics as Prometheus text from the current source, which the process may replace', async () => {
    const url = await start({ value: null });
    let res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await res.text()).toBe('keygate_up 1\n');
    status!.source = { ...status!.source, metricsText: async () => 'keygate_up 2\n' };
    res = await fetch(`${url}/metrics`);
    expect(await res.text()).toBe('keygate_up 2\n');
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('serves nothing else: the admin API is 404, another method 405 with Allow', async () => {
    const url = await start({ value: null });
    for (const path of ['/v1/workspaces', '/', '/metrics/', '/auth/token']) {
      const res = await fetch(`${url}${path}`, { headers: { authorization: 'Bearer whatever-token-0123456789' } });
      expect(res.status, path).toBe(404);
      const body = (await res.json()) as { error: { code: string; requestId: string } };
      expect(body.error.code).toBe('NOT_FOUND');
      expect(res.headers.get('x-request-id')).toBe(body.error.requestId);
    }
    const post = await fetch(`${url}/healthz`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(((await post.json()) as { error: { code: string } }).error.code).toBe('METHOD_NOT_ALLOWED');
  });

  it('answers 500 INTERNAL, with no detail, when the metrics cannot be collected', async () => {
    const url = await start({ value: null }, async () => { throw new Error('secret detail'); });
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toContain('"INTERNAL"');
    expect(text).not.toContain('secret detail');
  });

  it('refuses a request the parser cannot read with a catalogued 400 and closes', async () => {
    const url = new URL(await start({ value: null }));
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(url.port), '127.0.0.1', () => socket.write('NOT A REQUEST\r\n\r\n'));
      let text = '';
      socket.on('data', (d: Buffer) => { text += d.toString(); });
      socket.on('close', () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"BAD_REQUEST"');
  });
});
