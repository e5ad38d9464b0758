import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DrainState } from '../../http/drain.js';
import { scanHeaders } from '../request/credentials.js';
import { UpstreamClocks, type Clocked } from './clocks.js';
import type { ForwardResult } from './proxy-handler.js';
import { profileHeaderValue, upstreamRequestHeaders, type ForwardInfo } from './request-headers.js';
import { clientResponseHeaders } from './response-headers.js';
import { Upstream } from './upstream.js';

const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));

describe('clientResponseHeaders', () => {
  it('keeps end-to-end fields in order with their case, repeated fields included, and adds the request id', () => {
    const out = clientResponseHeaders(raw('Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'ETag', '"x"'), 'req1');
    expect(out).toEqual(['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'ETag', '"x"', 'x-request-id', 'req1']);
  });

  it('drops hop-by-hop fields and every field a Connection header names, in any case', () => {
    const out = clientResponseHeaders(raw(
      'Connection', 'keep-alive, X-Hop', 'connection', 'x-other', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked',
      'X-Hop', '1', 'X-OTHER', '2', 'X-Kept', '3', 'Upgrade', 'h2c', 'Trailer', 'x-t',
    ), 'req2');
    expect(out).toEqual(['X-Kept', '3', 'x-request-id', 'req2']);
  });

  it("adds the gateway's RateLimit-* fields after the request id, replacing any the upstream sent under those names in any case", () => {
    const limits = { 'ratelimit-limit': '10', 'ratelimit-remaining': '9', 'ratelimit-reset': '60' };
    const out = clientResponseHeaders(raw('RateLimit-Limit', '1000', 'Content-Type', 'text/plain', 'ratelimit-remaining', '999', 'RateLimit-Policy', '"p";q=1000'), 'r', limits);
    expect(out).toEqual([
      'Content-Type', 'text/plain', 'RateLimit-Policy', '"p";q=1000', 'x-request-id', 'r',
      'ratelimit-limit', '10', 'ratelimit-remaining', '9', 'ratelimit-reset', '60',
    ]);
  });

  it("replaces the upstream's own X-Request-Id with the gateway's", () => {
    const out = clientResponseHeaders(raw('X-Request-Id', 'upstream-id', 'x-request-id', 'again', 'Content-Length', '2'), 'gw-id');
    expect(out).toEqual(['Content-Length', '2', 'x-request-id', 'gw-id']);
  });

  it('passes header values byte for byte (latin1), as the upstream sent them', () => {
    const value = Buffer.from([0x63, 0xe9, 0x20, 0x7e]); // "cé ~" in latin1
    const out = clientResponseHeaders([Buffer.from('X-Name'), value], 'r');
    expect(Buffer.from(out[1]!, 'latin1')).toEqual(value);
  });
});

describe('UpstreamClocks', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A clock list whose sweep suits `timeoutMs`. */
  const clocksFor = (timeoutMs: number): UpstreamClocks => {
    const clocks = new UpstreamClocks();
    clocks.register(timeoutMs);
    return clocks;
  };

  /** Like the gateway's exchanges, one that times out settles and leaves the list at once. */
  const exchange = (clocks: UpstreamClocks, timeoutMs: number): Clocked & { fired: number } => {
    const x: Clocked & { fired: number } = {
      progressAt: performance.now(), timeoutMs, prev: null, next: null, fired: 0,
      timedOut: () => {
        x.fired++;
        clocks.remove(x);
      },
    };
    return x;
  };

  it('times an exchange out once it has made no progress for its timeoutMs, within a tenth of it, and never before', () => {
    const clocks = clocksFor(1_000);
    const x = exchange(clocks, 1_000);
    clocks.add(x);
    vi.advanceTimersByTime(900);
    expect(x.fired).toBe(0);
    // Progress starts its clock again.
    x.progressAt = performance.now();
    vi.advanceTimersByTime(999);
    expect(x.fired).toBe(0);
    vi.advanceTimersByTime(100);
    expect(x.fired).toBe(1);
  });

  it('keeps each exchange to its own timeoutMs, sweeping finely enough for the shortest one registered', () => {
    const clocks = clocksFor(10_000);
    const slow = exchange(clocks, 10_000);
    clocks.add(slow);
    clocks.register(200);
    const fast = exchange(clocks, 200);
    clocks.add(fast);
    vi.advanceTimersByTime(220);
    expect(fast.fired).toBe(1);
    expect(slow.fired).toBe(0);
  });

  it('forgets a removed exchange, keeps the others, and stops sweeping once none is in flight', () => {
    const clocks = clocksFor(100);
    const [a, b, c] = [exchange(clocks, 100), exchange(clocks, 100), exchange(clocks, 100)];
    clocks.add(a);
    clocks.add(b);
    clocks.add(c);
    expect(clocks.running).toBe(true);
    clocks.remove(b);
    vi.advanceTimersByTime(110);
    expect([a.fired, b.fired, c.fired]).toEqual([1, 0, 1]);
    vi.advanceTimersByTime(20);
    expect(clocks.running).toBe(false);
    clocks.add(b);
    expect(clocks.running).toBe(true);
  });

  it('times out every idle exchange in one sweep though each leaves the list as it goes', () => {
    const clocks = clocksFor(100);
    const all = Array.from({ length: 5 }, () => exchange(clocks, 100));
    for (const x of all) clocks.add(x);
    vi.advanceTimersByTime(100);
    expect(all.map((x) => x.fired)).toEqual([1, 1, 1, 1, 1]);
  });

  it('ignores an exchange added twice or removed when it is not on the list', () => {
    const clocks = clocksFor(100);
    const [a, b] = [exchange(clocks, 100), exchange(clocks, 100)];
    clocks.add(a);
    clocks.add(a);
    clocks.remove(b);
    clocks.add(b);
    vi.advanceTimersByTime(100);
    expect([a.fired, b.fired]).toEqual([1, 1]);
    vi.advanceTimersByTime(20);
    expect(clocks.running).toBe(false);
  });
});

const INFO: ForwardInfo = {
  requestId: 'rid', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: null, peerIp: '127.0.0.1', peerTrusted: false,
  identity: { keyId: 'key_1', workspaceId: 'ws_1', keyType: 'profile', environment: 'live', profile: null },
};

/** upstreamRequestHeaders for a request with these raw headers, as `[name, value]` pairs. */
function forwarded(rawHeaders: string[], info: ForwardInfo = INFO): Array<[string, string]> {
  const req = { rawHeaders, headers: {} } as unknown as IncomingMessage;
  const out = upstreamRequestHeaders(req, scanHeaders(rawHeaders), info);
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < out.length; i += 2) pairs.push([out[i]!, out[i + 1]!]);
  return pairs;
}

describe('upstreamRequestHeaders', () => {
  it('drops every header whose name, "_" read as "-", is one the gateway removes or replaces, and keeps other names with "_" (regression)', () => {
    const lookAlikes = [
      'X_Keygate_Key_Id', 'x_keygate_profile', 'X-Keygate_Anything', 'X_Api_Key', 'X_Request_Id', 'X_Forwarded_For', 'X_Forwarded_Proto',
      'X_Forwarded_Host', 'Proxy_Authorization', 'Proxy_Connection', 'Keep_Alive', 'Transfer_Encoding',
    ];
    const out = forwarded(['Host', 'h', ...lookAlikes.flatMap((n) => [n, 'forged']), 'X_Custom', 'kept', 'X-Other', 'kept']);
    expect(out.filter(([, v]) => v === 'forged')).toEqual([]);
    expect(out.filter(([, v]) => v === 'kept')).toEqual([['X_Custom', 'kept'], ['X-Other', 'kept']]);
    expect(out.filter(([n]) => n === 'x-keygate-key-id')).toEqual([['x-keygate-key-id', 'key_1']]);
  });

  it('carries the profile in X-Keygate-Profile percent-encoded as UTF-8, so that any identity makes a valid header', () => {
    const profile = (p: string): string | undefined => forwarded(['Host', 'h'], { ...INFO, identity: { ...INFO.identity, profile: p } }).find(([n]) => n === 'x-keygate-profile')?.[1];
    expect(profile('user-42')).toBe('user-42');
    expect(profile('用户-42')).toBe('%E7%94%A8%E6%88%B7-42');
  });
});

describe('profileHeaderValue', () => {
  it('passes visible ASCII but "%" unchanged, and percent-encodes the UTF-8 bytes of everything else (regression)', () => {
    expect(profileHeaderValue('user-42')).toBe('user-42');
    expect(profileHeaderValue('a+tag@b.example')).toBe('a+tag@b.example');
    expect(profileHeaderValue('用户-42')).toBe('%E7%94%A8%E6%88%B7-42');
    expect(profileHeaderValue('fox-🦊')).toBe('fox-%F0%9F%A6%8A');
    expect(profileHeaderValue('50% off')).toBe('50%25%20off');
    expect(profileHeaderValue('a\r\nb\u0000c\u007f\u0085')).toBe('a%0D%0Ab%00c%7F%C2%85');
  });

  it('gives, for any well-formed string, a visible-ASCII header value that decodeURIComponent turns back into it (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (value) => {
      const header = profileHeaderValue(value);
      return /^[\x21-\x7e]*$/.test(header) && decodeURIComponent(header) === value
        && (/^[\x21\x22\x23\x24\x26-\x7e]*$/.test(value) ? header === value : true);
    }), { seed: 20261203, numRuns: 2_000 });
  });

  it('always gives a valid header value that decodeURIComponent turns back into the identity', () => {
    const samples = ['', 'plain', '%', '%%41', 'jöns@exämple.香港', '\u{10FFFF}x', 'tab\there', 'ÿ', ' lead and trail ', '"quoted";,'];
    for (const value of samples) {
      const header = profileHeaderValue(value);
      expect(header, value).toMatch(/^[\x21-\x7e]*$/);
      expect(decodeURIComponent(header), value).toBe(value);
    }
  });
});

