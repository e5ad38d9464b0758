// The container image test: builds the top-level Dockerfile and runs the image on a machine with
// no container daemon and no Docker Hub (podman/buildah with chroot isolation, and a stand-in
// for the base image from test/container/base-image.sh). Run by .ci/run; exits 1 on any failed
// check. `npx tsx test/container/image-test.ts` (root; podman, buildah, debootstrap, util-linux).
//
// The image runs twice:
//   1. `buildah run`: the image's user, working directory and files, as the recipe checked here;
//   2. as Kubernetes runs it with `readOnlyRootFilesystem: true`: a read-only root, a writable
//      volume at the image's VOLUME only, a PID namespace of its own (so tini is PID 1 and gets
//      the SIGTERM, as from the kubelet), the image's user, environment and entrypoint.
// Each run: readiness answers; a key created on the admin port authenticates a proxied request;
// keygate runs as the image's non-root user; SIGTERM drains an in-flight request and exits 0.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, chownSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const IMAGE = process.env.KEYGATE_IMAGE ?? 'localhost/keygate:ci';
const BASE = 'docker.io/library/node:22-bookworm-slim';
const ADMIN_TOKEN = 'image-test-admin-token-0123456789';
// The image's config serves /readyz on the status port once it has one, else on the admin port.
const STATUS_LISTENER = /^status:/m.test(readFileSync(join(ROOT, 'config/container.yaml'), 'utf8'));
const PEPPER = 'image-test-pepper-0123456789abcdef';

const t0 = Date.now();
const failures: string[] = [];
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const log = (s: string): void => void process.stdout.write(`[image-test ${secs(Date.now() - t0)}] ${s}\n`);

function check(ok: boolean, what: string, detail = ''): void {
  if (ok) log(`ok   ${what}`);
  else {
    failures.push(`${what}${detail ? `: ${detail}` : ''}`);
    log(`FAIL ${what}${detail ? `: ${detail}` : ''}`);
  }
}

