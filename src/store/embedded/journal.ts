import { constants, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

// On-disk framing, one record per line: `<crc32 of the JSON, 8 hex> <JSON>\n`.
// JSON.stringify never emits a raw newline, so a line is a record. A record is trusted only
// when its line is complete and its checksum matches; anything else at the tail is a torn
// write from a crash and is cut off. A bad record followed by good ones is real corruption
// and stops the load: keygate never starts on garbage.

const FILE_MODE = 0o600;

export function frame(payload: unknown): Buffer {
  const json = JSON.stringify(payload);
  const crc = crc32(json).toString(16).padStart(8, '0');
  return Buffer.from(`${crc} ${json}\n`, 'utf8');
}

function unframe(line: string): unknown {
  if (line.length < 10 || line[8] !== ' ') return undefined;
  const json = line.slice(9);
  const crc = crc32(json).toString(16).padStart(8, '0');
  if (crc !== line.slice(0, 8)) return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

export class CorruptStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptStoreError';
  }
}

export interface ReadResult {
  records: unknown[];
  /** Bytes of the file holding whole, valid records. */
  validBytes: number;
  /** Bytes cut off as a torn tail (0 when the file was clean). */
  tornBytes: number;
}

export function parseJournal(buf: Buffer, file: string): ReadResult {
  const records: unknown[] = [];
  let offset = 0;
  let badAt = -1;
  while (offset < buf.length) {
    const nl = buf.indexOf(0x0a, offset);
    if (nl === -1) {
      if (badAt === -1) badAt = offset;
      break;
    }
    const record = unframe(buf.toString('utf8', offset, nl));
    if (record === undefined) {
      if (badAt === -1) badAt = offset;
    } else if (badAt !== -1) {
      throw new CorruptStoreError(`${file}: damaged record at byte ${badAt} is followed by valid records; refusing to load`);
    } else {
      records.push(record);
    }
    offset = nl + 1;
  }
  const validBytes = badAt === -1 ? buf.length : badAt;
  return { records, validBytes, tornBytes: buf.length - validBytes };
}

/**
 * Writes every byte of `buf` at `position`. A write may be short (a full disk, a file-size
 * limit); stopping there would acknowledge bytes that never reached the file.
 */
export async function writeFully(fh: fsp.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write: ${done} of ${buf.length} bytes`);
    done += bytesWritten;
  }
}

/** An append-only file where `append` resolves only once the bytes are on disk. */
export class Journal {
  /** Set when a failed append could not be undone: the file must not be written again. */
  poisoned = false;

  private constructor(private readonly fh: fsp.FileHandle, private size: number, readonly path: string) {}

  static async open(path: string): Promise<{ journal: Journal; records: unknown[]; tornBytes: number }> {
    const existed = await fsp.stat(path).then(() => true, () => false);
    const fh = await fsp.open(path, constants.O_RDWR | constants.O_CREAT, FILE_MODE);
    try {
      // A new file is durable only once its directory entry is.
      if (!existed) await syncDir(dirname(path));
      await fh.chmod(FILE_MODE);
      const buf = await fh.readFile();
      const { records, validBytes, tornBytes } = parseJournal(buf, path);
      if (tornBytes > 0) {
        await fh.truncate(validBytes);
        await fh.datasync();
      }
      return { journal: new Journal(fh, validBytes, path), records, tornBytes };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get bytes(): number {
    return this.size;
  }

  async append(payload: unknown): Promise<void> {
    const buf = frame(payload);
    const at = this.size;
    try {
      await writeFully(this.fh, buf, at);
      await this.fh.datasync();
      this.size = at + buf.length;
    } catch (err) {
      // Leave no partial record behind for the next append to follow; if even that fails no
      // further append is safe, and the next start cuts the torn tail.
      try {
        await this.fh.truncate(at);
      } catch {
        this.poisoned = true;
      }
      throw err;
    }
  }

  async reset(): Promise<void> {
    try {
      await this.fh.truncate(0);
      this.size = 0;
      await this.fh.datasync();
    } catch (err) {
      // The file's length is no longer known: no append may follow.
      this.poisoned = true;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Replaces `name` in `dir` atomically with a file of framed records (a snapshot, the usage
 * counts): a temp file written record by record (the whole file is never held in memory, and
 * other work runs between records), fsynced, read back, renamed, the directory fsynced.
 */
export async function writeFramedRecordsAtomic(dir: string, name: string, records: Iterable<unknown>): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const written = createHash('sha256');
  let size = 0;
  const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, FILE_MODE);
  try {
    try {
      await fh.chmod(FILE_MODE);
      for (const record of records) {
        const chunk = frame(record);
        await writeFully(fh, chunk, size);
        written.update(chunk);
        size += chunk.length;
      }
      await fh.datasync();
      const stat = await fh.stat();
      if (stat.size !== size) throw new Error(`${tmp}: wrote ${stat.size} of ${size} bytes`);
    } finally {
      await fh.close();
    }
    // Read it back before it replaces anything: a damaged snapshot must never take the journal's place.
    if (!(await digestOf(tmp)).equals(written.digest())) throw new Error(`${tmp}: read back differs from what was written`);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fsp.rename(tmp, join(dir, name));
  await syncDir(dir);
}

async function digestOf(path: string): Promise<Buffer> {
  const digest = createHash('sha256');
  const fh = await fsp.open(path, constants.O_RDONLY);
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      digest.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return digest.digest();
}

const READ_CHUNK = 1 << 20;

/**
 * Reads a file of framed records one record at a time, so a large snapshot is never held
 * whole (as bytes, as text and parsed at once). Every line must be whole and valid: these
 * files are replaced atomically, so anything else is damage. Returns false when the file
 * does not exist.
 */
export async function readFramedRecords(path: string, onRecord: (record: unknown) => void): Promise<boolean> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, constants.O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let pending: Buffer[] = [];
    let lineStart = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
        const piece = chunk.subarray(from, nl);
        const line = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        const record = unframe(line.toString('utf8'));
        if (record === undefined) throw new CorruptStoreError(`${path}: damaged record at byte ${lineStart}; refusing to load`);
        onRecord(record);
        lineStart += line.length + 1;
        from = nl + 1;
      }
      // The buffer is reused for the next read: keep a copy of the unfinished line.
      if (from < chunk.length) pending.push(Buffer.from(chunk.subarray(from)));
    }
    if (pending.length > 0) throw new CorruptStoreError(`${path}: the record at byte ${lineStart} is cut off; refusing to load`);
    return true;
  } finally {
    await fh.close();
  }
}

export async function syncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, constants.O_RDONLY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
