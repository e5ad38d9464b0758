import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './support/admin.js';

const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as { version: string };

describe('keygate --version', () => {
  it("prints package.json's version and exits 0", async () => {
    const res = await runCli(['--version']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe(`${pkg.version}\n`);
  });

  it('answers -v and version the same way', async () => {
    for (const flag of ['-v', 'version']) {
      const res = await runCli([flag]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toBe(`${pkg.version}\n`);
    }
  });

  it('lists --version in the usage', async () => {
    const res = await runCli(['--help']);
    expect(res.stdout).toContain('keygate --version');
  });
});
