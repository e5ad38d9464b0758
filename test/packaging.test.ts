// `npm pack` gives a tarball that installs into an empty directory with production dependencies
// only, and whose `keygate` command checks a config and serves (nothing is published).
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from './support/admin.js';
import { CLI, baseConfig } from './support/keygate.js';

const REPO = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string>; dependencies: Record<string, string> };
const run = promisify(execFile);

interface Packed { filename: string; files: Array<{ path: string }> }

/** The environment without what an enclosing npm script sets about this repository (its prefix, package, script). */
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(config_(local_)?prefix|package_|lifecycle_)/.test(k)));

describe('the npm package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-pack-'));
  const app = join(dir, 'app');
  let packed: Packed;
  let bin: string;

  beforeAll(async () => {
    // npm test builds dist/ first; packing must not build again (nor race another build).
    if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: npm run build first');
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, maxBuffer: 16 << 20, env: npmEnv });
    packed = (JSON.parse(stdout) as Packed[])[0]!;
    mkdirSync(app);
    // An empty directory, production dependencies only, from the npm cache when it has them.
    await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--no-package-lock', join(dir, packed.filename)], {
      cwd: app,
      maxBuffer: 16 << 20,
      env: { ...npmEnv, NODE_ENV: 'production' },
    });
    bin = join(app, 'node_modules/.bin/keygate');
  }, 240_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds the build, the configs, the LICENSE and no test or source file', () => {
    const paths = packed.files.map((f) => f.path);
    for (const needed of ['package.json', 'LICENSE', 'README.md', 'dist/cli.js', 'dist/main.js', 'config/gateway.yaml', 'config/container.yaml']) expect(paths).toContain(needed);
    expect(paths.filter((p) => /(^|\/)(src|test|bench|helm)\//.test(p) || /\.(test|fuzz)\.[jt]s/.test(p))).toEqual([]);
  });

  it('installs into an empty directory without any dev dependency', () => {
    expect(existsSync(bin)).toBe(true);
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(app, 'node_modules', dep)), dep).toBe(true);
    const dev = Object.keys(pkg.devDependencies).filter((d) => existsSync(join(app, 'node_modules', d)));
    expect(dev).toEqual([]);
  });

  it('answers keygate --version with the package version', async () => {
    const { stdout } = await run(bin, ['--version']);
    expect(stdout).toBe(`${pkg.version}\n`);
  });

  it('runs keygate check-config on the config it ships', async () => {
    const { stdout } = await run(bin, ['check-config', join(app, 'node_modules/keygate/config/gateway.yaml')], { env: { ...process.env, NODE_ENV: 'development' } });
    expect(stdout.trim()).toBe('OK');
  });

  it('runs keygate serve: ready, /readyz 200 on the status port, SIGTERM exits 0', async () => {
    const config = join(dir, 'gateway.yaml');
    writeFileSync(config, stringify(baseConfig(join(dir, 'data'))));
    const proc = spawn(bin, ['serve', '--config', config], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    let out = '';
    const ready = await new Promise<{ status: string }>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`not ready:\n${out}`)), 20_000);
      proc.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        for (const line of out.split('\n')) {
          if (!line.includes('"msg":"ready"')) continue;
          clearTimeout(timer);
          res(JSON.parse(line) as { status: string });
        }
      });
      void exited.then((code) => rej(new Error(`exited ${code}:\n${out}`)));
    });
    const readyz = await fetch(`${ready.status}/readyz`);
    expect(readyz.status).toBe(200);
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 30_000);
});

describe("the container image's config (config/container.yaml, /etc/keygate/gateway.yaml in the image)", () => {
  const file = join(REPO, 'config/container.yaml');

  it('passes check-config in production with the pepper and admin token from the environment', async () => {
    const res = await runCli(['check-config', file], { NODE_ENV: 'production', KEYGATE_PEPPER: 'a-pepper-from-the-env-0123456789', KEYGATE_ADMIN_TOKEN: 'an-admin-token-0123456789' });
    expect(res.stderr).toBe('');
    expect(res.stdout.trim()).toBe('OK');
  });

  it('has no development defaults: without them it fails naming secrets.pepper and admin.tokens[0].token', async () => {
    const res = await runCli(['check-config', file], { NODE_ENV: 'production', KEYGATE_PEPPER: undefined, KEYGATE_ADMIN_TOKEN: undefined });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('secrets.pepper');
    expect(res.stderr).toContain('admin.tokens[0].token');
  });

  it('keeps its data on the volume and serves the status port on 8082, as the Dockerfile declares', () => {
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('path: /var/lib/keygate');
    expect(text).toContain('listen: { host: 0.0.0.0, port: "${KEYGATE_STATUS_PORT:-8082}" }');
    const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain('VOLUME ["/var/lib/keygate"]');
    expect(dockerfile).toContain('COPY config/container.yaml /etc/keygate/gateway.yaml');
  });
});
