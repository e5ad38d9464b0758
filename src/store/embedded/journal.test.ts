import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptStoreError, Journal, frame, parseJournal, readFramedRecords, writeFramedRecordsAtomic } from './journal.js';

const records = [
  { v: 1, ops: [{ op: 'put', id: 'a' }] },
  { v: 2, text: 'line\nbreak and "quotes" and ünïcödé ✓' },
  { v: 3, nested: { list: [1, 2, 3], empty: {} } },
];

function framed(items: readonly unknown[]): Buffer {
  return Buffer.concat(items.map((r) => frame(r)));
}

describe('frame', () => {
  it('writes one line per record: 8 hex digits of checksum, a space, the JSON, a newline', () => {
    const text = frame(records[1]).toString('utf8');
    expect(text).toMatch(/^[0-9a-f]{8} \{.*\}\n$/);
    expect(text.indexOf('\n')).toBe(text.length - 1);
  });
});

describe('parseJournal', () => {
  it('reads back exactly the records that were framed', () => {
    const buf = framed(records);
    const result = parseJournal(buf, 'j');
    expect(result.records).toEqual(records);
    expect(result.validBytes).toBe(buf.length);
    expect(result.tornBytes).toBe(0);
  });

  it('reads an empty file as no records', () => {
    expect(parseJournal(Buffer.alloc(0), 'j')).toEqual({ records: [], validBytes: 0, tornBytes: 0 });
  });

  it('drops a last record cut off mid-way and reports it as torn', () => {
    const good = framed(records.slice(0, 2));
    const last = frame(records[2]);
    const buf = Buffer.concat([good, last.subarray(0, Math.floor(last.length / 2))]);
    const result = parseJournal(buf, 'j');
    expect(result.records).toEqual(records.slice(0, 2));
    expect(result.validBytes).toBe(good.length);
    expect(result.tornBytes).toBe(buf.length - good.length);
  });

  it('drops a last record that is complete but for its newline', () => {
    const good = framed(records.slice(0, 2));
    const last = frame(records[2]);
    const buf = Buffer.concat([good, last.subarray(0, last.length - 1)]);
    const result = parseJournal(buf, 'j');
    expect(result.records).toEqual(records.slice(0, 2));
    expect(result.validBytes).toBe(good.length);
    expect(result.tornBytes).toBe(last.length - 1);
  });

  it('drops a last line whose checksum does not match', () => {
    const good = framed(records.slice(0, 2));
    const last = Buffer.from(frame(records[2]));
    last[0] = last[0] === 0x30 ? 0x31 : 0x30;
    const buf = Buffer.concat([good, last]);
    const result = parseJournal(buf, 'j');
    expect(result.records).toEqual(records.slice(0, 2));
    expect(result.validBytes).toBe(good.length);
    expect(result.tornBytes).toBe(last.length);
  });

  it('drops a last line whose JSON was altered after framing', () => {
    const good = framed(records.slice(0, 1));
    const last = Buffer.from(frame({ v: 2, n: 123 }).toString('utf8').replace('123', '124'));
    const result = parseJournal(Buffer.concat([good, last]), 'j');
    expect(result.records).toEqual(records.slice(0, 1));
    expect(result.tornBytes).toBe(last.length);
  });

  it('treats a tail of zero bytes (a preallocated, never-written block) as torn', () => {
    const good = framed(records);
    const buf = Buffer.concat([good, Buffer.alloc(64)]);
    const result = parseJournal(buf, 'j');
    expect(result.records).toEqual(records);
    expect(result.validBytes).toBe(good.length);
    expect(result.tornBytes).toBe(64);
  });

  it('refuses a damaged record that is followed by good ones', () => {
    const first = frame(records[0]);
    const damaged = Buffer.from(frame(records[1]));
    damaged[12] = damaged[12] === 0x41 ? 0x42 : 0x41;
    const buf = Buffer.concat([first, damaged, frame(records[2])]);
    expect(() => parseJournal(buf, 'journal.log')).toThrow(CorruptStoreError);
    expect(() => parseJournal(buf, 'journal.log')).toThrow(/journal\.log/);
  });

  it('refuses a damaged first record followed by a good one', () => {
    const buf = Buffer.concat([Buffer.from('garbage\n'), frame(records[0])]);
    expect(() => parseJournal(buf, 'j')).toThrow(CorruptStoreError);
  });

  it('refuses an empty line in the middle of the journal', () => {
    const buf = Buffer.concat([frame(records[0]), Buffer.from('\n'), frame(records[1])]);
    expect(() => parseJournal(buf, 'j')).toThrow(CorruptStoreError);
  });
});

