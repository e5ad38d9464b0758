// promtool (Debian's `prometheus` package): `check metrics` on a scrape, `check rules` and
// `test rules` on deploy/. Missing, the tests that need it are skipped with the reason, except
// under CI=true, where a missing promtool fails them.
import { spawnSync } from 'node:child_process';

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci.toLowerCase() !== 'false';
}

export function requirePromtool(): boolean {
  const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  const reason = probe.error ? probe.error.message : `promtool --version exited ${probe.status}`;
  if (isCi()) throw new Error(`promtool is required in CI (${reason}); .ci/run installs Debian's prometheus package`);
  console.warn(`Skipping promtool tests: ${reason} (apt-get install prometheus)`);
  return false;
}

export interface PromtoolResult { code: number | null; stdout: string; stderr: string }

/** Runs promtool with `args`, `input` on its stdin. */
export function promtool(args: string[], input?: string, cwd?: string): PromtoolResult {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000, ...(input !== undefined ? { input } : {}), ...(cwd !== undefined ? { cwd } : {}) });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
