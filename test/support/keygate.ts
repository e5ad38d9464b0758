import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { checkAdminResponse, prepareAdminChecks } from './openapi-check.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');
export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const PEPPER = 'test-pepper-0123456789abcdef';

/** A config that runs on free ports with the embedded store in `dataDir`. */
export function baseConfig(dataDir: string): Record<string, unknown> {
  return {
    gateway: { listen: { host: '127.0.0.1', port: 0 } },
    admin: { listen: { host: '127.0.0.1', port: 0 }, tokens: [{ name: 'ops', token: ADMIN_TOKEN }] },
    status: { listen: { host: '127.0.0.1', port: 0 } },
    store: { driver: 'embedded', path: dataDir },
    secrets: { pepper: PEPPER },
    upstreams: { events: { url: 'http://127.0.0.1:9' }, 'events-test': { url: 'http://127.0.0.1:9' } },
    routes: [
      { name: 'send-events', method: 'POST', path: '/v1/events', upstream: 'events', upstreamTest: 'events-test', permission: 'events.create', events: { field: 'action' } },
      { name: 'list-events', method: 'GET', path: '/v1/events', upstream: 'events', permission: 'events.read' },
      { name: 'update-profile', method: 'PATCH', path: '/v1/profiles/{profileId}', upstream: 'events', permission: 'profiles.update', profileAttributes: true, profileScope: 'profileId' },
      { name: 'get-profile', method: 'GET', path: '/v1/profiles/{profileId}', upstream: 'events', permission: 'profiles.read' },
    ],
  };
}

export interface Keygate {
  adminUrl: string;
  gatewayUrl: string | null;
  /** The status listener's URL (null when the config turns it off). */
  statusUrl: string | null;
  dataDir: string;
  configFile: string;
  proc: ChildProcess;
  /** Every stdout line the process printed so far. */
  output: string[];
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** An admin API call with the test token; JSON in, parsed JSON out. */
  admin(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
}

export interface StartOptions {
  dataDir?: string;
  /** Replaces the base config (given the data dir). */
  config?: (dataDir: string) => Record<string, unknown>;
  env?: Record<string, string>;
}

/** Makes a fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'keygate-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startKeygate(opts: StartOptions = {}): Promise<Keygate> {
  prepareAdminChecks();
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'keygate-data-'));
  const configDir = mkdtempSync(join(tmpdir(), 'keygate-config-'));
  const configFile = join(configDir, 'gateway.yaml');
  writeFileSync(configFile, stringify((opts.config ?? baseConfig)(dataDir)));
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', configFile], {
    env: { ...process.env, KEYGATE_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));

  const ready = await new Promise<{ admin: string; gateway: string | null; status: string | null }>((res, rej) => {
    let buffered = '';
    const timer = setTimeout(() => rej(new Error(`keygate did not become ready:\n${output.join('\n')}\n${stderr}`)), 15_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        output.push(line);
        try {
          const msg = JSON.parse(line) as { msg?: string; admin?: string; gateway?: string | null; status?: string | null };
          if (msg.msg === 'ready' && msg.admin) {
            clearTimeout(timer);
            res({ admin: msg.admin, gateway: msg.gateway ?? null, status: msg.status ?? null });
          }
        } catch {
          // not JSON: kept in output for diagnosis
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`keygate exited with ${code} before ready:\n${output.join('\n')}\n${stderr}`));
    });
  });

  const adminUrl = ready.admin;
  return {
    adminUrl,
    gatewayUrl: ready.gateway,
    statusUrl: ready.status,
    dataDir,
    configFile,
    proc,
    output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
    async admin(method, path, body, headers = {}) {
      const res = await fetch(adminUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = null;
      if (text !== '') {
        try { parsed = JSON.parse(text); } catch { parsed = text; }
      }
      checkAdminResponse(method, path, res.status, parsed, res.headers);
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}
