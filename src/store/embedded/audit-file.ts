import { constants, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEntry } from '../../domain/entities.js';
import { CorruptStoreError, frame, parseJournal, syncDir, writeFully } from './journal.js';

/**
 * The audit history folded out of the journal: an append-only file of framed entries, with
 * only their positions in memory (by target id, and in order), so history does not grow the
 * heap or every snapshot. An entry reaches this file when a compaction folds the journal; the
 * snapshot records how many bytes of it it covers, so a tail written by a compaction whose
 * snapshot never landed (a crash in between) is cut on open: those entries are still in the
 * journal and come back from it.
 */
export class AuditFile {
  /** [offset, length] of every entry, oldest first. */
  private readonly spans: Array<[number, number]> = [];
  private readonly byTarget = new Map<string, number[]>();

  private constructor(private readonly fh: fsp.FileHandle, private size: number, readonly path: string) {}

  static async open(path: string, coveredBytes: number): Promise<AuditFile> {
    const existed = await fsp.stat(path).then(() => true, () => false);
    const fh = await fsp.open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      if (!existed) await syncDir(dirname(path));
      const buf = await fh.readFile();
      if (buf.length < coveredBytes) throw new CorruptStoreError(`${path}: holds ${buf.length} bytes, the snapshot counts on ${coveredBytes}; refusing to load`);
      if (buf.length > coveredBytes) {
        await fh.truncate(coveredBytes);
        await fh.datasync();
      }
      const file = new AuditFile(fh, coveredBytes, path);
      const covered = buf.subarray(0, coveredBytes);
      const { records, tornBytes } = parseJournal(covered, path);
      if (tornBytes > 0) throw new CorruptStoreError(`${path}: damaged entry inside the covered part; refusing to load`);
      let offset = 0;
      for (const record of records) {
        const length = covered.indexOf(0x0a, offset) + 1 - offset;
        file.index(record as AuditEntry, offset, length);
        offset += length;
      }
      return file;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get bytes(): number {
    return this.size;
  }

  get count(): number {
    return this.spans.length;
  }

  private index(entry: AuditEntry, offset: number, length: number): void {
    const i = this.spans.length;
    this.spans.push([offset, length]);
    let list = this.byTarget.get(entry.target.id);
    if (!list) this.byTarget.set(entry.target.id, (list = []));
    list.push(i);
  }

  /** Appends and fsyncs; returns an undo for when the snapshot that should cover them fails. */
  async append(entries: readonly AuditEntry[]): Promise<() => Promise<void>> {
    const before = { size: this.size, spans: this.spans.length };
    const frames = entries.map((e) => frame(e));
    await writeFully(this.fh, Buffer.concat(frames), this.size);
    await this.fh.datasync();
    let offset = this.size;
    entries.forEach((e, i) => {
      this.index(e, offset, frames[i]!.length);
      offset += frames[i]!.length;
    });
    this.size = offset;
    return async () => {
      for (let i = this.spans.length - 1; i >= before.spans; i--) {
        this.spans.pop();
        const e = entries[i - before.spans]!;
        this.byTarget.get(e.target.id)?.pop();
      }
      this.size = before.size;
      // If this fails the next open cuts the tail anyway: the snapshot does not count it.
      await this.fh.truncate(before.size).catch(() => undefined);
    };
  }

  /** Oldest first: `count` entries from the `from`th. */
  async range(from: number, count: number): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (let i = from; i < Math.min(this.spans.length, from + count); i++) out.push(await this.read(i));
    return out;
  }

  /** Newest first, up to `limit`, optionally for one target. */
  async newest(limit: number, targetId?: string): Promise<AuditEntry[]> {
    const ids = targetId === undefined ? null : (this.byTarget.get(targetId) ?? []);
    const n = ids === null ? this.spans.length : ids.length;
    const out: AuditEntry[] = [];
    for (let k = n - 1; k >= 0 && out.length < limit; k--) out.push(await this.read(ids === null ? k : ids[k]!));
    return out;
  }

  /** How many entries the file holds, in all or for one target. */
  countOf(targetId?: string): number {
    return targetId === undefined ? this.spans.length : (this.byTarget.get(targetId)?.length ?? 0);
  }

  /** The entry at `position` (0 = oldest) of the whole file, or of one target's entries. */
  async read(position: number, targetId?: string): Promise<AuditEntry> {
    const index = targetId === undefined ? position : this.byTarget.get(targetId)?.[position];
    const span = index === undefined ? undefined : this.spans[index];
    if (span === undefined) throw new RangeError(`no audit entry at ${position}`);
    const [offset, length] = span;
    const buf = Buffer.alloc(length);
    await this.fh.read(buf, 0, length, offset);
    const { records } = parseJournal(buf, this.path);
    if (records.length !== 1) throw new CorruptStoreError(`${this.path}: damaged entry at byte ${offset}`);
    return records[0] as AuditEntry;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
