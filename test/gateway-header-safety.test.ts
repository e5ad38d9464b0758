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
