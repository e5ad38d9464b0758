import { describe, expect, it } from 'vitest';
import { parseTraceparent, TraceIds, wellFormedRequestId } from './correlation.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

describe('wellFormedRequestId', () => {
  it('keeps ids of letters, digits and _.:@/+=- up to 128 characters', () => {
    for (const id of ['a', 'abc-123', '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', 'req_1.2:3@host/x+y=', 'x'.repeat(128)]) expect(wellFormedRequestId(id), id).toBe(true);
  });

  it('refuses empty, long, spaced, quoted, control and non-ASCII ids', () => {
    for (const id of ['', 'x'.repeat(129), 'a b', 'a"b', 'a\\b', 'a\tb', 'a,b', 'a;b', 'ü', '<script>', '%41']) expect(wellFormedRequestId(id), id).toBe(false);
  });
});

describe('parseTraceparent', () => {
  it('reads a version 00 traceparent, keeping only the sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01`)).toEqual({ traceId: TRACE, flags: '01' });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-00`)).toEqual({ traceId: TRACE, flags: '00' });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-03`)).toEqual({ traceId: TRACE, flags: '01' });
  });

  it('reads a later version as 00 when its first fields are, with or without more after a dash', () => {
    expect(parseTraceparent(`01-${TRACE}-${PARENT}-01`)).toEqual({ traceId: TRACE, flags: '01' });
    expect(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-comes-next`)).toEqual({ traceId: TRACE, flags: '01' });
  });

  it('refuses version ff, upper-case hex, all-zero ids, wrong lengths and separators', () => {
    for (const v of [
      `ff-${TRACE}-${PARENT}-01`, `00-${TRACE.toUpperCase()}-${PARENT}-01`, `00-${'0'.repeat(32)}-${PARENT}-01`, `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE}-${PARENT}-01-extra`, `00-${TRACE}-${PARENT}-1`, `00-${TRACE.slice(1)}-${PARENT}-01`, `00_${TRACE}_${PARENT}_01`,
      `0g-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-0x`, `cc-${TRACE}-${PARENT}-01x`, '', 'garbage',
    ]) expect(parseTraceparent(v), v).toBeNull();
  });
});

describe('TraceIds', () => {
  it('continues a valid trace with its tracestate, and starts a sampled one otherwise, dropping the tracestate', () => {
    const ids = new TraceIds();
    expect(ids.trace(`00-${TRACE}-${PARENT}-00`, 1, 'a=1')).toEqual({ traceId: TRACE, flags: '00', tracestate: 'a=1' });
    for (const [tp, n] of [[null, 0], ['bad', 1], [`00-${TRACE}-${PARENT}-01`, 2]] as const) {
      const t = ids.trace(tp, n, 'a=1');
      expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(t.traceId).not.toBe(TRACE);
      expect([t.flags, t.tracestate]).toEqual(['01', null]);
    }
  });

  it('makes a child traceparent with the trace id, a new span id and the flags', () => {
    const ids = new TraceIds();
    const trace = ids.trace(`00-${TRACE}-${PARENT}-01`, 1, null);
    const a = ids.childTraceparent(trace);
    const b = ids.childTraceparent(trace);
    expect(a).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(a).not.toBe(b);
    expect(a).not.toContain(PARENT);
    expect(parseTraceparent(a)).toEqual({ traceId: TRACE, flags: '01' });
  });

  it('draws distinct ids across many pool refills', () => {
    const ids = new TraceIds();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(ids.traceId());
    expect(seen.size).toBe(2000);
    for (const id of seen) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });
});
