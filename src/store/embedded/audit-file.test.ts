import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../domain/entities.js';
import { keyRecord } from '../../../test/support/fixtures.js';
import { EmbeddedStore } from './embedded-store.js';
import { frame } from './journal.js';

const logger = pino({ level: 'silent' });
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keygate-audit-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function entry(n: number, target: string): AuditEntry {
  return { id: `aud_${n}`, at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(), actor: { type: 'admin', name: 'ops' }, action: 'key.update', target: { type: 'key', id: target }, before: null, after: { n } };
}

async function openStore(): Promise<EmbeddedStore> {
  const store = new EmbeddedStore({ path: dir, logger });
  await store.open();
  return store;
}

/** Commits `count` audited key writes, alternating between two keys. */
async function writeAudited(store: EmbeddedStore, from: number, count: number): Promise<void> {
  for (let n = from; n < from + count; n++) {
    const id = n % 2 === 0 ? 'key_even' : 'key_odd';
    await store.commit({ ops: [{ op: 'put', entity: { type: 'key', value: keyRecord({ id, secretHash: `h_${id}`, name: `v${n}` }) } }], audit: [entry(n, id)] });
  }
}

describe('the audit history across compactions', () => {
  it('moves folded entries out of the snapshot into audit.log and still lists them newest first, by target too', async () => {
    const store = await openStore();
    await writeAudited(store, 0, 6);
    await store.compactNow();
    await writeAudited(store, 6, 4);
    const all = await store.listAudit({ limit: 100 });
    expect(all.map((e) => e.id)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map((n) => `aud_${n}`));
    expect((await store.listAudit({ limit: 3, targetId: 'key_even' })).map((e) => e.id)).toEqual(['aud_8', 'aud_6', 'aud_4']);
    await store.close();
    expect(readFileSync(join(dir, 'snapshot.json'), 'utf8')).not.toContain('aud_0');
    expect(readFileSync(join(dir, 'audit.log'), 'utf8')).toContain('aud_0');
    expect(statSync(join(dir, 'audit.log')).mode & 0o777).toBe(0o600);
    const again = await openStore();
    expect((await again.listAudit({ limit: 100 })).map((e) => e.id)).toEqual(all.map((e) => e.id));
    await again.close();
  });

  it('cuts an audit.log tail the snapshot does not count (a crash between the two writes) and lists each entry once', async () => {
    const store = await openStore();
    await writeAudited(store, 0, 3);
    await store.compactNow();
    await writeAudited(store, 3, 2);
    await store.close();
    // As if a compaction had appended the recent entries and died before its snapshot landed.
    appendFileSync(join(dir, 'audit.log'), Buffer.concat([frame(entry(3, 'key_odd')), frame(entry(4, 'key_even'))]));
    const again = await openStore();
    expect((await again.listAudit({ limit: 100 })).map((e) => e.id)).toEqual(['aud_4', 'aud_3', 'aud_2', 'aud_1', 'aud_0']);
    await again.close();
  });

  it('refuses to load when audit.log is shorter than the snapshot says', async () => {
    const store = await openStore();
    await writeAudited(store, 0, 3);
    await store.compactNow();
    await store.close();
    truncateSync(join(dir, 'audit.log'), 10);
    await expect(openStore()).rejects.toThrow(/audit\.log/);
  });
});
