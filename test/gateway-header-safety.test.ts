import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './helpers/admin.js';
import { expectRefused, gatewayConfig, gw, metricSum, pollUntil, scrape } from './helpers/gateway.js';
import { ADMIN_TOKEN, startKeygate, type Keygate } from './helpers/keygate.js';
import { buildRequest, hostOf, sendRaw } from './helpers/raw-http.js';
import { bearer, mintToken, postToken, simpleAuthSignature } from './helpers/tokens.js';
import { headerValue, headerValues, type RecordingUpstream, useUpstreamPair } from './helpers/upstream.js';

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
