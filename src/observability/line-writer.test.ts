import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineWriter } from './line-writer.js';

const dirs: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'line-writer-'));
  dirs.push(d);
  return d;
}

function open(path: string, flags: number): number {
  const fd = openSync(path, flags);
  fds.push(fd);
  return fd;
}

const line = (i: number, pad = 80): string => `{"n":${i},"pad":"${'x'.repeat(pad)}"}\n`;

/** A FIFO with a write end that never blocks on open (O_RDWR) and a non-blocking read end, nothing read until asked. */
function fifo(): { writeFd: number; read: () => string } {
  const path = join(temp(), 'fifo');
  execFileSync('mkfifo', [path]);
  const writeFd = open(path, constants.O_RDWR);
  const readFd = open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(65536);
  return {
    writeFd,
    read() {
      let out = '';
      for (;;) {
        try {
          const n = readSync(readFd, buf, 0, buf.length, null);
          if (n <= 0) return out;
          out += buf.toString('latin1', 0, n);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
          throw err;
        }
      }
    },
  };
}

describe('LineWriter', () => {
  it('writes every line, in order, by flush', async () => {
    const file = join(temp(), 'out.log');
    const fd = open(file, constants.O_WRONLY | constants.O_CREAT);
    const w = new LineWriter({ fd, flushMs: 10_000 });
    const lines = Array.from({ length: 5000 }, (_, i) => line(i));
    for (const l of lines) expect(w.write(l)).toBe(true);
    await w.flush();
    expect(readFileSync(file, 'latin1')).toBe(lines.join(''));
    expect(w.bufferedBytes).toBe(0);
    expect(w.droppedLines).toBe(0);
  });

  it('writes a lone line within flushMs, without a flush', async () => {
    const file = join(temp(), 'out.log');
    const fd = open(file, constants.O_WRONLY | constants.O_CREAT);
    const w = new LineWriter({ fd, flushMs: 20 });
    w.write(line(1));
    expect(readFileSync(file, 'latin1')).toBe('');
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(file, 'latin1')).toBe(line(1));
  });

  it('holds lines while nothing reads the pipe, drops and counts what passes the bound, and writes the rest whole once it is read', async () => {
    const pipe = fifo();
    let dropped = 0;
    const max = 16 * 1024;
    const w = new LineWriter({ fd: pipe.writeFd, flushMs: 1, maxBufferedBytes: max, onDrop: (n) => { dropped += n; } });
    const total = 3000; // ~300 KiB: past the pipe's 64 KiB and the 16 KiB bound
    for (let i = 0; i < total; i++) {
      w.write(line(i));
      expect(w.bufferedBytes).toBeLessThanOrEqual(max);
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(dropped).toBeGreaterThan(0);
    expect(w.droppedLines).toBe(dropped);
    let text = '';
    const flushed = w.flush();
    let done = false;
    void flushed.then(() => { done = true; });
    while (!done) {
      text += pipe.read();
      await new Promise((r) => setTimeout(r, 2));
    }
    text += pipe.read();
    const got = text.split('\n');
    expect(got.pop()).toBe('');
    // Every line arrived whole, in order, and every line is either there or counted as dropped.
    const numbers = got.map((l) => (JSON.parse(l) as { n: number }).n);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers.length + dropped).toBe(total);
  });

  it('never writes more than PIPE_BUF at once to a pipe, so two writers sharing it never interleave inside a line', async () => {
    const pipe = fifo();
    const a = new LineWriter({ fd: pipe.writeFd, flushMs: 1 });
    const b = new LineWriter({ fd: pipe.writeFd, flushMs: 1 });
    let text = '';
    const reader = setInterval(() => { text += pipe.read(); }, 1);
    for (let i = 0; i < 4000; i++) {
      a.write(`{"w":"a","n":${i},"pad":"${'a'.repeat(300)}"}\n`);
      b.write(`{"w":"b","n":${i},"pad":"${'b'.repeat(300)}"}\n`);
      if (i % 200 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all([a.flush(), b.flush()]);
    clearInterval(reader);
    text += pipe.read();
    const lines = text.split('\n').slice(0, -1);
    expect(lines).toHaveLength(8000);
    for (const l of lines) expect(() => JSON.parse(l) as unknown, l.slice(0, 80)).not.toThrow();
  });

  it('writes what is buffered at exit synchronously', () => {
    const file = join(temp(), 'out.log');
    const fd = open(file, constants.O_WRONLY | constants.O_CREAT);
    const w = new LineWriter({ fd, flushMs: 10_000, maxWriteBytes: 1 << 20 });
    w.write(line(1));
    w.write(line(2));
    w.flushSync();
    expect(readFileSync(file, 'latin1')).toBe(line(1) + line(2));
  });
});
