import { fstatSync, write, writeSync } from 'node:fs';

/** Linux's PIPE_BUF: a write to a pipe of at most this many bytes is never interleaved with another's. */
export const PIPE_BUF = 4096;
/** The largest write to a regular file: one write() per this many bytes of lines. */
const FILE_WRITE_BYTES = 64 * 1024;
/** Written slabs kept for the next lines instead of allocating new ones. */
const SPARE_SLABS = 2;

export interface LineWriterOptions {
  /** The file descriptor written to (1: stdout). */
  fd: number;
  /** The most bytes of lines held while the destination is slower than they come; past it, lines are dropped. */
  maxBufferedBytes?: number;
  /** The longest a line waits before it is written (nginx's `flush=`). */
  flushMs?: number;
  /** The largest single write (default: PIPE_BUF on a pipe, socket or terminal, 64 KiB on a file). */
  maxWriteBytes?: number;
  /** Called with the number of lines dropped (the buffer was full, or the destination failed). */
  onDrop?: (lines: number) => void;
}

/** What `reserve` answers for a line longer than one write: it goes to `write` as a string. */
export const LONG_LINE: Buffer = Buffer.alloc(0);

/** A full (or flushed) slab waiting for its write: `bytes` of whole lines from its start. */
interface Sealed {
  buf: Buffer;
  bytes: number;
  lines: number;
  /** Whether the buffer may be reused for later lines once written (a slab, not a lone long line). */
  slab: boolean;
}

/**
 * Lines written to a file descriptor in batches, off the request path. Each line is copied at
 * once into a slab (a `maxWriteBytes` buffer outside the JavaScript heap), so no line string
 * outlives the request that made it: the garbage collector never copies or promotes buffered
 * lines, and no batch is ever concatenated as a string. A slab is written by one asynchronous
 * write (libuv's thread pool) when it is full, or `flushMs` after its first line. A slab holds
 * whole lines only and is never more than PIPE_BUF bytes on a pipe, so the lines of several
 * processes sharing stdout (cluster workers) never interleave mid-line. A destination that
 * blocks never grows the buffer past `maxBufferedBytes`: the lines that do not fit are dropped
 * and counted.
 *
 * Lines are ASCII text ending in "\n" (their length is their size in bytes).
 */
export class LineWriter {
  private readonly fd: number;
  private readonly maxBuffered: number;
  private readonly flushMs: number;
  private readonly slabBytes: number;
  private readonly onDrop: (lines: number) => void;
  /** The slab lines are copied into now, `used` bytes of it taken by `lines` lines. */
  private slab: Buffer;
  private used = 0;
  private lines = 0;
  /** Slabs waiting for their write, oldest first (the first may be being written). */
  private sealed: Sealed[] = [];
  private spare: Buffer[] = [];
  /** Bytes of lines not yet written: in `sealed` and in `slab`. */
  private pendingBytes = 0;
  private writing = false;
  private timer: NodeJS.Timeout | null = null;
  /** Flush waiters: every line buffered is written (or dropped) before they resolve. */
  private waiters: Array<() => void> = [];
  private dropped = 0;
  private readonly onTimer = (): void => {
    this.timer = null;
    if (!this.writing) this.writeNext();
  };

  constructor(opts: LineWriterOptions) {
    this.fd = opts.fd;
    this.maxBuffered = opts.maxBufferedBytes ?? 8 * 1024 * 1024;
    this.flushMs = opts.flushMs ?? 50;
    this.slabBytes = opts.maxWriteBytes ?? defaultWriteBytes(opts.fd);
    this.onDrop = opts.onDrop ?? (() => undefined);
    this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
  }

  /** Lines dropped so far. */
  get droppedLines(): number {
    return this.dropped;
  }

  /** Bytes of lines waiting to be written. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Buffers one line (ASCII, ending in "\n"); false when it was dropped because the buffer is full. */
  write(line: string): boolean {
    const n = line.length;
    const buf = this.reserve(n);
    if (buf === LONG_LINE) {
      if (this.pendingBytes + n > this.maxBuffered) {
        this.drop(1);
        return false;
      }
      // Longer than a write may be: alone, in a buffer of its own, after the lines before it.
      this.seal();
      this.pendingBytes += n;
      this.sealed.push({ buf: Buffer.from(line, 'latin1'), bytes: n, lines: 1, slab: false });
      if (!this.writing) this.writeNext();
      return true;
    }
    buf.write(line, this.used, 'latin1');
    return this.commit(this.used + n);
  }

