import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, stopAndClean } from './support/admin.js';
import { expectRefused, gatewayConfig, gw } from './support/gateway.js';
import { startKeygate, type Keygate } from './support/keygate.js';
import { buildRequest, hostOf, sendRaw, sendRawMany } from './support/raw-http.js';
import { headerValue, type RecordingUpstream, useUpstreamPair } from './support/upstream.js';

let events: RecordingUpstream;
let eventsTest: RecordingUpstream;
const pair = useUpstreamPair();
let ups: RecordingUpstream[];

beforeAll(async () => {
  ({ events, eventsTest } = pair);
  ups = pair.all;
});

/** A keygate with the given trusted proxies and a key allowed only from 10.0.0.0/8. */
function suite(trustedProxies: string[] | undefined): { kg: () => Keygate; tenNet: () => string; ws: () => string } {
  let kg: Keygate;
  let ws: string;
  let tenNet: string;
  beforeAll(async () => {
    kg = await startKeygate({ config: gatewayConfig({ events, eventsTest, ...(trustedProxies ? { gateway: { trustedProxies } } : {}) }) });
    ws = await createWorkspace(kg, 'ip');
    tenNet = (await createKey(kg, { workspaceId: ws, name: 'ten-net', permissions: ['*'], ipAllowlist: ['10.0.0.0/8'] })).secret;
  });
  afterAll(async () => {
    await stopAndClean(kg);
  });
  return { kg: () => kg, tenNet: () => tenNet, ws: () => ws };
}

describe('client IP without trusted proxies', () => {
  const s = suite(undefined);

  it('refuses a key allowed only from 10.0.0.0/8 when the request comes from 127.0.0.1: 403 IP_NOT_ALLOWED', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet() } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('does not believe X-Forwarded-For: 10.1.2.3 from an untrusted peer (still 403)', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3' } }), 403, 'IP_NOT_ALLOWED', ups);
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '127.0.0.1, 10.1.2.3' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('ignores X-Real-IP, Forwarded: for=10.1.2.3, True-Client-IP and CF-Connecting-IP (still 403)', async () => {
    for (const [name, value] of [['x-real-ip', '10.1.2.3'], ['forwarded', 'for=10.1.2.3'], ['true-client-ip', '10.1.2.3'], ['cf-connecting-ip', '10.1.2.3'], ['x-client-ip', '10.1.2.3']] as const) {
      await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), [name]: value } }), 403, 'IP_NOT_ALLOWED', ups);
    }
  });

  it('allows the direct request when the allowlist contains 127.0.0.1', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'loopback', permissions: ['*'], ipAllowlist: ['192.0.2.0/24', '127.0.0.1'] });
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret } });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
  });

  it('matches an IPv4-mapped allowlist entry (::ffff:127.0.0.0/104) against the IPv4 peer', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'mapped', permissions: ['*'], ipAllowlist: ['::ffff:127.0.0.0/104'] });
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret } });
    expect(res.status, res.text).toBe(200);
  });

  it('refuses 127.0.0.1 for an IPv6-only allowlist (::1/128)', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'v6-only', permissions: ['*'], ipAllowlist: ['::1/128'] });
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('gives the upstream X-Forwarded-For ending in the real peer, not a client-claimed address', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'xff-view', permissions: ['*'] });
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret, 'x-forwarded-for': '10.1.2.3' } });
    expect(res.status).toBe(200);
    const xff = headerValue(events.requests[0]!.rawHeaders, 'x-forwarded-for')!;
    expect(xff.split(',').map((p) => p.trim()).at(-1)).toBe('127.0.0.1');
  });

  it('does not pass a client-claimed X-Forwarded-Proto or X-Forwarded-Host from an untrusted peer to the upstream', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'xfp-view', permissions: ['*'] });
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' } });
    expect(res.status).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValue(h, 'x-forwarded-proto')).toBe('http');
    expect(headerValue(h, 'x-forwarded-host')).toBe(new URL(s.kg().gatewayUrl!).host);
  });

  it('applies an allowlist change to the next request (PATCH ipAllowlist to 127.0.0.1/32 → 200)', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'widen', permissions: ['*'], ipAllowlist: ['10.0.0.0/8'] });
    expect((await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(403);
    expect((await s.kg().admin('PATCH', `/v1/keys/${k.key.id}`, { ipAllowlist: ['127.0.0.1/32'] })).status).toBe(200);
    expect((await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret } })).status).toBe(200);
  });
});

