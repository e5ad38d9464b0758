import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anyCodeUnit, fuzz } from '../../../test/support/fuzz.js';
import { asciiJson } from '../../observability/access-log.js';
import { parseTraceparent, TraceIds, wellFormedRequestId } from './correlation.js';

const hex = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
/** Traceparent-like text: the right shape most of the time, with slips of case, length, separators and content. */
const traceparentLike = fc.oneof(
  fc.tuple(hex(2), hex(32), hex(16), hex(2)).map(([v, t, p, f]) => `${v}-${t}-${p}-${f}`),
  fc.tuple(hex(2), hex(32), hex(16), hex(2), fc.string({ maxLength: 8 })).map(([v, t, p, f, rest]) => `${v}-${t}-${p}-${f}${rest}`),
  fc.tuple(fc.string({ maxLength: 3 }), fc.string({ maxLength: 34 }), fc.string({ maxLength: 18 }), fc.string({ maxLength: 3 })).map((parts) => parts.join('-')),
  fc.string({ unit: anyCodeUnit, maxLength: 60 }),
);
const requestIdLike = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcXYZ019_.:@/+=-'), maxLength: 140 }),
  fc.string({ unit: anyCodeUnit, maxLength: 40 }),
);

describe('correlation headers (property-based)', () => {
  it('reads any traceparent as a valid trace or nothing, never an exception; what it reads it sends on as version 00 that reads back the same', () => {
    const ids = new TraceIds();
    fc.assert(fc.property(traceparentLike, (value) => {
      const parsed = parseTraceparent(value);
      if (parsed === null) return;
      expect(parsed.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(parsed.traceId).not.toBe('0'.repeat(32));
      expect(['00', '01']).toContain(parsed.flags);
      const child = ids.childTraceparent({ ...parsed, tracestate: null });
      expect(child).toHaveLength(55);
      expect(parseTraceparent(child)).toEqual(parsed);
    }), fuzz(2000));
  });

  it('keeps only request ids that are safe as a header value and as JSON text as they are', () => {
    fc.assert(fc.property(requestIdLike, (value) => {
      if (!wellFormedRequestId(value)) return;
      expect(value.length).toBeGreaterThan(0);
      expect(value.length).toBeLessThanOrEqual(128);
      expect(asciiJson(value)).toBe(`"${value}"`);
      expect(/^[\x21-\x7e]+$/.test(value)).toBe(true);
    }), fuzz(2000));
  });
});
