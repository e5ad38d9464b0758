// `npx tsx bench/access-log-line.ts`: the CPU one access log line costs, in process, written to
// a file: the line keygate writes (as bytes into LineWriter's buffer, batched) against
// what it did before (pino's `logger.info({…}, 'request')` with redaction, on an asynchronous
// pino.destination). CPU is process.cpuUsage() (every thread: the writes run on libuv's pool),
// from the first line until the last is on disk, over ACCESS_LINES (300 000) lines, best of
// ACCESS_REPEATS (5). Lines are offered at a paced rate (ACCESS_RATE per second, default
// 20 000: the key path's throughput on one core), so batching sees what a gateway gives it.
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import pino from 'pino';
import { AccessLog, type AccessEntry } from '../src/observability/access-log.js';
import { LineWriter } from '../src/observability/line-writer.js';
import { num, runMain } from './lib.js';

const LINES = num('ACCESS_LINES', 300_000);
const REPEATS = num('ACCESS_REPEATS', 5);
const RATE = num('ACCESS_RATE', 20_000);
/** Lines per event-loop turn: a gateway at RATE req/s finishes about this many per turn. */
const PER_TURN = 16;

const entry = (i: number): AccessEntry => ({
  requestId: `Xa9_bc0d${i.toString(36)}`, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', method: 'GET', route: 'list-events', status: 200,
  outcome: 'OK', keyId: 'key_3xYzAbCdEfGhIjKlMnOpQr', workspaceId: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', clientIp: '10.1.2.3',
  requestBytes: 182, responseBytes: 241, upstreamMs: 0.8123, totalMs: 1.0532,
});

type Sink = { log: (i: number) => void; done: () => Promise<void> };

function keygateLog(fd: number): Sink {
  const log = new AccessLog(new LineWriter({ fd }));
  return { log: (i) => log.record(entry(i)), done: () => log.flush() };
}

function pinoLog(fd: number): Sink {
  const dest = pino.destination({ fd, sync: false });
  const logger = pino({
    level: 'info', base: { pid: process.pid },
    redact: { paths: ['secret', '*.secret', 'token', '*.token', 'salt', '*.salt', 'secretHash', '*.secretHash', 'authorization', '*.authorization', 'headers.authorization', 'headers["x-api-key"]'], censor: '[redacted]' },
  }, dest);
  return {
    log: (i) => {
      const e = entry(i);
      logger.info({ requestId: e.requestId, route: e.route, status: e.status, outcome: e.outcome, keyId: e.keyId, ms: Math.round(e.totalMs * 100) / 100 }, 'request');
    },
    done: () => new Promise((resolve) => dest.flush(() => resolve())),
  };
}

/** µs of CPU per line (all threads), offering PER_TURN lines per turn at RATE lines per second. */
async function measure(make: (fd: number) => Sink, dir: string): Promise<{ usPerLine: number; bytes: number }> {
  const file = join(dir, `out-${Math.random().toString(36).slice(2)}.log`);
  const fd = openSync(file, 'w');
  const sink = make(fd);
  const gapMs = (PER_TURN / RATE) * 1000;
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < LINES; i += PER_TURN) {
    for (let j = 0; j < PER_TURN; j++) sink.log(i + j);
    // Paced: the next turn's lines come when a gateway at RATE would have finished them.
    const due = start + ((i + PER_TURN) / RATE) * 1000;
    if (performance.now() < due - gapMs) await new Promise((r) => setTimeout(r, due - performance.now()));
    else await turn();
  }
  await sink.done();
  const used = process.cpuUsage(cpu);
  closeSync(fd);
  const bytes = statSync(file).size;
  rmSync(file);
  return { usPerLine: (used.user + used.system) / LINES, bytes };
}

/** The same paced loop with nothing logged: the loop's own cost, taken off both. */
async function baseline(): Promise<number> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < LINES; i += PER_TURN) {
    const due = start + ((i + PER_TURN) / RATE) * 1000;
    if (performance.now() < due - (PER_TURN / RATE) * 1000) await new Promise((r) => setTimeout(r, due - performance.now()));
    else await turn();
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / LINES;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-access-line-'));
  const best = { keygate: Infinity, pino: Infinity, loop: Infinity };
  let bytes = { keygate: 0, pino: 0 };
  try {
    for (let r = 0; r < REPEATS; r++) {
      const loop = await baseline();
      const k = await measure(keygateLog, dir);
      const p = await measure(pinoLog, dir);
      best.loop = Math.min(best.loop, loop);
      best.keygate = Math.min(best.keygate, k.usPerLine);
      best.pino = Math.min(best.pino, p.usPerLine);
      bytes = { keygate: k.bytes / LINES, pino: p.bytes / LINES };
      process.stderr.write(`repeat ${r + 1}: loop ${loop.toFixed(3)} µs, keygate line ${k.usPerLine.toFixed(3)} µs, pino line ${p.usPerLine.toFixed(3)} µs\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const net = (x: number): string => Math.max(0, x - best.loop).toFixed(2);
  process.stdout.write(`${[
    '',
    `access log line, ${LINES} lines at ${RATE}/s, ${PER_TURN} per turn, best of ${REPEATS}, CPU µs per line (all threads), the paced loop's own ${best.loop.toFixed(2)} µs taken off:`,
    `  keygate (line as bytes, LineWriter): ${net(best.keygate)} µs (${bytes.keygate.toFixed(0)} bytes/line)`,
    `  pino logger.info with redaction:        ${net(best.pino)} µs (${bytes.pino.toFixed(0)} bytes/line)`,
    '',
  ].join('\n')}`);
}

runMain(main);
