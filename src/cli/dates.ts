import { UsageError } from './exit-codes.js';

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
// RFC 3339: a date, `T` (or a space), a time with optional fraction, and a zone (`Z` or ±hh:mm).
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;
const RELATIVE = /^(\d{1,6})([smhdw])$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

const FORMS = '2030-01-01 (midnight UTC), 2030-01-01T12:00:00Z, 2030-01-01T12:00:00+02:00 or a duration from now (90d, 12h)';

/**
 * A date or time from the command line, as the admin API takes it (ISO 8601 in UTC): a day
 * (`2030-01-01`, midnight UTC), a full RFC 3339 timestamp with its zone, or a duration from
 * `now` (`30d`, `12h`, `90m`, `2w`). A calendar date that does not exist (`2030-02-30`) is refused.
 */
export function parseWhen(flag: string, value: string, now: number = Date.now()): string {
  const bad = (why = ''): never => {
    throw new UsageError(`--${flag}: "${value}" is not a date or time${why}; give ${FORMS}`);
  };
  const rel = RELATIVE.exec(value);
  if (rel) return new Date(now + Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS]).toISOString();
  const day = DATE.exec(value);
  const full = day ? null : TIMESTAMP.exec(value);
  const parts = day ?? full;
  if (!parts) return bad(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/i.test(value) ? ' (no time zone: add Z for UTC, or an offset such as +02:00)' : '');
  const [y, mo, d] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) bad(' (no such day)');
  if (day) return check.toISOString();
  const [h, mi, s] = [Number(full![4]), Number(full![5]), Number(full![6] ?? 0)];
  if (h > 23 || mi > 59 || s > 59) bad(' (no such time)');
  const ms = Date.parse(value.replace(' ', 'T').replace(/([+-]\d{2})(\d{2})$/, '$1:$2'));
  if (Number.isNaN(ms)) bad();
  return new Date(ms).toISOString();
}