describe('on disk', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keygate-journal-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('Journal', () => {
    it('creates a missing journal with mode 0600', async () => {
      const file = join(dir, 'journal.log');
      const { journal, records: read, tornBytes } = await Journal.open(file);
      await journal.close();
      expect(read).toEqual([]);
      expect(tornBytes).toBe(0);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    });

    it('tightens an existing journal to mode 0600', async () => {
      const file = join(dir, 'journal.log');
      writeFileSync(file, '');
      chmodSync(file, 0o644);
      const { journal } = await Journal.open(file);
      await journal.close();
      expect(statSync(file).mode & 0o777).toBe(0o600);
    });

    it('reads back what was appended, across a reopen', async () => {
      const file = join(dir, 'journal.log');
      const first = await Journal.open(file);
      for (const r of records) await first.journal.append(r);
      expect(first.journal.bytes).toBe(framed(records).length);
      await first.journal.close();
      const second = await Journal.open(file);
      await second.journal.close();
      expect(second.records).toEqual(records);
      expect(second.tornBytes).toBe(0);
    });

    it('cuts a torn tail off the file on open, then appends after the last good record', async () => {
      const file = join(dir, 'journal.log');
      const good = framed(records.slice(0, 2));
      const last = frame(records[2]);
      writeFileSync(file, Buffer.concat([good, last.subarray(0, 10)]));

      const opened = await Journal.open(file);
      expect(opened.records).toEqual(records.slice(0, 2));
      expect(opened.tornBytes).toBe(10);
      expect(statSync(file).size).toBe(good.length);
      expect(opened.journal.bytes).toBe(good.length);

      await opened.journal.append({ v: 3, after: 'repair' });
      await opened.journal.close();
      expect(readFileSync(file)).toEqual(Buffer.concat([good, frame({ v: 3, after: 'repair' })]));

      const reopened = await Journal.open(file);
      await reopened.journal.close();
      expect(reopened.records).toEqual([...records.slice(0, 2), { v: 3, after: 'repair' }]);
      expect(reopened.tornBytes).toBe(0);
    });

    it('refuses to open a journal with a damaged record in the middle, and leaves it as it was', async () => {
      const file = join(dir, 'journal.log');
      const content = Buffer.concat([frame(records[0]), Buffer.from('00000000 {"bad":1}\n'), frame(records[2])]);
      writeFileSync(file, content);
      await expect(Journal.open(file)).rejects.toBeInstanceOf(CorruptStoreError);
      expect(readFileSync(file)).toEqual(content);
    });

    it('empties the file on reset', async () => {
      const file = join(dir, 'journal.log');
      const { journal } = await Journal.open(file);
      await journal.append(records[0]);
      await journal.reset();
      expect(journal.bytes).toBe(0);
      await journal.append(records[1]);
      await journal.close();
      expect(readFileSync(file)).toEqual(frame(records[1]));
    });
  });

  describe('readFramedRecords and writeFramedRecordsAtomic', () => {
    const read = async (file: string): Promise<unknown[] | null> => {
      const out: unknown[] = [];
      return (await readFramedRecords(file, (r) => out.push(r))) ? out : null;
    };

    it('writes records one by one and reads them back in order, a record larger than a read chunk included', async () => {
      const big = { blob: 'x'.repeat(3 * 1024 * 1024) };
      const records = [{ n: 1 }, big, { n: 3 }];
      await writeFramedRecordsAtomic(dir, 'snap.json', records);
      expect(await read(join(dir, 'snap.json'))).toEqual(records);
      expect(statSync(join(dir, 'snap.json')).mode & 0o777).toBe(0o600);
    });

    it('returns null for a missing file', async () => {
      expect(await read(join(dir, 'absent.json'))).toBeNull();
    });

    it('throws on a damaged record, and on a last record cut off', async () => {
      const bad = Buffer.concat([frame({ a: 1 }), frame({ b: 2 })]);
      bad[bad.length - 4] = 0x7b;
      writeFileSync(join(dir, 'bad.json'), bad);
      await expect(read(join(dir, 'bad.json'))).rejects.toThrow(/damaged record at byte 17/);
      const whole = Buffer.concat([frame({ a: 1 }), frame({ b: 2 })]);
      writeFileSync(join(dir, 'cut.json'), whole.subarray(0, whole.length - 1));
      await expect(read(join(dir, 'cut.json'))).rejects.toBeInstanceOf(CorruptStoreError);
    });
  });

  describe('writeFramedRecordsAtomic', () => {
    const text = (name: string): string => readFileSync(join(dir, name), 'utf8');

    it('replaces the content of an existing file', async () => {
      await writeFramedRecordsAtomic(dir, 'f', [{ old: 'content that is longer' }, { more: 1 }]);
      await writeFramedRecordsAtomic(dir, 'f', [{ n: 1 }]);
      expect(text('f')).toBe(frame({ n: 1 }).toString());
    });

    it('creates the file with mode 0600', async () => {
      await writeFramedRecordsAtomic(dir, 'f', [{ x: 1 }]);
      expect(statSync(join(dir, 'f')).mode & 0o777).toBe(0o600);
    });

    it('replaces a file that had looser permissions with a 0600 one', async () => {
      writeFileSync(join(dir, 'f'), 'old');
      chmodSync(join(dir, 'f'), 0o644);
      await writeFramedRecordsAtomic(dir, 'f', [{ x: 1 }]);
      expect(statSync(join(dir, 'f')).mode & 0o777).toBe(0o600);
    });

    it('leaves no temporary file behind', async () => {
      await writeFramedRecordsAtomic(dir, 'f', [{ x: 1 }]);
      expect(readdirSync(dir)).toEqual(['f']);
      expect(existsSync(join(dir, 'f.tmp'))).toBe(false);
    });

    it('leaves the old file in place when a record cannot be written', async () => {
      await writeFramedRecordsAtomic(dir, 'f', [{ x: 1 }]);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expect(writeFramedRecordsAtomic(dir, 'f', [{ y: 2 }, cyclic])).rejects.toThrow();
      expect(text('f')).toBe(frame({ x: 1 }).toString());
      expect(readdirSync(dir)).toEqual(['f']);
    });
  });
});

describe('short writes', () => {
  it('keeps writing until every byte is down when the file accepts only a few bytes per call (regression: a 2xx for a half-written record)', async () => {
    const { writeFully } = await import('./journal.js');
    const written: Buffer[] = [];
    const fh = {
      write: async (buf: Buffer, offset: number, length: number) => {
        const n = Math.min(3, length);
        written.push(Buffer.from(buf.subarray(offset, offset + n)));
        return { bytesWritten: n, buffer: buf };
      },
    } as unknown as Parameters<typeof writeFully>[0];
    const data = Buffer.from('a record that takes several calls');
    await writeFully(fh, data, 0);
    expect(Buffer.concat(written).equals(data)).toBe(true);
  });

  it('fails instead of acknowledging when a write makes no progress (a full disk)', async () => {
    const { writeFully } = await import('./journal.js');
    const fh = { write: async () => ({ bytesWritten: 0 }) } as unknown as Parameters<typeof writeFully>[0];
    await expect(writeFully(fh, Buffer.from('x'), 0)).rejects.toThrow(/short write/);
  });
});
