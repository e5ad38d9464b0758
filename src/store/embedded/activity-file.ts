import { createReadStream, constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { ActivityRecord } from '../types.js';
import { syncDir } from './journal.js';

const FILE_MODE = 0o600;
/** Rewrite the file once it holds this many lines more than it keeps (trimmed and deleted keys' records). */
const SLACK_LINES = 10_000;

/**
 * Per-key request activity of the embedded store: one JSON line per request appended to its
 * own file (telemetry: written with each batch, not fsynced per batch, so a clean stop or a
 * killed process keeps it; a power loss may lose the last seconds), and the newest records of
 * each key in memory. The file is rewritten with only what is kept once it carries too much
 * that is not. Memory: at most `keepPerKey` records (~200 bytes each) per key that was used.
 */
export class ActivityFile {
  private readonly byKey = new Map<string, ActivityRecord[]>();
  private kept = 0;
  private lines = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string, private fh: FileHandle) {}

  /** Reads the file back (a torn last line, a crash mid-write, is skipped), keeping records of known keys. */
  static async open(path: string, known: (keyId: string) => boolean, keepPerKey: number): Promise<ActivityFile> {
    const records: ActivityRecord[] = [];
    let lines = 0;
    try {
      const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
      for await (const line of rl) {
        if (line === '') continue;
        lines++;
        try {
          const r = JSON.parse(line) as ActivityRecord;
          if (typeof r.keyId === 'string' && known(r.keyId)) records.push(r);
        } catch {
          // A line cut short by a crash: telemetry, skipped.
        }
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const fh = await fsp.open(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, FILE_MODE);
    // A torn last line is ended, so the next record starts a line of its own.
    const { size } = await fh.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await fh.write('\n');
    }
    const file = new ActivityFile(path, fh);
    file.lines = lines;
    file.keep(records, keepPerKey);
    return file;
  }

  /** Adds records in time order; each touched key is trimmed to `keepPerKey` once, after. */
  private keep(records: readonly ActivityRecord[], keepPerKey: number): void {
    const touched = new Set<ActivityRecord[]>();
    for (const r of records) {
      let list = this.byKey.get(r.keyId);
      if (!list) this.byKey.set(r.keyId, (list = []));
      // In time order: a batch from another worker may carry older records (usually it goes last).
      let i = list.length;
      while (i > 0 && list[i - 1]!.at > r.at) i--;
      if (i === list.length) list.push(r);
      else list.splice(i, 0, r);
      this.kept++;
      touched.add(list);
    }
    for (const list of touched) {
      if (list.length <= keepPerKey) continue;
      const cut = list.length - keepPerKey;
      list.splice(0, cut);
      this.kept -= cut;
    }
  }

  /** Serialised: appends (and rewrites) one at a time. */
  append(records: readonly ActivityRecord[], keepPerKey: number): Promise<void> {
    const run = this.chain.then(() => this.appendNow(records, keepPerKey));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async appendNow(records: readonly ActivityRecord[], keepPerKey: number): Promise<void> {
    if (records.length === 0) return;
    let text = '';
    for (const r of records) text += JSON.stringify(r) + '\n';
    await this.fh.write(text);
    this.lines += records.length;
    this.keep(records, keepPerKey);
    if (this.lines > 2 * this.kept + SLACK_LINES) await this.rewrite();
  }

  /** The key's newest records by time, newest first. */
  list(keyId: string, limit: number): ActivityRecord[] {
    const list = this.byKey.get(keyId);
    if (!list) return [];
    const out: ActivityRecord[] = [];
    for (let i = list.length - 1; i >= 0 && out.length < limit; i--) out.push({ ...list[i]! });
    return out;
  }

  drop(keyId: string): void {
    const list = this.byKey.get(keyId);
    if (!list) return;
    this.kept -= list.length;
    this.byKey.delete(keyId);
  }

  /** The file replaced by one holding only what is kept: temp file, fsync, rename. */
  private async rewrite(): Promise<void> {
    const tmp = `${this.path}.tmp`;
    const out = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, FILE_MODE);
    try {
      let text = '';
      for (const list of this.byKey.values()) {
        for (const r of list) {
          text += JSON.stringify(r) + '\n';
          if (text.length > 1 << 20) {
            await out.write(text);
            text = '';
          }
        }
      }
      await out.write(text);
      await out.datasync();
    } finally {
      await out.close();
    }
    await fsp.rename(tmp, this.path);
    await syncDir(dirname(this.path));
    await this.fh.close();
    this.fh = await fsp.open(this.path, constants.O_WRONLY | constants.O_APPEND, FILE_MODE);
    this.lines = this.kept;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.fh.datasync().catch(() => undefined);
    await this.fh.close();
  }
}
