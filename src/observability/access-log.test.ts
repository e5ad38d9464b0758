import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AccessLog, asciiJson, type AccessEntry } from './access-log.js';
import { LineWriter } from './line-writer.js';

const ENTRY: AccessEntry = {
  requestId: 'req-1', traceId: '0af7651916cd43dd8448eb211c80319c', method: 'GET', route: 'list-events', status: 200, outcome: 'OK',
  keyId: 'key_abc', workspaceId: '3f2a8c1e-4b5d-4e6f-8a9b-0c1d2e3f4a5b', clientIp: '10.1.2.3', requestBytes: 120, responseBytes: 345,
  upstreamMs: 1.23456, totalMs: 2.5,
};

/** An AccessLog whose writer is never flushed: only its lines are looked at. */
const log = (): AccessLog => new AccessLog(new LineWriter({ fd: -1, maxWriteBytes: 4096, flushMs: 1e9 }), 4242);

describe('AccessLog', () => {
  it('composes one JSON line with every field, level as a word and an ISO 8601 time', () => {
    const text = log().line(ENTRY);
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.indexOf('\n')).toBe(text.length - 1);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(parsed).toEqual({
      level: 'info', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown, pid: 4242, msg: 'request',
      requestId: 'req-1', traceId: ENTRY.traceId, method: 'GET', route: 'list-events', status: 200, outcome: 'OK',
      keyId: 'key_abc', workspaceId: ENTRY.workspaceId, clientIp: '10.1.2.3', requestBytes: 120, responseBytes: 345, upstreamMs: 1.23, totalMs: 2.5,
    });
    expect(Math.abs(Date.parse(parsed.time as string) - Date.now())).toBeLessThan(5_000);
  });

  it('writes null for what a request refused before its key was known lacks', () => {
    const parsed = JSON.parse(log().line({ ...ENTRY, keyId: null, workspaceId: null, clientIp: null })) as Record<string, unknown>;
    expect([parsed.keyId, parsed.workspaceId, parsed.clientIp]).toEqual([null, null, null]);
  });

  it('escapes route names that need it, in ASCII only, so a line is as many bytes as characters', () => {
    for (const route of ['a"b', 'back\\slash', 'ünïcödé-路由', 'tab\there', 'emoji-😀', '\u2028sep']) {
      const text = log().line({ ...ENTRY, route });
      expect(/^[\x20-\x7e]*\n$/.test(text), route).toBe(true);
      expect((JSON.parse(text) as { route: string }).route).toBe(route);
    }
  });

  it('writes milliseconds to two decimals as JSON numbers', () => {
    for (const [x, text] of [[0, '0'], [0.004, '0'], [0.005, '0.01'], [1.05, '1.05'], [12.3, '12.3'], [7, '7'], [123456.789, '123456.79'], [1e12, '1000000000000']] as const) {
      const line = log().line({ ...ENTRY, upstreamMs: x, totalMs: x });
      expect(line, String(x)).toContain(`"upstreamMs":${text},"totalMs":${text}}`);
      expect((JSON.parse(line) as { totalMs: number }).totalMs).toBe(Number(text));
    }
  });

  it('asciiJson leaves plain text as it is and escapes the rest as JSON does', () => {
    expect(asciiJson('key_abc-1.2')).toBe('"key_abc-1.2"');
    expect(JSON.parse(asciiJson('"\\\n\u0000é'))).toBe('"\\\n\u0000é');
  });

  it('records, byte for byte, the line it composes, whatever the fields hold (regression: the bytes are written without a string)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'access-log-'));
    const fd = openSync(join(dir, 'a.log'), 'w');
    try {
      const a = new AccessLog(new LineWriter({ fd, maxWriteBytes: 4096 }), 4242);
      const entries: AccessEntry[] = [
        ENTRY,
        { ...ENTRY, method: null, keyId: null, workspaceId: null, clientIp: null, status: 400, outcome: 'BAD_REQUEST' },
        { ...ENTRY, route: 'ünïcödé-路由 "quoted" \\ tab\t 😀', method: 'PROPFIND' },
        { ...ENTRY, requestId: 'r'.repeat(128), clientIp: '2001:db8:85a3::8a2e:370:7334' },
        { ...ENTRY, status: 0, requestBytes: 0, responseBytes: 2 ** 31 + 5, upstreamMs: 0, totalMs: 0.004 },
        { ...ENTRY, requestBytes: 1.5, responseBytes: -1, upstreamMs: -3.2, totalMs: Number.NaN },
        { ...ENTRY, upstreamMs: 0.05, totalMs: 1e12 },
        { ...ENTRY, upstreamMs: 9.99, totalMs: 10.1 },
        { ...ENTRY, route: 'r'.repeat(10_000) }, // longer than one write: as a string
      ];
      for (const e of entries) a.record(e);
      await a.flush();
      const time = /"time":"[^"]*"/;
      const got = readFileSync(join(dir, 'a.log'), 'latin1').split('\n');
      expect(got.pop()).toBe('');
      expect(got.map((l) => l.replace(time, '"time":""'))).toEqual(entries.map((e) => a.line(e).slice(0, -1).replace(time, '"time":""')));
      for (const l of got) expect(() => JSON.parse(l) as unknown).not.toThrow();
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops and counts a line that does not fit the writer\'s bound', async () => {
    let dropped = 0;
    const a = new AccessLog(new LineWriter({ fd: -1, maxBufferedBytes: log().line(ENTRY).length + 10, maxWriteBytes: 4096, flushMs: 1e9, onDrop: (n) => { dropped += n; } }), 4242);
    a.record(ENTRY);
    a.record(ENTRY);
    // Composed with their batch: the first fits, the second does not.
    expect(dropped).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 30)); // the batch is composed within 10 ms
    expect(dropped).toBe(1);
    expect(a.writer.bufferedBytes).toBe(a.line(ENTRY).length);
  });

  it('composes a batch of lines at its 64th request, and a lone request\'s line within 10 ms without a flush', async () => {
    const a = new AccessLog(new LineWriter({ fd: -1, maxWriteBytes: 1 << 20, flushMs: 1e9 }), 4242);
    const size = a.line(ENTRY).length;
    for (let i = 0; i < 63; i++) a.record(ENTRY);
    expect(a.writer.bufferedBytes).toBe(0);
    a.record(ENTRY);
    expect(a.writer.bufferedBytes).toBe(64 * size);
    a.record(ENTRY);
    expect(a.writer.bufferedBytes).toBe(64 * size);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(a.writer.bufferedBytes).toBe(65 * size);
  });

  it('hands each line to its writer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'access-log-'));
    const fd = openSync(join(dir, 'a.log'), 'w');
    try {
      const a = new AccessLog(new LineWriter({ fd }));
      a.record(ENTRY);
      a.record({ ...ENTRY, requestId: 'req-2' });
      await a.flush();
      const lines = readFileSync(join(dir, 'a.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { requestId: string });
      expect(lines.map((l) => l.requestId)).toEqual(['req-1', 'req-2']);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
