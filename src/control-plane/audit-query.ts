import { workspaceVisible, type AdminGrant } from '../domain/admin-scopes.js';
import type { AuditEntry } from '../domain/entities.js';
import { ValidationError } from '../errors/catalogue.js';
import type { KeyStore } from '../store/types.js';
import type { AuditQuery } from './schemas.js';

/** How many entries one request reads at most while filtering; past it the page ends early, with a cursor. */
const SCAN_BUDGET = 5_000;
const READ_BATCH = 200;

function encodeCursor(position: number): string {
  return Buffer.from(`a:${position}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const m = /^a:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new ValidationError(['cursor: not a cursor this server issued']);
  return Number(m[1]);
}

/**
 * The audit log, newest first, filtered by target, actor, action and time, and to what the
 * grant reaches (a confined token sees only entries about its workspaces). A page may hold
 * fewer than `limit` entries when the filters are sparse: follow `nextCursor` until it is null.
 */
export async function queryAudit(store: KeyStore, query: AuditQuery, grant: AdminGrant): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  const problems: string[] = [];
  if (query.keyId !== undefined && query.targetId !== undefined && query.keyId !== query.targetId) problems.push('keyId: give keyId or targetId, not both');
  if (query.keyId !== undefined && query.targetType !== undefined && query.targetType !== 'key') problems.push('keyId: names a key, but targetType is not "key"');
  if (query.since !== undefined && query.until !== undefined && Date.parse(query.since) >= Date.parse(query.until)) problems.push('until: must be after since');
  if (problems.length > 0) throw new ValidationError(problems);
  const targetType = query.keyId !== undefined ? 'key' : query.targetType;
  const targetId = query.keyId ?? query.targetId;
  const since = query.since === undefined ? null : Date.parse(query.since);
  const until = query.until === undefined ? null : Date.parse(query.until);
  const action = query.action;
  const actionPrefix = action?.endsWith('.*') ? action.slice(0, -1) : null;
  const keep = (e: AuditEntry): boolean => {
    if (!workspaceVisible(grant, e.workspaceId)) return false;
    if (targetType !== undefined && e.target.type !== targetType) return false;
    if (query.actor !== undefined && e.actor.name !== query.actor && e.actor.tokenId !== query.actor) return false;
    if (action !== undefined && (actionPrefix === null ? e.action !== action : !e.action.startsWith(actionPrefix))) return false;
    const at = Date.parse(e.at);
    if (until !== null && at >= until) return false;
    return since === null || at >= since;
  };

  const items: AuditEntry[] = [];
  let before = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  let scanned = 0;
  while (scanned < SCAN_BUDGET) {
    const page = await store.pageAudit({ ...(targetId !== undefined ? { targetId } : {}), ...(before !== undefined ? { before } : {}), limit: READ_BATCH });
    for (const [i, entry] of page.entries.entries()) {
      scanned++;
      if (since !== null && Date.parse(entry.at) < since) return { items, nextCursor: null };
      if (!keep(entry)) continue;
      items.push(entry);
      if (items.length === query.limit) {
        // The page's oldest entry is at position `next` (0 when none follow); the cursor is the last one given.
        const next = (page.next ?? 0) + page.entries.length - (i + 1);
        return { items, nextCursor: next > 0 ? encodeCursor(next) : null };
      }
    }
    if (page.next === null) return { items, nextCursor: null };
    before = page.next;
  }
  return { items, nextCursor: before === undefined ? null : encodeCursor(before) };
}
