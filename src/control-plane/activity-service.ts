import type { Config } from '../config/schema.js';
import { FULL_GRANT, workspaceVisible, type AdminGrant } from '../domain/admin-scopes.js';
import { KeygateError, ValidationError } from '../errors/catalogue.js';
import type { ActivityRecord, KeyStore } from '../store/types.js';
import type { ListQuery } from './schemas.js';

export interface ActivityPage { items: ActivityRecord[]; nextCursor: string | null }

/** Where a page ended: the last item's place in the order (newest first). */
type Position = readonly [at: string, requestId: string, keyId: string];

function encodeCursor(p: Position): string {
  return Buffer.from(`a:${JSON.stringify(p)}`).toString('base64url');
}

function decodeCursor(cursor: string): Position {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (text.startsWith('a:')) {
    try {
      const p = JSON.parse(text.slice(2)) as unknown;
      if (Array.isArray(p) && p.length === 3 && p.every((x) => typeof x === 'string')) return p as unknown as Position;
    } catch {
      // not ours: refused below
    }
  }
  throw new ValidationError(['cursor: not a cursor this server issued']);
}

/** Newest first; requests ending in the same millisecond in a fixed order (request id, key id). */
function compare(a: Position, b: Position): number {
  for (let i = 0; i < 3; i++) {
    if (a[i]! !== b[i]!) return a[i]! > b[i]! ? -1 : 1;
  }
  return 0;
}

const positionOf = (r: ActivityRecord): Position => [r.at, r.requestId, r.keyId];

/**
 * What keys did: each key's newest requests (as many as `keys.activityPerKey`), recorded by
 * every gateway node, read newest first in pages. A cursor names the last item's place, so
 * requests recorded after the first page do not shift the pages that follow.
 */
export class ActivityService {
  constructor(private readonly store: KeyStore, private readonly config: Config) {}

  async forKey(keyId: string, query: ListQuery, grant: AdminGrant = FULL_GRANT): Promise<ActivityPage> {
    const key = await this.store.getKey(keyId);
    if (!key || !workspaceVisible(grant, key.workspaceId)) throw new KeygateError('KEY_NOT_FOUND', `No key has the id "${keyId}".`);
    return this.page([keyId], query);
  }

  /** Every key of the owner (a confined token: of its workspaces), merged. */
  async forOwner(ownerId: string, query: ListQuery, grant: AdminGrant = FULL_GRANT): Promise<ActivityPage> {
    const owner = await this.store.getOwner(ownerId);
    if (!owner || !workspaceVisible(grant, owner.workspaceId)) throw new KeygateError('OWNER_NOT_FOUND', `No owner has the id "${ownerId}".`);
    let keyIds = await this.store.keyIdsOfOwner(ownerId);
    if (grant.workspaces !== null) {
      // A shared owner's keys may be in other workspaces: those are not the token's to see.
      const visible: string[] = [];
      for (const id of keyIds) {
        const key = await this.store.getKey(id);
        if (key && workspaceVisible(grant, key.workspaceId)) visible.push(id);
      }
      keyIds = visible;
    }
    return this.page(keyIds, query);
  }

  private async page(keyIds: readonly string[], query: ListQuery): Promise<ActivityPage> {
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    // A first page needs no more than `limit` + 1 of any key (the one more says there is a next page).
    const keep = after === null ? Math.min(this.config.keys.activityPerKey, query.limit + 1) : this.config.keys.activityPerKey;
    const all: ActivityRecord[] = [];
    for (const id of keyIds) {
      for (const r of await this.store.listActivity(id, keep)) {
        if (after === null || compare(positionOf(r), after) > 0) all.push(r);
      }
    }
    all.sort((a, b) => compare(positionOf(a), positionOf(b)));
    const items = all.slice(0, query.limit).map(view);
    const last = items[items.length - 1];
    return { items, nextCursor: all.length > query.limit && last !== undefined ? encodeCursor(positionOf(last)) : null };
  }
}

/** Exactly the documented fields, whatever a store row might carry. */
function view(r: ActivityRecord): ActivityRecord {
  return { keyId: r.keyId, at: r.at, requestId: r.requestId, method: r.method, route: r.route, status: r.status, outcome: r.outcome, clientIp: r.clientIp };
}
