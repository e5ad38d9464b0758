import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { CLI, baseConfig, type Keygate } from './keygate.js';

/** A GUID in its usual textual form (any version). */
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const SECRET = /^kg_live_[0-9A-Za-z]{24}_[0-9A-Za-z]{6}$/;
export const SECRET_TEST = /^kg_test_[0-9A-Za-z]{24}_[0-9A-Za-z]{6}$/;

/**
 * Asserts the uniform admin error shape: exactly `{error: {code, message, requestId}}`, the
 * expected status and code, and an `X-Request-Id` header equal to the body's requestId.
 */
export function expectError(res: { status: number; body: any; headers: Headers | Record<string, string | string[] | undefined> }, status: number, code: string): void {
  const ctx = JSON.stringify(res.body);
  expect(res.status, ctx).toBe(status);
  expect(res.body, ctx).toBeTypeOf('object');
  expect(Object.keys(res.body ?? {}), ctx).toEqual(['error']);
  expect(Object.keys(res.body.error ?? {}).sort(), ctx).toEqual(['code', 'message', 'requestId']);
  expect(res.body.error.code, ctx).toBe(code);
  expect(typeof res.body.error.message, ctx).toBe('string');
  expect(res.body.error.message.length, ctx).toBeGreaterThan(0);
  expect(typeof res.body.error.requestId, ctx).toBe('string');
  expect(res.body.error.requestId.length, ctx).toBeGreaterThan(0);
  const header = res.headers instanceof Headers ? res.headers.get('x-request-id') : res.headers['x-request-id'];
  expect(header, ctx).toBe(res.body.error.requestId);
}

export interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; text: string; body: any }

/**
 * A request through node:http, for what fetch cannot do: a body sent in chunks without a
 * Content-Length (chunked transfer encoding), a declared length, arbitrary headers.
 */
export function rawRequest(url: string, opts: { method: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method, headers: opts.headers ?? {} });
    let settled = false;
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      const done = (): void => {
        if (settled) return;
        settled = true;
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = null;
        try { body = text === '' ? null : JSON.parse(text); } catch { body = text; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      };
      res.on('end', done);
      res.on('error', done);
      res.on('close', done);
    });
    req.on('error', (err) => {
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    if (body === undefined) {
      req.end();
    } else if (opts.chunked) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

export interface ProcResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs `node dist/cli.js …` to completion. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<ProcResult> {
  const base: Record<string, string | undefined> = { ...process.env };
  delete base.KEYGATE_ADMIN_TOKEN;
  delete base.KEYGATE_ADMIN_URL;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...base, ...env } as NodeJS.ProcessEnv, timeout: 20_000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        stdout,
        stderr,
      });
    });
  });
}

/** Writes a config file (YAML) for `dataDir` in a fresh temporary directory. */
export function writeConfig(dataDir: string, config: (dataDir: string) => Record<string, unknown> = baseConfig): string {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-config-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify(config(dataDir)));
  return file;
}

/**
 * Runs `keygate serve` expecting it NOT to become ready: waits for it to exit. If it does
 * print the ready line, it is killed and `becameReady` is true.
 */
export function runServeExpectingExit(configFile: string, timeoutMs = 15_000): Promise<ProcResult & { becameReady: boolean }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let becameReady = false;
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!becameReady && /"msg":"ready"/.test(stdout)) {
        becameReady = true;
        proc.kill('SIGKILL');
      }
    });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, becameReady });
    });
  });
}

/** Every regular file under `dir`, recursively. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...listFiles(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dir` whose bytes contain `needle`. */
export function filesContaining(dir: string, needle: string): string[] {
  return listFiles(dir).filter((f) => readFileSync(f).includes(needle));
}

/** Creates a workspace and returns its id. */
export async function createWorkspace(kg: Keygate, name = 'ws'): Promise<string> {
  const res = await kg.admin('POST', '/v1/workspaces', { name });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

/** Creates a key; returns the 201 body `{key, secret}`. */
export async function createKey(kg: Keygate, body: Record<string, unknown>): Promise<{ key: any; secret: string }> {
  const res = await kg.admin('POST', '/v1/keys', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { key: any; secret: string };
}

/** Every key the list endpoint returns, following cursors. */
export async function listAllKeys(kg: Keygate, query = ''): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 1000; i++) {
    const qs = new URLSearchParams(query);
    qs.set('limit', '500');
    if (cursor !== null) qs.set('cursor', cursor);
    const res = await kg.admin('GET', `/v1/keys?${qs.toString()}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    items.push(...(res.body.items as any[]));
    cursor = res.body.nextCursor as string | null;
    if (cursor === null) return items;
  }
  throw new Error('list did not end');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Stops keygate (SIGTERM) and removes its config directory and, unless kept, its data dir. */
export async function stopAndClean(kg: Keygate | undefined, opts: { keepData?: boolean } = {}): Promise<void> {
  if (!kg) return;
  await kg.stop('SIGTERM');
  rmSync(dirname(kg.configFile), { recursive: true, force: true });
  if (!opts.keepData) rmSync(kg.dataDir, { recursive: true, force: true });
}
