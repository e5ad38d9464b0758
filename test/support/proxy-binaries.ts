// Finding the edge proxies the forward-auth tests run in front of keygate (nginx, Caddy), and
// the rule for a missing one: CI fails, a local run prints one line and skips.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';

import { which } from './which.js';

export { which };

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci.toLowerCase() !== 'false';
}

/** For `describe.skipIf(!requireBinary('nginx', …))`: true when the binary is there; in CI a missing one throws. */
export function requireBinary(binary: string, install: string): boolean {
  if (which(binary) !== null) return true;
  if (isCi()) throw new Error(`${binary} is required in CI (not on the PATH); ${install}`);
  console.warn(`Skipping ${binary} tests: no ${binary} binary on the PATH (${install})`);
  return false;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port`; rejects after `timeoutMs` or when `failed()` says so. */
export async function waitForPort(port: number, timeoutMs: number, failed: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = failed();
    if (reason !== null) throw new Error(reason);
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `text` with its one occurrence of `from` replaced (a recipe that no longer holds exactly one has changed shape). */
export function swapOnce(text: string, from: string, to: string): string {
  if (text.split(from).length !== 2) throw new Error(`the recipe no longer holds exactly one "${from}"`);
  return text.replace(from, to);
}

/** A proxy started by a test: its address, its stderr so far, and a stop that also removes its directory. */
export interface RunningProxy {
  url: string;
  port: number;
  proc: ChildProcess;
  /** What the proxy wrote to stderr (its error log). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Watches a proxy just spawned (stderr piped) until it listens on `port`: SIGTERM then, after
 * 5 s, SIGKILL on stop, and `dir` (its temporary files) removed. A proxy that exits or never
 * listens within `readyMs` is stopped and the error names its stderr.
 */
export async function superviseProxy(name: string, proc: ChildProcess, port: number, dir: string, readyMs: number): Promise<RunningProxy> {
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  let exited: string | null = null;
  const gone = new Promise<void>((resolve) => proc.once('exit', (code, signal) => { exited = `${name} exited (${code ?? signal}):\n${stderr}`; resolve(); }));
  const stop = async (): Promise<void> => {
    if (exited === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, readyMs, () => exited);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, port, proc, log: () => stderr, stop };
}
