import { createHash } from 'node:crypto';
import { ValidationError } from '../errors/catalogue.js';

/**
 * A page of an in-memory list in a stable order (creation time, then id), and the cursor of
 * the next: the sort position of the page's last item, so items added or removed meanwhile
 * neither repeat nor shift the pages after it.
 */
export function pageOf<T extends { id: string; createdAt?: string }>(
  all: readonly T[], limit: number, cursor: string | undefined,
): { items: T[]; nextCursor: string | null } {
  const key = (t: T): string => `${t.createdAt ?? ''}\u0000${t.id}`;
  const sorted = [...all].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const after = cursor === undefined ? null : decodeListCursor(cursor);
  const start = after === null ? 0 : sorted.findIndex((t) => key(t) > after);
  const rest = start < 0 ? [] : sorted.slice(start);
  const items = rest.slice(0, limit);
  return { items, nextCursor: rest.length > limit ? encodeListCursor(key(items[items.length - 1]!)) : null };
}

function encodeListCursor(position: string): string {
  return Buffer.from(`p:${position}`).toString('base64url');
}

function decodeListCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('p:')) throw new ValidationError(['cursor: not a cursor this server issued']);
  return text.slice(2);
}

/** A strong validator for a record's state: its id and its precondition token (version or update time). */
export function etagOf(id: string, token: string): string {
  return `"${createHash('sha256').update(`${id}\u0000${token}`).digest('base64url').slice(0, 27)}"`;
}

/**
 * Whether an `If-Match` value (RFC 9110 §13.1.1) admits the current ETag: `*`, or a list
 * holding it; a weak validator never matches (strong comparison).
 */
export function ifMatchAdmits(header: string, current: string): boolean {
  const value = header.trim();
  if (value === '*') return true;
  return value.split(',').some((tag) => tag.trim() === current);
}
