import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

/** Debian's Chromium (`apt-get install chromium`); playwright's own download cannot be fetched here. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci.toLowerCase() !== 'false';
}

/**
 * For `describe.skipIf(!requireChromium())`: true when Chromium is there. When it is missing,
 * CI fails loudly (throws) and a local run prints one line and skips.
 */
export function requireChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const reason = `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (isCi()) throw new Error(`Chromium is required in CI: ${reason}`);
  console.warn(`Skipping the admin console's browser tests: ${reason}`);
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags a closed network refuses many of Chromium's own connections.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation { id: string; impact: string | null; help: string; nodes: Array<{ target: unknown; failureSummary?: string }> }

/**
 * Runs axe-core on the page as it is now and fails on any serious or critical violation. The
 * source goes in by the DevTools protocol (the console's CSP refuses inline scripts, rightly).
 */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const loaded = await page.evaluate(() => typeof (globalThis as any).axe !== 'undefined');
  if (!loaded) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const g = globalThis as any;
    const result: { violations: AxeViolation[] } = await g.axe.run(g.document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious, `${what}: ${JSON.stringify(serious, null, 2)}`).toEqual([]);
}

/**
 * Writes a screenshot for the README under docs/screenshots: only when it is missing or
 * `KEYGATE_SCREENSHOTS=1` asks for a refresh (they show dates and secrets, so every run
 * would otherwise change them).
 */
export async function screenshot(page: Page, name: string, opts: { fullPage?: boolean; element?: string } = {}): Promise<void> {
  const file = resolve(import.meta.dirname, '../../docs/screenshots', `${name}.png`);
  if (existsSync(file) && process.env.KEYGATE_SCREENSHOTS !== '1') return;
  mkdirSync(dirname(file), { recursive: true });
  if (opts.element) await page.locator(opts.element).screenshot({ path: file, animations: 'disabled' });
  else await page.screenshot({ path: file, fullPage: opts.fullPage ?? false, animations: 'disabled' });
}
