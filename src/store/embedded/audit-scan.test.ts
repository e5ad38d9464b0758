import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { audit, keyRecord, putKey } from '../../../test/support/store-contract/index.js';
import { EmbeddedStore } from './embedded-store.js';

const logger = pino({ level: 'silent' });

describe('embedded store: the audit scan across the audit file and the journal', () => {
  const roots: string[] = [];
  const stores: EmbeddedStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });
  const open = async (dir?: string): Promise<EmbeddedStore> => {
    const path = dir ?? join(mkdtempSync(join(tmpdir(), 'keygate-audit-scan-')), 'data');
    if (dir === undefined) roots.push(join(path, '..'));
    const store = new EmbeddedStore({ path, logger });
    await store.open();
    stores.push(store);
    return store;
  };

  it('pages in commit order over entries folded into the audit file and entries still in the journal', async () => {
    const store = await open();
    const rec = keyRecord();
    const entries = Array.from({ length: 6 }, (_, i) => audit(`key.update-${i}`, rec.id));
    await store.commit(putKey(rec, { audit: entries.slice(0, 4) }));
    await store.compactNow();
    await store.commit(putKey({ ...rec, name: 'later' }, { audit: entries.slice(4) }));
    expect(await store.scanAudit(0, 10)).toEqual(entries);
    expect(await store.scanAudit(2, 3)).toEqual(entries.slice(2, 5));
    expect(await store.scanAudit(4, 10)).toEqual(entries.slice(4));
    expect(await store.scanAudit(5, 10)).toEqual(entries.slice(5));
  });
});
