import { describe, expect, it } from 'vitest';
import { clientResponseHeaders } from './forwarder.js';

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
