import { connect } from 'node:net';

/** A response read straight off the socket, without any client-side normalisation. */
export interface RawHttpResponse {
  statusLine: string;
  status: number;
  /** Alternating names and values as received. */
  rawHeaders: string[];
  /** Lower-cased name → the first value (what `expectError` needs). */
  headers: Record<string, string>;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, else the text, else null when empty. */
  json: any;
  /** Every byte received on the connection. */
  raw: Buffer;
}

/** Builds an HTTP/1.1 request from parts, exactly as given (no validation, no normalisation). */
export function buildRequest(method: string, target: string, headers: ReadonlyArray<readonly [string, string]>, body?: Buffer | string): Buffer {
  const head = `${method} ${target} HTTP/1.1\r\n${headers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

function decodeChunked(buf: Buffer): { body: Buffer; used: number } | null {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol === -1) return null;
    const size = parseInt(buf.subarray(pos, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size');
    if (size === 0) {
      // Trailers, if any, end with an empty line.
      if (buf.length >= eol + 4 && buf.subarray(eol + 2, eol + 4).toString('latin1') === '\r\n') return { body: Buffer.concat(parts), used: eol + 4 };
      const end = buf.indexOf('\r\n\r\n', eol + 2);
      if (end === -1) return null;
      return { body: Buffer.concat(parts), used: end + 4 };
    }
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
}

/**
 * Parses one final response at the start of `buf`, skipping interim 1xx responses (100
 * Continue); null while incomplete. `closed`: the server closed the connection.
 */
function parseOne(buf: Buffer, closed: boolean): { response: RawHttpResponse; used: number } | null {
  const first = parseHead(buf, closed);
  if (first === null) return null;
  const { status } = first.response;
  if (status >= 100 && status < 200 && status !== 101) {
    const next = parseOne(buf.subarray(first.used), closed);
    return next === null ? null : { response: next.response, used: first.used + next.used };
  }
  return first;
}

function parseHead(buf: Buffer, closed: boolean): { response: RawHttpResponse; used: number } | null {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusLine = lines[0]!;
  const status = Number(statusLine.split(' ')[1]);
  const rawHeaders: string[] = [];
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    rawHeaders.push(name, value);
    headers[name.toLowerCase()] ??= value;
  }
  const rest = buf.subarray(headEnd + 4);
  let body: Buffer | null;
  let used: number;
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
    body = Buffer.alloc(0);
    used = headEnd + 4;
  } else if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const decoded = decodeChunked(rest);
    body = decoded?.body ?? null;
    used = headEnd + 4 + (decoded?.used ?? 0);
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    body = rest.length >= n ? rest.subarray(0, n) : null;
    used = headEnd + 4 + n;
  } else {
    body = closed ? rest : null;
    used = buf.length;
  }
  if (body === null) return null;
  const text = body.toString('utf8');
  let json: any = null;
  if (text !== '') {
    try { json = JSON.parse(text); } catch { json = text; }
  }
  return { response: { statusLine, status, rawHeaders, headers, body, text, json, raw: buf.subarray(0, used) }, used };
}

/**
 * Writes `bytes` to `url`'s host and port and reads `count` responses in order (pipelined
 * requests), each until its Content-Length is complete, its chunked body ends, or the server
 * closes. Resolves with the responses read when the server closes early; rejects on timeout.
 */
export function sendRawMany(url: string, bytes: Buffer | string, count: number, timeoutMs = 10_000): Promise<RawHttpResponse[]> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) });
    let received = Buffer.alloc(0);
    const responses: RawHttpResponse[] = [];
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`${responses.length}/${count} complete responses within ${timeoutMs} ms; got ${JSON.stringify(received.toString('latin1').slice(0, 500))}`)), timeoutMs);

    const drain = (closed: boolean): void => {
      while (responses.length < count) {
        const r = parseOne(received, closed);
        if (r === null) return;
        responses.push(r.response);
        received = received.subarray(r.used);
      }
    };
    const finish = (result: RawHttpResponse[] | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onEnd = (err?: Error): void => {
      try { drain(true); } catch { /* keep what was read */ }
      if (responses.length > 0) finish(responses);
      else finish(err ?? new Error(`connection closed before a complete response: ${JSON.stringify(received.toString('latin1').slice(0, 500))}`));
    };
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      try {
        drain(false);
        if (responses.length >= count) finish(responses);
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.on('end', () => onEnd());
    socket.on('error', (err) => onEnd(err));
    socket.on('connect', () => {
      socket.write(bytes);
    });
  });
}

/** Writes `bytes` and reads ONE response (see `sendRawMany`). */
export async function sendRaw(url: string, bytes: Buffer | string, timeoutMs = 10_000): Promise<RawHttpResponse> {
  const [first] = await sendRawMany(url, bytes, 1, timeoutMs);
  return first!;
}

/** The `host:port` of a base URL, for a Host header. */
export function hostOf(url: string): string {
  return new URL(url).host;
}

/** An open connection to write a request in parts and then read one response. */
export interface RawConnection {
  write(bytes: Buffer | string): void;
  /** Resolves with the first complete response (or what the server sent before closing). */
  response(timeoutMs?: number): Promise<RawHttpResponse>;
  /** Bytes received so far. */
  received(): Buffer;
  /** Resolves true once the server has closed the connection, false if it is still open after `timeoutMs`. */
  whenClosed(timeoutMs?: number): Promise<boolean>;
  close(): void;
}

export async function openRaw(url: string): Promise<RawConnection> {
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  let closed = false;
  const listeners = new Set<() => void>();
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (const l of listeners) l();
  });
  const onClose = (): void => {
    closed = true;
    for (const l of listeners) l();
  };
  socket.on('end', onClose);
  socket.on('close', onClose);
  socket.on('error', onClose);
  return {
    write(bytes) {
      socket.write(bytes);
    },
    received: () => buf,
    whenClosed(timeoutMs = 5_000) {
      return new Promise((resolve) => {
        const check = (): void => {
          if (!closed) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(true);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          resolve(false);
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    close() {
      socket.destroy();
    },
    response(timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          let r: ReturnType<typeof parseOne>;
          try {
            r = parseOne(buf, closed);
          } catch (err) {
            done();
            reject(err as Error);
            return;
          }
          if (r) {
            done();
            resolve(r.response);
          } else if (closed) {
            done();
            reject(new Error(`connection closed before a complete response: ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no complete response within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}