describe('Upstream.forward', () => {
  let upstreamServer: Server;
  let front: Server;
  let upstream: Upstream;
  let contacted = 0;

  beforeEach(async () => {
    contacted = 0;
    upstreamServer = createServer((_req, res) => {
      contacted++;
      res.end('ok');
    });
    await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
    upstream = new Upstream('test', { url: `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`, timeoutMs: 2_000 }, 1);
  });

  afterEach(async () => {
    await upstream.close();
    await new Promise((r) => upstreamServer.close(r));
    if (front) await new Promise((r) => front.close(r));
  });

  /** Forwards one request to the test upstream with these headers; resolves with the forward's result. */
  async function forwardWith(headers: string[]): Promise<ForwardResult> {
    const drain = { draining: false } as DrainState;
    let result!: Promise<ForwardResult>;
    front = createServer((req, res) => {
      result = new Promise((resolve) => upstream.forward(req, res, null, '/x', headers, 'rid', drain, null, false, null, (r) => {
        if (!res.headersSent) res.writeHead(599).end();
        resolve(r);
      }));
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    await fetch(`http://127.0.0.1:${(front.address() as AddressInfo).port}/`).then((r) => r.text());
    return result;
  }

  it('reports a request it could not build (a header value undici refuses) as the gateway\'s own fault, not the upstream\'s, without contacting it (regression)', async () => {
    const result = await forwardWith(['x-bad', 'a\nb', 'x-other', '用户']);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.code).toBe('INTERNAL');
    expect(contacted).toBe(0);
  });

  it('forwards valid headers to the upstream', async () => {
    const result = await forwardWith(['x-good', 'value']);
    expect(result).toEqual({ ok: true, status: 200 });
    expect(contacted).toBe(1);
  });
});
