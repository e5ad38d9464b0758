import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActivityRecord } from '../types.js';
import { ActivityFile } from './activity-file.js';

const roots: string[] = [];
afterEach(() => { for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true }); });

function file(): string {
  const root = mkdtempSync(join(tmpdir(), 'keygate-activity-'));
  roots.push(root);
  return join(root, 'activity.log');
}

let n = 0;
const rec = (keyId: string): ActivityRecord => ({
  keyId, at: new Date(Date.UTC(2030, 0, 1, 0, 0, 0, ++n)).toISOString(), requestId: `r${n}`, method: 'GET', route: 'r', status: 200, outcome: 'OK', clientIp: null,
});

describe('ActivityFile', () => {
  it('skips a torn last line and records of keys that no longer exist when read back', async () => {
    const path = file();
    let f = await ActivityFile.open(path, () => true, 10);
    const kept = [rec('key_a'), rec('key_a')];
    await f.append([...kept, rec('key_gone')], 10);
    await f.close();
    appendFileSync(path, '{"keyId":"key_a","at":"2030-');
    f = await ActivityFile.open(path, (id) => id !== 'key_gone', 10);
    expect(f.list('key_a', 10)).toEqual([...kept].reverse());
    expect(f.list('key_gone', 10)).toEqual([]);
    // What follows the torn line is read back whole.
    const next = rec('key_a');
    await f.append([next], 10);
    await f.close();
    f = await ActivityFile.open(path, () => true, 10);
    expect(f.list('key_a', 10)).toEqual([next, ...kept.reverse()]);
    await f.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('rewrites the file with only what it keeps once it carries much more', async () => {
    const path = file();
    const f = await ActivityFile.open(path, () => true, 2);
    for (let i = 0; i < 12_000; i += 1_000) await f.append(Array.from({ length: 1_000 }, () => rec('key_a')), 2);
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeLessThan(11_000);
    const newest = f.list('key_a', 10);
    expect(newest).toHaveLength(2);
    await f.close();
    const again = await ActivityFile.open(path, () => true, 2);
    expect(again.list('key_a', 10)).toEqual(newest);
    await again.close();
  });
});
