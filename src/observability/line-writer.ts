import { fstatSync, write, writeSync } from 'node:fs';

/** Linux's PIPE_BUF: a write to a pipe of at most this many bytes is never interleaved with another's. */
export const PIPE_BUF = 4096;
/** The largest write to a regular file: one write() per this many bytes of lines. */
const FILE_WRITE_BYTES = 64 * 1024;

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

/**
 * Lines buffered in memory and written to a file descriptor in batches, off the request path:
 * a line is appended to an array, and one asynchronous write (libuv's thread pool) carries
 * every line gathered since the last, each write whole lines only and never more than
 * PIPE_BUF bytes on a pipe, so the lines of several processes sharing stdout (cluster workers)
 * never interleave mid-line. A destination that blocks never grows the buffer past
 * `maxBufferedBytes`: the lines that do not fit are dropped and counted.
 *
 * Lines are ASCII text ending in "\n" (their length is their size in bytes).
 */
export class LineWriter {
  private readonly fd: number;
  private readonly maxBuffered: number;
  private readonly flushMs: number;
  private readonly maxWrite: number;
  private readonly onDrop: (lines: number) => void;
  private pending: string[] = [];
  /** The first line of `pending` not yet taken into a write. */
  private head = 0;
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
    this.maxWrite = opts.maxWriteBytes ?? defaultWriteBytes(opts.fd);
    this.onDrop = opts.onDrop ?? (() => undefined);
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
    if (this.pendingBytes + line.length > this.maxBuffered) {
      this.drop(1);
      return false;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.writing) return true;
    if (this.pendingBytes >= this.maxWrite) this.writeNext();
    else this.timer ??= setTimeout(this.onTimer, this.flushMs).unref();
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
   * the event loop will come); what cannot be written at once is dropped.
   */
  flushSync(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.pendingBytes > 0) {
      const { chunk, lines } = this.take();
      try {
        let done = 0;
        const buf = Buffer.from(chunk, 'latin1');
        while (done < buf.length) done += writeSync(this.fd, buf, done);
      } catch {
        this.drop(lines + this.pending.length - this.head);
        this.clear();
      }
    }
  }

  private drop(lines: number): void {
    this.dropped += lines;
    this.onDrop(lines);
  }

  private clear(): void {
    this.pending = [];
    this.head = 0;
    this.pendingBytes = 0;
  }

  /** The next write's whole lines, at most `maxWrite` bytes (a longer line alone), taken off the buffer. */
  private take(): { chunk: string; lines: number } {
    const pending = this.pending;
    let i = this.head;
    let chunk = pending[i++]!;
    while (i < pending.length && chunk.length + pending[i]!.length <= this.maxWrite) chunk += pending[i++]!;
    const lines = i - this.head;
    this.pendingBytes -= chunk.length;
    if (i === pending.length) this.clear();
    else if (i > 1024 && i * 2 > pending.length) {
      // Keep the array from growing without end while lines keep coming.
      this.pending = pending.slice(i);
      this.head = 0;
    } else this.head = i;
    return { chunk, lines };
  }

  private writeNext(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pendingBytes === 0) return this.settle();
    const { chunk, lines } = this.take();
    this.writing = true;
    this.send(chunk, lines);
  }

  private send(chunk: string, lines: number): void {
    write(this.fd, chunk, null, 'latin1', (err, written) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking pipe that is full: the same bytes again shortly.
          setTimeout(() => this.send(chunk, lines), 10).unref();
          return;
        }
        // The destination is gone (EPIPE, EBADF) or failing (ENOSPC): these lines are lost.
        this.drop(lines);
      } else if (written < chunk.length) {
        // A partial write: the rest of these lines follows before anything else.
        this.send(chunk.slice(written), lines);
        return;
      }
      this.writing = false;
      if (this.waiters.length > 0 || this.pendingBytes >= this.maxWrite) this.writeNext();
      else if (this.pendingBytes > 0) this.timer ??= setTimeout(this.onTimer, this.flushMs).unref();
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