describe('client IP with trustedProxies [127.0.0.1/32]', () => {
  const s = suite(['127.0.0.1/32']);

  it('takes the rightmost untrusted X-Forwarded-For entry: "192.0.2.1, 10.1.2.3" → client 10.1.2.3, allowed', async () => {
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '192.0.2.1, 10.1.2.3' } });
    expect(res.status, res.text).toBe(200);
    expect(events.requests).toHaveLength(1);
  });

  it('takes the rightmost untrusted X-Forwarded-For entry: "10.1.2.3, 192.0.2.1" → client 192.0.2.1, 403', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, 192.0.2.1' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('does not skip an untrusted hop: "10.1.2.3, 172.16.0.5" → client 172.16.0.5, 403', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, 172.16.0.5' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('reads ::ffff:10.1.2.3 in X-Forwarded-For as 10.1.2.3 (allowed)', async () => {
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '::ffff:10.1.2.3' } });
    expect(res.status, res.text).toBe(200);
  });

  it('treats several X-Forwarded-For headers as one list, read from the right', async () => {
    const base: Array<[string, string]> = [['Host', hostOf(s.kg().gatewayUrl!)], ['X-Api-Key', s.tenNet()]];
    const denied = await sendRaw(s.kg().gatewayUrl!, buildRequest('GET', '/v1/events', [...base, ['X-Forwarded-For', '10.1.2.3'], ['X-Forwarded-For', '192.0.2.1']]));
    await expectRefused({ ...denied, body: denied.json }, 403, 'IP_NOT_ALLOWED', ups);
    const allowed = await sendRaw(s.kg().gatewayUrl!, buildRequest('GET', '/v1/events', [...base, ['X-Forwarded-For', '192.0.2.1'], ['X-Forwarded-For', '10.1.2.3']]));
    expect(allowed.status, allowed.text).toBe(200);
  });

  it('reads each request\'s own X-Forwarded-For on one keep-alive connection from the proxy (regression: the client is kept per connection)', async () => {
    const base: Array<[string, string]> = [['Host', hostOf(s.kg().gatewayUrl!)], ['X-Api-Key', s.tenNet()]];
    const xffs = ['10.1.2.3', '192.0.2.1', null, '10.1.2.3', '10.1.2.3, 192.0.2.1', '192.0.2.1, 10.1.2.3'];
    const bytes = Buffer.concat(xffs.map((x) => buildRequest('GET', '/v1/events', x === null ? base : [...base, ['X-Forwarded-For', x]])));
    const answers = await sendRawMany(s.kg().gatewayUrl!, bytes, xffs.length);
    expect(answers.map((a) => a.status)).toEqual([200, 403, 403, 200, 403, 200]);
  });

  it('uses the trusted peer itself when there is no X-Forwarded-For (127.0.0.1, 403 for 10.0.0.0/8)', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet() } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('refuses when the rightmost X-Forwarded-For entry is not an IP address', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, unknown' } }), 403, 'IP_NOT_ALLOWED', ups);
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, 010.1.2.3' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('still ignores X-Real-IP and Forwarded from a trusted peer', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-real-ip': '10.1.2.3' } }), 403, 'IP_NOT_ALLOWED', ups);
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), forwarded: 'for=10.1.2.3' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('reads an IPv6 X-Forwarded-For entry: 2001:db8::1 is admitted by an allowlist of 2001:db8::/32', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'v6-range', permissions: ['*'], ipAllowlist: ['2001:db8::/32'] });
    expect((await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret, 'x-forwarded-for': '192.0.2.1, 2001:db8::1' } })).status).toBe(200);
    events.reset();
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret, 'x-forwarded-for': '2001:db8::1, 2001:db9::1' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('passes X-Forwarded-Proto and X-Forwarded-Host from the trusted proxy on to the upstream', async () => {
    const k = await createKey(s.kg(), { workspaceId: s.ws(), name: 'xfp-trusted', permissions: ['*'] });
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': k.secret, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' } });
    expect(res.status).toBe(200);
    const h = events.requests[0]!.rawHeaders;
    expect(headerValue(h, 'x-forwarded-proto')).toBe('https');
    expect(headerValue(h, 'x-forwarded-host')).toBe('api.example.com');
  });

  it('passes the trusted chain on to the upstream, with the peer appended', async () => {
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '192.0.2.1, 10.1.2.3' } });
    expect(res.status).toBe(200);
    const xff = headerValue(events.requests[0]!.rawHeaders, 'x-forwarded-for')!;
    expect(xff.split(',').map((p) => p.trim())).toEqual(['192.0.2.1', '10.1.2.3', '127.0.0.1']);
  });
});

