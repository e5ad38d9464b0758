import { describe, expect, it } from 'vitest';
import { parseWhen } from './dates.js';
import { UsageError } from './exit-codes.js';

describe('dates on the command line', () => {
  const now = Date.parse('2026-12-03T10:00:00.000Z');
  it.each([
    ['2030-01-01', '2030-01-01T00:00:00.000Z'],
    ['2030-01-01T12:30:00Z', '2030-01-01T12:30:00.000Z'],
    ['2030-01-01T12:30Z', '2030-01-01T12:30:00.000Z'],
    ['2030-01-01T12:30:00.250Z', '2030-01-01T12:30:00.250Z'],
    ['2030-01-01T12:30:00+02:00', '2030-01-01T10:30:00.000Z'],
    ['2030-01-01T12:30:00-0130', '2030-01-01T14:00:00.000Z'],
    ['2030-01-01 12:30:00Z', '2030-01-01T12:30:00.000Z'],
    ['2028-02-29', '2028-02-29T00:00:00.000Z'],
    ['90d', '2027-03-03T10:00:00.000Z'],
    ['12h', '2026-12-03T22:00:00.000Z'],
    ['2w', '2026-12-17T10:00:00.000Z'],
  ])('reads %s as %s', (input, iso) => {
    expect(parseWhen('expires', input, now)).toBe(iso);
  });

  it.each([
    ['2030-02-30', /no such day/],
    ['2027-02-29', /no such day/],
    ['2030-13-01', /no such day/],
    ['2030-01-01T12:00:00', /no time zone/],
    ['2030-01-01T25:00:00Z', /no such time/],
    ['tomorrow', /"tomorrow" is not a date or time/],
    ['01/02/2030', /is not a date/],
    ['', /is not a date/],
  ])('refuses %s naming the flag and the forms it takes', (input, why) => {
    expect(() => parseWhen('expires', input, now)).toThrow(UsageError);
    expect(() => parseWhen('expires', input, now)).toThrow(why);
    expect(() => parseWhen('expires', input, now)).toThrow(/^--expires: .*2030-01-01T12:00:00Z/);
  });
});