/** Runs a command to completion; throws with its output when it fails. */
function sh(cmd: string, args: string[], opts: { inherit?: boolean; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? ROOT, encoding: 'utf8', stdio: opts.inherit ? 'inherit' : 'pipe', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  return r.stdout ?? '';
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An upstream that records what reached it; `?delay=ms` holds the answer that long. */
async function startUpstream(): Promise<{ port: number; seen: Array<{ url: string; keyId: string | undefined }>; server: Server }> {
  const seen: Array<{ url: string; keyId: string | undefined }> = [];
  const server = createServer((req, res) => {
    const keyId = req.headers['x-keygate-key-id'];
    seen.push({ url: req.url ?? '', keyId: typeof keyId === 'string' ? keyId : undefined });
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"upstream":true}'), delay);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, server };
}

interface ImageConfig {
  User: string;
  WorkingDir: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  Healthcheck?: { Test?: string[] };
}

function imageConfig(): ImageConfig {
  // podman reports the Dockerfile's HEALTHCHECK beside Config, not in it.
  const [info] = JSON.parse(sh('podman', ['image', 'inspect', IMAGE])) as Array<{ Config: ImageConfig; Healthcheck?: ImageConfig['Healthcheck'] }>;
  return { ...info!.Config, Healthcheck: info!.Healthcheck ?? info!.Config.Healthcheck };
}

const imageSize = (image: string): number => Number(sh('podman', ['image', 'inspect', '--format', '{{.Size}}', image]).trim());
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** Every process below `pid`, read from /proc (chroot isolation shares the host's PID namespace). */
function descendants(pid: number): Array<{ pid: number; cmdline: string[] }> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // the process ended meanwhile
    }
  }
  const out: Array<{ pid: number; cmdline: string[] }> = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      try {
        out.push({ pid: c, cmdline: readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0').filter(Boolean) });
      } catch {
        continue;
      }
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function statusField(pid: number, field: string): string {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return (line ?? '').slice(field.length + 1).trim();
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (${String(last)})` : ''}`);
}

async function admin(adminUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(adminUrl + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** The checks of step 2 against one running container. */
async function exercise(mode: string, proc: ChildProcess, ports: { gateway: number; admin: number; status: number }, pid1: () => number, healthcheck?: () => number | null): Promise<void> {
  const upstreamSeen = currentUpstream!.seen;
  let exitCode: number | null | undefined;
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => { exitCode = code; r(code); }));
  const adminUrl = `http://127.0.0.1:${ports.admin}`;
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`;
  const readyUrl = `http://127.0.0.1:${STATUS_LISTENER ? ports.status : ports.admin}/readyz`;
  try {
    const ready = await waitFor(`${mode}: ${readyUrl}`, async () => {
      if (exitCode !== undefined) throw new Error(`exited ${exitCode}:\n${output}`);
      const r = await fetch(readyUrl);
      return r.status === 200 ? r : undefined;
    });
    check(ready.status === 200, `${mode}: GET /readyz answers 200`);
    if (healthcheck && STATUS_LISTENER) {
      const code = healthcheck();
      check(code === 0, `${mode}: the image's HEALTHCHECK command passes in the container`, String(code));
    }

    const tiniPid = pid1();
    const node = descendants(tiniPid).find((p) => p.cmdline.includes('/opt/keygate/dist/cli.js'));
    check(node !== undefined, `${mode}: keygate runs under tini`, JSON.stringify(descendants(tiniPid)));
    if (node) {
      const uids = statusField(node.pid, 'Uid').split(/\s+/);
      check(uids.length === 4 && uids.every((u) => u === '10001'), `${mode}: keygate is not root (uid ${uids.join('/')})`);
      const tiniUids = statusField(tiniPid, 'Uid').split(/\s+/);
      check(tiniUids.every((u) => u === '10001'), `${mode}: PID 1 (tini) is not root either (uid ${tiniUids.join('/')})`);
    }

    const ws = await admin(adminUrl, 'POST', '/v1/workspaces', { name: 'image-test' });
    check(ws.status === 201, `${mode}: admin creates a workspace`, JSON.stringify(ws));
    const created = await admin(adminUrl, 'POST', '/v1/keys', { workspaceId: ws.body?.id, name: 'image-test', permissions: ['events.read'] });
    check(created.status === 201 && typeof created.body?.secret === 'string', `${mode}: admin creates a key`, JSON.stringify(created.body?.error ?? created.status));
    const secret = String(created.body?.secret);
    const keyId = String(created.body?.key?.id);

    const consolePage = await fetch(`${adminUrl}/console/`);
    const consoleHtml = await consolePage.text();
    check(consolePage.status === 200 && consoleHtml.includes('<script') && (consolePage.headers.get('content-security-policy') ?? '').includes("script-src 'self'"),
      `${mode}: the admin console is served from the image under its CSP`, `${consolePage.status}`);

    const anon = await fetch(`${gatewayUrl}/v1/events`);
    check(anon.status === 401, `${mode}: a request without a key is 401`, String(anon.status));
    const before = upstreamSeen.length;
    const proxied = await fetch(`${gatewayUrl}/v1/events?n=1`, { headers: { 'x-api-key': secret } });
    const proxiedBody = await proxied.text();
    check(proxied.status === 200 && proxiedBody === '{"upstream":true}', `${mode}: the key authenticates a proxied request`, `${proxied.status} ${proxiedBody}`);
    const reached = upstreamSeen.slice(before).find((r) => r.url === '/v1/events?n=1');
    check(reached?.keyId === keyId, `${mode}: the upstream sees the request with X-Keygate-Key-Id`, JSON.stringify(reached));

    // SIGTERM to PID 1 while a request is in flight: the request completes, the process exits 0.
    const seenBefore = upstreamSeen.length;
    const inflight = fetch(`${gatewayUrl}/v1/events?delay=1500`, { headers: { 'x-api-key': secret } }).then(
      async (r) => ({ status: r.status, body: await r.text() }),
      (e: unknown) => ({ status: 0, body: String(e) }),
    );
    await waitFor(`${mode}: the slow request to reach the upstream`, () => (upstreamSeen.length > seenBefore ? true : undefined), 10_000);
    const termAt = Date.now();
    process.kill(pid1(), 'SIGTERM');
    const slow = await inflight;
    check(slow.status === 200, `${mode}: the in-flight request completes after SIGTERM`, `${slow.status} ${slow.body}`);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), 20_000); })]);
    clearTimeout(timer);
    check(code === 0, `${mode}: SIGTERM drains and exits 0 (${secs(Date.now() - termAt)})`, `${String(code)}\n${output}`);
    if (healthcheck && STATUS_LISTENER) {
      const after = healthcheck();
      check(after !== 0, `${mode}: the HEALTHCHECK command fails once keygate is gone`, String(after));
    }
  } catch (e) {
    check(false, `${mode}: ${(e as Error).message}`, output);
  } finally {
    if (exitCode === undefined) proc.kill('SIGKILL');
    await exited;
  }
}

