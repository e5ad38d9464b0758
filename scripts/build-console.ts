// Bundles the admin console (console/src) into static files under dist/console: one script and
// one stylesheet, named by their content hash, and the page that loads them. No CDN, nothing
// fetched at run time; the admin server serves these files under /console/.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'console', 'src');
const out = join(root, 'dist', 'console');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: { app: join(src, 'main.ts') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  minify: true,
  outdir: out,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'eof',
  logLevel: 'warning',
});

const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint !== undefined);
if (!entry) throw new Error('esbuild produced no entry output');
const [script, output] = entry;
if (output.cssBundle === undefined) throw new Error('esbuild produced no stylesheet');

const page = readFileSync(join(src, 'index.html'), 'utf8')
  .replace('%SCRIPT%', basename(script))
  .replace('%STYLE%', basename(output.cssBundle));
if (page.includes('%')) throw new Error('index.html: a placeholder was left unfilled');
writeFileSync(join(out, 'index.html'), page);
copyFileSync(join(src, 'favicon.svg'), join(out, 'favicon.svg'));
console.log(`console built: ${basename(script)}, ${basename(output.cssBundle)}`);