describe('client IP with trustedProxies [127.0.0.1/32, 172.16.0.0/12]', () => {
  const s = suite(['127.0.0.1/32', '172.16.0.0/12']);

  it('walks a trusted chain: "10.1.2.3, 172.16.0.5" → client 10.1.2.3, allowed', async () => {
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, 172.16.0.5' } });
    expect(res.status, res.text).toBe(200);
  });

  it('stops at the first untrusted entry from the right: "10.1.2.3, 192.0.2.1, 172.16.0.5" → client 192.0.2.1, 403', async () => {
    await expectRefused(await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, 192.0.2.1, 172.16.0.5' } }), 403, 'IP_NOT_ALLOWED', ups);
  });

  it('reads an IPv4-mapped trusted hop as IPv4: "10.1.2.3, ::ffff:172.16.0.5" → client 10.1.2.3, allowed', async () => {
    const res = await gw(s.kg(), '/v1/events', { headers: { 'x-api-key': s.tenNet(), 'x-forwarded-for': '10.1.2.3, ::ffff:172.16.0.5' } });
    expect(res.status, res.text).toBe(200);
  });
});

describe('client IP on a dual-stack listener (gateway.listen.host "::", trustedProxies [127.0.0.1/32])', () => {
  let kg: Keygate;
  let ws: string;
  let v4: Keygate;
  let v6: Keygate;

  beforeAll(async () => {
    kg = await startKeygate({ config: (dataDir) => {
      const c = gatewayConfig({ events, eventsTest, gateway: { trustedProxies: ['127.0.0.1/32'] } })(dataDir);
      (c.gateway as { listen: { host: string } }).listen.host = '::';
      return c;
    } });
    const port = new URL(kg.gatewayUrl!).port;
    // The same process, reached over IPv4 (the peer is then ::ffff:127.0.0.1) and over IPv6 (::1).
    v4 = { ...kg, gatewayUrl: `http://127.0.0.1:${port}` };
    v6 = { ...kg, gatewayUrl: `http://[::1]:${port}` };
    ws = await createWorkspace(kg, 'dual');
  });

  afterAll(async () => {
    await stopAndClean(kg);
  });

  it('reads the IPv4-mapped peer ::ffff:127.0.0.1 as 127.0.0.1: an allowlist of 127.0.0.1/32 admits it', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'loopback-v4', permissions: ['*'], ipAllowlist: ['127.0.0.1/32'] });
    const res = await gw(v4, '/v1/events', { headers: { 'x-api-key': k.secret } });
    expect(res.status, res.text).toBe(200);
    const xff = headerValue(events.requests[0]!.rawHeaders, 'x-forwarded-for')!;
    expect(xff.split(',').map((p) => p.trim()).at(-1)).toBe('127.0.0.1');
  });

  it('treats the IPv4-mapped peer as the trusted proxy 127.0.0.1/32 and reads X-Forwarded-For', async () => {
    const k = await createKey(kg, { workspaceId: ws, name: 'ten-net-dual', permissions: ['*'], ipAllowlist: ['10.0.0.0/8'] });
    const res = await gw(v4, '/v1/events', { headers: { 'x-api-key': k.secret, 'x-forwarded-for': '10.1.2.3' } });
    expect(res.status, res.text).toBe(200);
  });

  it('does not treat the IPv6 peer ::1 as 127.0.0.1 (403 for 127.0.0.1/32, 200 for ::1)', async () => {
    const v4Only = await createKey(kg, { workspaceId: ws, name: 'v4-only', permissions: ['*'], ipAllowlist: ['127.0.0.1/32'] });
    await expectRefused(await gw(v6, '/v1/events', { headers: { 'x-api-key': v4Only.secret } }), 403, 'IP_NOT_ALLOWED', ups);
    // ::1 is not a trusted proxy either: its X-Forwarded-For is not read.
    await expectRefused(await gw(v6, '/v1/events', { headers: { 'x-api-key': v4Only.secret, 'x-forwarded-for': '127.0.0.1' } }), 403, 'IP_NOT_ALLOWED', ups);
    const v6Key = await createKey(kg, { workspaceId: ws, name: 'v6', permissions: ['*'], ipAllowlist: ['::1/128'] });
    expect((await gw(v6, '/v1/events', { headers: { 'x-api-key': v6Key.secret } })).status).toBe(200);
  });
});