let currentUpstream: Awaited<ReturnType<typeof startUpstream>> | undefined;

function envFor(ports: { gateway: number; admin: number; status: number }, upstreamPort: number): Record<string, string> {
  return {
    KEYGATE_PORT: String(ports.gateway),
    KEYGATE_ADMIN_PORT: String(ports.admin),
    KEYGATE_STATUS_PORT: String(ports.status),
    KEYGATE_PEPPER: PEPPER,
    KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    KEYGATE_EVENTS_UPSTREAM: `http://127.0.0.1:${upstreamPort}`,
  };
}

async function freePorts(): Promise<{ gateway: number; admin: number; status: number }> {
  return { gateway: await freePort(), admin: await freePort(), status: await freePort() };
}

/** Run 1: `buildah run` (chroot isolation, host network), as the recipe does. */
async function runWithBuildah(config: ImageConfig): Promise<void> {
  const ctr = sh('buildah', ['from', '--pull-never', IMAGE]).trim();
  try {
    const ports = await freePorts();
    const env = Object.entries(envFor(ports, currentUpstream!.port)).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const proc = spawn('buildah', ['run', '--isolation', 'chroot', '--network', 'host', ...env, ctr, '--', ...config.Entrypoint, ...config.Cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tini = (): number => {
      const p = descendants(proc.pid!).find((d) => d.cmdline[0] === config.Entrypoint[0]);
      if (!p) throw new Error('no tini process below buildah run');
      return p.pid;
    };
    const healthcheck = (): number | null => {
      const test = config.Healthcheck?.Test ?? [];
      const argv = test[0] === 'CMD' ? test.slice(1) : ['/bin/sh', '-c', test.slice(1).join(' ')];
      return spawnSync('buildah', ['run', '--isolation', 'chroot', '--network', 'host', ...env, ctr, '--', ...argv], { stdio: 'ignore', timeout: 10_000 }).status;
    };
    await exercise('buildah run', proc, ports, tini, healthcheck);
  } finally {
    sh('buildah', ['rm', ctr]);
  }
}

/**
 * Run 2: read-only root, the VOLUME as the only writable path, a PID namespace (tini is PID 1),
 * the image's user, working directory, environment and entrypoint: what a kubelet does with the
 * chart's securityContext, done with util-linux's unshare and coreutils' chroot.
 */
async function runReadOnly(config: ImageConfig): Promise<void> {
  const ctr = sh('buildah', ['from', '--pull-never', IMAGE]).trim();
  const mnt = sh('buildah', ['mount', ctr]).trim();
  const vol = mkdtempSync(join(tmpdir(), 'keygate-image-volume-'));
  const root = mkdtempSync(join(tmpdir(), 'keygate-image-root-'));
  try {
    const [uid, gid] = config.User.split(':');
    chownSync(vol, Number(uid), Number(gid ?? uid));
    const volume = Object.keys(config.Volumes ?? {})[0] ?? '/var/lib/keygate';
    const ports = await freePorts();
    const env = [...config.Env, ...Object.entries(envFor(ports, currentUpstream!.port)).map(([k, v]) => `${k}=${v}`)];
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    const script = [
      'set -e',
      `mount --bind ${q(mnt)} ${q(root)}`,
      `mount -o remount,bind,ro ${q(root)}`,
      `mount --bind ${q(vol)} ${q(root + volume)}`,
      `mount -t proc proc ${q(root)}/proc`,
      `mount -t tmpfs -o mode=0755,nosuid tmpfs ${q(root)}/dev`,
      ...['null', 'zero', 'random', 'urandom'].map((d) => `touch ${q(root)}/dev/${d} && mount --bind /dev/${d} ${q(root)}/dev/${d}`),
      `exec chroot --userspec=${config.User} ${q(root)} /usr/bin/env -i ${env.map(q).join(' ')} sh -c ${q(`cd ${q(config.WorkingDir || '/')} && exec "$@"`)} sh ${[...config.Entrypoint, ...config.Cmd].map(q).join(' ')}`,
    ].join('\n');
    // The shell is PID 1 of the new namespace and execs, in the end, the image's entrypoint (tini).
    const proc = spawn('unshare', ['--mount', '--pid', '--fork', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const pid1 = (): number => {
      const p = descendants(proc.pid!)[0];
      if (!p || p.cmdline[0] !== config.Entrypoint[0]) throw new Error(`PID 1 is not the entrypoint yet: ${JSON.stringify(p)}`);
      return p.pid;
    };
    let checkedPid1 = false;
    await exercise('read-only root, PID 1', proc, ports, () => {
      const p = pid1();
      if (!checkedPid1) {
        checkedPid1 = true;
        const nspid = statusField(p, 'NSpid').split(/\s+/);
        check(nspid.at(-1) === '1', `read-only root, PID 1: tini is PID 1 in its namespace (NSpid ${nspid.join(' ')})`);
      }
      return p;
    });
    const written = readdirSync(vol);
    check(written.length > 0, `read-only root, PID 1: the embedded store wrote to the volume only (${written.join(', ')})`);
    const mode = statSync(vol).mode & 0o777;
    check(statSync(vol).uid === Number(uid) && mode === 0o700, 'read-only root, PID 1: the volume stays the user\'s, mode 0700', mode.toString(8));
  } finally {
    rmSync(vol, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
    sh('buildah', ['umount', ctr]);
    sh('buildah', ['rm', ctr]);
  }
}

/** What the image holds: production dependencies exactly as locked, dist/ without tests, nothing else. */
function checkContents(): void {
  const ctr = sh('buildah', ['from', '--pull-never', IMAGE]).trim();
  try {
    const mnt = sh('buildah', ['mount', ctr]).trim();
    const app = join(mnt, 'opt/keygate');
    const installed = new Set<string>();
    const walk = (dir: string): void => {
      if (!existsSync(dir)) return;
      for (const name of readdirSync(dir)) {
        if (name.startsWith('.')) continue;
        const names = name.startsWith('@') ? readdirSync(join(dir, name)).map((n) => `${name}/${n}`) : [name];
        for (const n of names) {
          const p = join(dir, n);
          if (!existsSync(join(p, 'package.json'))) continue;
          installed.add(relative(app, p));
          walk(join(p, 'node_modules'));
        }
      }
    };
    walk(join(app, 'node_modules'));
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean; os?: string[]; cpu?: string[] }> };
    const locked = Object.entries(lock.packages).filter(([p]) => p !== '');
    const devOnly = new Set(locked.filter(([, v]) => v.dev).map(([p]) => p));
    const prod = new Set(locked.filter(([, v]) => !v.dev && !v.optional).map(([p]) => p));
    const devFound = [...installed].filter((p) => devOnly.has(p));
    check(devFound.length === 0, 'the image holds no dev dependency', devFound.join(', '));
    const unlocked = [...installed].filter((p) => !prod.has(p) && !devOnly.has(p));
    check(unlocked.length === 0, 'every package in the image is in package-lock.json', unlocked.join(', '));
    const missing = [...prod].filter((p) => !installed.has(p));
    check(missing.length === 0, `every production dependency is in the image (${installed.size} packages)`, missing.join(', '));

    const top = readdirSync(app).sort();
    check(JSON.stringify(top) === JSON.stringify(['LICENSE', 'dist', 'node_modules', 'package.json']), '/opt/keygate holds only dist/, node_modules/, package.json and LICENSE', top.join(' '));
    const ours: string[] = [];
    const list = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) list(p);
        else ours.push(relative(app, p));
      }
    };
    list(join(app, 'dist'));
    const tests = ours.filter((f) => /(^|\/)(test|tests|bench|support)\//.test(f) || /\.(test|spec|fuzz)\.[cm]?[jt]s(\.map)?$/.test(f));
    check(ours.includes('dist/cli.js') && tests.length === 0, `dist/ holds the build and no test file (${ours.length} files)`, tests.join(', '));
    for (const gone of ['src', 'test', 'bench', 'root/.npm', 'usr/local/lib/node_modules/keygate']) {
      const p = gone.startsWith('root') || gone.startsWith('usr') ? join(mnt, gone) : join(app, gone);
      check(!existsSync(p), `no ${gone.startsWith('root') || gone.startsWith('usr') ? '/' : '/opt/keygate/'}${gone} in the image`);
    }
    check(existsSync(join(mnt, 'usr/bin/tini')), 'tini is installed from Debian');
    check(existsSync(join(mnt, 'usr/bin/sleep')) || existsSync(join(mnt, 'bin/sleep')), 'sleep is there for the helm chart\'s preStop pause');
    check(existsSync(join(mnt, 'etc/keygate/gateway.yaml')), 'the default config is at /etc/keygate/gateway.yaml');
  } finally {
    sh('buildah', ['umount', ctr]);
    sh('buildah', ['rm', ctr]);
  }
}

async function main(): Promise<void> {
  for (const tool of ['podman', 'buildah', 'unshare', 'chroot']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is not installed (apt-get install podman buildah debootstrap)`);
  }
  if (process.getuid?.() !== 0) throw new Error('the image test runs as root (chroot isolation and mounts)');

  if (process.env.KEYGATE_PULL_BASE === '1') sh('podman', ['pull', BASE], { inherit: true });
  else sh(join(ROOT, 'test/container/base-image.sh'), [BASE], { inherit: true });
  const tBuild = Date.now();
  sh('podman', ['build', '--isolation=chroot', '--pull=never', '--network=host', '--format', 'docker', '-t', IMAGE, '.'], { inherit: true });
  log(`built ${IMAGE} from Dockerfile in ${secs(Date.now() - tBuild)}`);

  const config = imageConfig();
  check(/^[1-9]\d*(:\d+)?$/.test(config.User), `USER is a numeric non-root user (${config.User})`);
  check(config.Entrypoint[0] === '/usr/bin/tini', `the entrypoint is tini (${config.Entrypoint.join(' ')})`);
  const exposed = Object.keys(config.ExposedPorts ?? {}).sort();
  check(JSON.stringify(exposed) === JSON.stringify(['8080/tcp', '8081/tcp', '8082/tcp']), `EXPOSE gateway, admin and status ports (${exposed.join(' ')})`);
  check(Object.keys(config.Volumes ?? {}).includes('/var/lib/keygate'), 'VOLUME /var/lib/keygate');
  const hc = (config.Healthcheck?.Test ?? []).join(' ');
  check(hc.includes('KEYGATE_STATUS_PORT || 8082}/healthz'), 'HEALTHCHECK asks the status port\'s /healthz', hc);
  check(config.Env.includes('NODE_ENV=production'), 'NODE_ENV=production');

  checkContents();

  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const vctr = sh('buildah', ['from', '--pull-never', IMAGE]).trim();
  try {
    const printed = sh('buildah', ['run', '--isolation', 'chroot', '--network', 'host', vctr, '--', ...config.Entrypoint, '--version']).trim();
    check(printed === version, `keygate --version in the image prints ${version}`, printed);
  } finally {
    sh('buildah', ['rm', vctr]);
  }

  currentUpstream = await startUpstream();
  try {
    const tRun = Date.now();
    await runWithBuildah(config);
    await runReadOnly(config);
    log(`ran the image twice in ${secs(Date.now() - tRun)}`);
  } finally {
    currentUpstream.server.close();
  }

  const size = imageSize(IMAGE);
  const base = imageSize(BASE);
  log(`image ${IMAGE}: ${mb(size)}; adds ${mb(size - base)} over ${BASE} (${mb(base)}; a stand-in here)`);
  for (const line of sh('podman', ['history', '--format', '{{.Size}}\t{{.CreatedBy}}', IMAGE]).split('\n')) {
    if (line && !line.startsWith('0 B')) log(`  layer ${line.slice(0, 110)}`);
  }
  check(size - base < 60e6, `the image adds under 60 MB over its base (${mb(size - base)})`);
}

main().then(
  () => {
    log(`${failures.length === 0 ? 'passed' : `${failures.length} check(s) failed`} in ${secs(Date.now() - t0)}`);
    for (const f of failures) log(`failed: ${f}`);
    process.exitCode = failures.length === 0 ? 0 : 1;
  },
  (e: unknown) => {
    log(`error: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  },
);