  /**
   * Room for one line of at most `max` bytes, for a caller that writes its bytes itself: the
   * buffer to write them into from `offset`, then `commit(end)` with the offset after the
   * line's "\n". `LONG_LINE` when it may not fit one write (then hand it to `write`).
   */
  reserve(max: number): Buffer {
    if (max > this.slabBytes) return LONG_LINE;
    if (this.used + max > this.slabBytes) {
      this.seal();
      if (!this.writing) this.writeNext();
    }
    return this.slab;
  }

  /** Where the reserved line starts in the buffer `reserve` gave. */
  get offset(): number {
    return this.used;
  }

  /**
   * Takes the reserved line, written up to `end` (its "\n" included); false when it was
   * dropped instead (counted): it does not fit the bound on buffered bytes.
   */
  commit(end: number): boolean {
    const n = end - this.used;
    if (this.pendingBytes + n > this.maxBuffered) {
      this.drop(1);
      return false;
    }
    this.pendingBytes += n;
    this.used = end;
    this.lines++;
    if (!this.writing) this.timer ??= setTimeout(this.onTimer, this.flushMs).unref();
    return true;
  }

  /** Resolves once every line buffered so far has been written (or dropped). */
  flush(): Promise<void> {
    if (this.pendingBytes === 0 && !this.writing) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (!this.writing) this.writeNext();
    });
  }

  /**
   * Writes what is buffered now, synchronously (the process is exiting and no further turn of
   * the event loop will come); what cannot be written at once is dropped. A write already
   * under way in the thread pool is left to finish.
   */
  flushSync(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.seal();
    const queue = this.writing ? this.sealed.splice(1) : this.sealed.splice(0);
    for (let i = 0; i < queue.length; i++) {
      const s = queue[i]!;
      try {
        let done = 0;
        while (done < s.bytes) done += writeSync(this.fd, s.buf, done, s.bytes - done);
        this.pendingBytes -= s.bytes;
      } catch {
        for (let j = i; j < queue.length; j++) this.pendingBytes -= queue[j]!.bytes;
        this.drop(queue.slice(i).reduce((a, q) => a + q.lines, 0));
        return;
      }
    }
  }

  private drop(lines: number): void {
    this.dropped += lines;
    this.onDrop(lines);
  }

  /** Moves the current slab's lines to the write queue and starts a new slab. */
  private seal(): void {
    if (this.lines === 0) return;
    this.sealed.push({ buf: this.slab, bytes: this.used, lines: this.lines, slab: true });
    this.slab = this.spare.pop() ?? Buffer.allocUnsafeSlow(this.slabBytes);
    this.used = 0;
    this.lines = 0;
  }

  private writeNext(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.sealed.length === 0) this.seal();
    const next = this.sealed[0];
    if (next === undefined) return this.settle();
    this.writing = true;
    this.send(next, 0);
  }

  private send(s: Sealed, from: number): void {
    write(this.fd, s.buf, from, s.bytes - from, null, (err, written) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking pipe that is full: the same bytes again shortly.
          setTimeout(() => this.send(s, from), 10).unref();
          return;
        }
        // The destination is gone (EPIPE, EBADF) or failing (ENOSPC): these lines are lost.
        this.drop(s.lines);
      } else if (from + written < s.bytes) {
        // A partial write: the rest of these lines follows before anything else.
        this.send(s, from + written);
        return;
      }
      this.pendingBytes -= s.bytes;
      this.sealed.shift();
      if (s.slab && this.spare.length < SPARE_SLABS) this.spare.push(s.buf);
      this.writing = false;
      if (this.waiters.length > 0 || this.sealed.length > 0) this.writeNext();
      else if (this.lines > 0) this.timer ??= setTimeout(this.onTimer, this.flushMs).unref();
      else this.settle();
    });
  }

  private settle(): void {
    if (this.pendingBytes > 0 || this.writing) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

function defaultWriteBytes(fd: number): number {
  try {
    return fstatSync(fd).isFile() ? FILE_WRITE_BYTES : PIPE_BUF;
  } catch {
    return PIPE_BUF;
  }
}
