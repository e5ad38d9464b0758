import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createNetServer } from 'node:net';

/** One request as the upstream received it, byte for byte where it matters. */
export interface RecordedRequest {
  method: string;
  /** The raw request target, never normalised. */
  url: string;
  /** Alternating names and values, as on the wire (names keep their case). */
  rawHeaders: string[];
  body: Buffer;
  sha256: string;
  receivedAt: number;
}

/**
 * How the upstream answers. Per request, these request headers (which a gateway forwards
 * like any other) override the defaults:
 *   x-upstream-delay: ms before the response headers are sent;
 *   x-upstream-status: the status code;
 *   x-upstream-trickle: ms — the body is sent in two parts, "first\n" at once after the
 *     headers and "second\n" after that many ms (chunked), to observe response streaming;
 *   x-upstream-destroy: any value — the connection is destroyed without an answer;
 *   x-upstream-size: bytes — the answer is that many bytes of "a" (octet-stream).
 * The default answer is JSON `{name, method, url, length, sha256}` with extra headers meant
 * to test forwarding: `x-upstream-name`, `x-custom`, two `set-cookie`, and `Connection: x-hop`
 * plus `x-hop: 1` (hop-by-hop by nomination: a proxy must strip both).
 */
export interface UpstreamBehaviour {
  delayMs: number;
  status: number;
}

export interface RecordingUpstream {
  name: string;
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Requests whose headers arrived, recorded before their body is read (to observe streaming). */
  started: Array<{ method: string; url: string; at: number }>;
  behaviour: UpstreamBehaviour;
  /** Forgets what was recorded and restores the default behaviour. */
  reset(): void;
  /** Resolves when at least `n` requests have been recorded in full (or rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves when the headers of at least `n` requests have arrived (or rejects after `timeoutMs`). */
  waitForStarted(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Header values (all occurrences, case-insensitive name) from a raw header list. */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const lower = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === lower) out.push(rawHeaders[i + 1]!);
  return out;
}

/** The one value of a header, undefined when absent; throws when it appears more than once. */
export function headerValue(rawHeaders: readonly string[], name: string): string | undefined {
  const all = headerValues(rawHeaders, name);
  if (all.length > 1) throw new Error(`header ${name} appears ${all.length} times: ${JSON.stringify(all)}`);
  return all[0];
}

export async function startUpstream(name = 'upstream'): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  const started: Array<{ method: string; url: string; at: number }> = [];
  const defaults: UpstreamBehaviour = { delayMs: 0, status: 200 };
  const behaviour: UpstreamBehaviour = { ...defaults };
  const waiters: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    started.push({ method: req.method ?? '', url: req.url ?? '', at: Date.now() });
    for (const w of waiters.splice(0)) w();
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      length += d.length;
      // Large bodies are hashed, not kept whole beyond 1 MiB.
      if (length <= 1024 * 1024) chunks.push(d);
    });
    req.on('end', () => {
      const sha256 = hash.digest('hex');
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: [...req.rawHeaders], body, sha256, receivedAt: Date.now() });
      for (const w of waiters.splice(0)) w();
      const delayHeader = req.headers['x-upstream-delay'];
      const statusHeader = req.headers['x-upstream-status'];
      const delay = typeof delayHeader === 'string' ? Number(delayHeader) : behaviour.delayMs;
      const status = typeof statusHeader === 'string' ? Number(statusHeader) : behaviour.status;
      const trickle = req.headers['x-upstream-trickle'];
      const answer = (): void => {
        if (res.destroyed) return;
        if (req.headers['x-upstream-destroy'] !== undefined) {
          req.socket.destroy();
          return;
        }
        const size = req.headers['x-upstream-size'];
        if (typeof size === 'string') {
          res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Content-Length': size });
          res.end(Buffer.alloc(Number(size), 0x61));
          return;
        }
        if (typeof trickle === 'string') {
          res.writeHead(status, { 'Content-Type': 'text/plain', 'X-Upstream-Name': name });
          res.write('first\n');
          const t = setTimeout(() => { timers.delete(t); res.end('second\n'); }, Number(trickle));
          timers.add(t);
          return;
        }
        const payload = Buffer.from(JSON.stringify({ name, method: req.method, url: req.url, length, sha256 }));
        res.writeHead(status, [
          ['Content-Type', 'application/json'],
          ['Content-Length', String(payload.length)],
          ['X-Upstream-Name', name],
          ['X-Custom', 'custom-value'],
          ['Set-Cookie', 'a=1; Path=/'],
          ['Set-Cookie', 'b=2; Path=/'],
          ['Connection', 'x-hop'],
          ['X-Hop', '1'],
        ].flat());
        res.end(payload);
      };
      if (delay > 0) {
        const t = setTimeout(() => { timers.delete(t); answer(); }, delay);
        timers.add(t);
      } else {
        answer();
      }
    });
  };

  const waitUntil = (cond: () => boolean, describe: () => string, timeoutMs: number): Promise<void> => {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(describe())), timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else {
          waiters.push(check);
        }
      };
      check();
    });
  };

  // Generous header limit: the gateway's own 16 KiB limit is under test, not this server's.
  const server: Server = createServer({ keepAliveTimeout: 60_000, maxHeaderSize: 64 * 1024 }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    started,
    behaviour,
    reset() {
      requests.length = 0;
      started.length = 0;
      Object.assign(behaviour, defaults);
    },
    waitFor(n, timeoutMs = 5_000) {
      return waitUntil(() => requests.length >= n, () => `${name}: expected ${n} requests, got ${requests.length}`, timeoutMs);
    },
    waitForStarted(n, timeoutMs = 5_000) {
      return waitUntil(() => started.length >= n, () => `${name}: expected ${n} started requests, got ${started.length}`, timeoutMs);
    },
    close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP port on 127.0.0.1 with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export interface UpstreamPair {
  events: RecordingUpstream;
  eventsTest: RecordingUpstream;
  all: RecordingUpstream[];
}

/**
 * The two recording upstreams every gateway suite routes to (`events` and `events-test`):
 * started before the suite's own beforeAll (call this first), emptied before each test,
 * closed after the suite's own afterAll.
 */
export function useUpstreamPair(): UpstreamPair {
  const pair = {} as UpstreamPair;
  beforeAll(async () => {
    pair.events = await startUpstream('events');
    pair.eventsTest = await startUpstream('events-test');
    pair.all = [pair.events, pair.eventsTest];
  });
  afterAll(async () => {
    await pair.events?.close();
    await pair.eventsTest?.close();
  });
  beforeEach(() => {
    pair.events.reset();
    pair.eventsTest.reset();
  });
  return pair;
}
