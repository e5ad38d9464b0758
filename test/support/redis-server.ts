// Real Redis servers for tests (excluded from the build).
//
// Every server runs as a child `redis-server` on 127.0.0.1 with its own temporary directory.
// Children and temporary directories are tracked: if the test process exits, or is stopped by
// SIGTERM/SIGINT/SIGHUP, running servers are killed and their temporary directories removed, so
// no Redis outlives the test run.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { which } from './which.js';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;
const CLUSTER_TIMEOUT_MS = 20_000;
/** A cluster node also listens on port + 10000 (the cluster bus). */
const CLUSTER_BUS_OFFSET = 10_000;
const LOG_FILE = 'redis.log';

// ---------------------------------------------------------------------------------------------
// Availability

/** Whether a `redis-server` binary is on the PATH. */
export function redisAvailable(): { ok: true } | { ok: false; reason: string } {
  return which('redis-server') !== null
    ? { ok: true }
    : { ok: false, reason: 'no redis-server binary on the PATH' };
}

function isCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci.toLowerCase() !== 'false';
}

/**
 * For `describe.skipIf(!requireRedis())`: true when `redis-server` is on the PATH. When it is
 * missing, CI fails loudly (throws) and a local run prints one line and skips. Redis tests are
 * never skipped for any other reason.
 */
export function requireRedis(): boolean {
  const available = redisAvailable();
  if (available.ok) return true;
  if (isCi()) throw new Error(`redis-server is required in CI (${available.reason}); install Redis on the CI image`);
  console.warn(`Skipping Redis tests: ${available.reason}`);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Child tracking: nothing outlives the test process.

const liveChildren = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
let signalHandlersInstalled = false;

function killAllSync(): void {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  liveChildren.clear();
  for (const dir of ownedDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  ownedDirs.clear();
}

function onTerminatingSignal(signal: NodeJS.Signals): void {
  killAllSync();
  updateSignalHandlers();
  // With no other listener, re-raise so the default action (terminating the process) still happens.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/**
 * Signal handlers are installed only while there is something to clean up (a running server or a
 * temporary directory), so they never change how a test process without Redis reacts to signals.
 */
function updateSignalHandlers(): void {
  const wanted = liveChildren.size > 0 || ownedDirs.size > 0;
  if (wanted === signalHandlersInstalled) return;
  signalHandlersInstalled = wanted;
  for (const signal of FORWARDED_SIGNALS) {
    if (wanted) process.on(signal, onTerminatingSignal);
    else process.off(signal, onTerminatingSignal);
  }
}

process.on('exit', killAllSync);

function track(child: ChildProcess): void {
  liveChildren.add(child);
  updateSignalHandlers();
  const forget = (): void => {
    liveChildren.delete(child);
    updateSignalHandlers();
  };
  child.once('exit', forget);
  child.once('error', forget); // failed to spawn: there will be no exit
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A port the kernel just handed out for 127.0.0.1 (bound on port 0, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(exclude: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await freePort();
    if (port + CLUSTER_BUS_OFFSET > 65_535) continue;
    if (exclude.has(port) || exclude.has(port + CLUSTER_BUS_OFFSET)) continue;
    if (exclude.has(port - CLUSTER_BUS_OFFSET)) continue;
    if (await portIsFree(port + CLUSTER_BUS_OFFSET)) return port;
  }
  throw new Error('could not find a free port pair (port and port + 10000) for a Redis cluster node');
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP client: one command, one reply. Used for readiness checks, so it never
// reconnects or queues.

/** Sends one command and resolves with its simple/bulk string or integer reply (as a string). */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | null, value?: string): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(value ?? '');
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no reply from 127.0.0.1:${port} within ${timeoutMs} ms`)));
    socket.once('error', (err) => finish(err));
    socket.once('close', () => finish(new Error(`connection to 127.0.0.1:${port} closed before a reply`)));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const eol = buffer.indexOf('\r\n');
      if (eol === -1) return;
      const type = String.fromCharCode(buffer[0]!);
      const line = buffer.subarray(1, eol).toString('utf8');
      if (type === '+' || type === ':') return finish(null, line);
      if (type === '-') return finish(new Error(line));
      if (type === '$') {
        const length = Number(line);
        if (length < 0) return finish(null, '');
        if (buffer.length < eol + 2 + length + 2) return; // wait for the rest
        return finish(null, buffer.subarray(eol + 2, eol + 2 + length).toString('utf8'));
      }
      finish(new Error(`unexpected reply type ${JSON.stringify(type)} from 127.0.0.1:${port}`));
    });
    let request = `*${args.length}\r\n`;
    for (const arg of args) request += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    socket.write(request);
  });
}

// ---------------------------------------------------------------------------------------------
// One server

export interface RedisServerOptions {
  /** `appendonly yes` (default: no). */
  appendonly?: boolean;
  /** `appendfsync` (default: Redis's own, everysec). */
  appendfsync?: 'always' | 'everysec';
  /** Data directory; kept on cleanup. Default: a fresh temporary directory, removed on cleanup. */
  dir?: string;
  /** Port on 127.0.0.1. Default: a free port. */
  port?: number;
  /** The `save` setting (RDB snapshot points, e.g. '60 1'). Default: '' (no snapshots). */
  save?: string;
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** The data directory (AOF, RDB, nodes.conf, redis.log). */
  readonly dir: string;
  /** Process id of the current (or, once stopped, the last) redis-server process. */
  readonly pid: number;
  /** Whether the redis-server process is running (a paused one counts as running). */
  readonly running: boolean;
  /** SIGTERM and wait for the exit (Redis flushes the AOF on SIGTERM). */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit: a crash, nothing flushed beyond what was already written. */
  kill(): Promise<void>;
  /** Starts again on the same port and directory with the same options (stopping it first if it runs), and waits for PING. */
  restart(): Promise<void>;
  /** SIGSTOP: the server holds connections but answers nothing (a hung Redis). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Stops the server if it runs and removes the temporary directory (unless `dir` was given). */
  cleanup(): Promise<void>;
}

interface LaunchPlan {
  dir: string;
  ownsDir: boolean;
  /** Options for redis-server apart from port, bind and dir. */
  args: string[];
  /** A fixed port, or how to pick a fresh one when the port turns out to be taken. */
  port: number | (() => Promise<number>);
}

class BindFailed extends Error {}

function logTail(logPath: string, from: number): string {
  try {
    const text = readFileSync(logPath).subarray(from).toString('utf8');
    return text.split('\n').filter((l) => l.trim() !== '').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

function logSize(logPath: string): number {
  try { return statSync(logPath).size; } catch { return 0; }
}

/** Spawns redis-server on `port` and waits until it is the one answering PING there. */
async function spawnRedis(port: number, plan: LaunchPlan): Promise<ChildProcess> {
  const logPath = join(plan.dir, LOG_FILE);
  const logFrom = logSize(logPath);
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--protected-mode', 'no',
    '--daemonize', 'no',
    '--dir', plan.dir,
    '--logfile', logPath,
    ...plan.args,
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const spawnFailure: { error?: Error } = {};
  child.once('error', (err) => { spawnFailure.error = err; });
  track(child);

  const describeFailure = (what: string): string =>
    `redis-server on port ${port} ${what}\n${logTail(logPath, logFrom)}${stderr.trim() ? `\n${stderr.trim()}` : ''}`;

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (spawnFailure.error) throw new Error(`could not start redis-server: ${spawnFailure.error.message}`);
    if (hasExited(child)) {
      await sleep(20); // let the log and stderr settle
      const message = describeFailure(`exited before answering PING (code ${child.exitCode}, signal ${child.signalCode})`);
      throw /in use|Failed listening|Could not create server TCP|Could not bind/i.test(message) ? new BindFailed(message) : new Error(message);
    }
    try {
      if ((await redisCommand(port, ['PING'], 500)) === 'PONG') {
        // Make sure it is our process answering, not another server that holds the port.
        const info = await redisCommand(port, ['INFO', 'server'], 1_000);
        if (new RegExp(`^process_id:${child.pid}\\r?$`, 'm').test(info)) return child;
      }
    } catch {
      // not up yet (refused, or -LOADING while it replays the AOF)
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  await waitForExit(child);
  throw new Error(describeFailure(`did not answer PING within ${READY_TIMEOUT_MS} ms`));
}

class ManagedRedisServer implements RedisServer {
  private child: ChildProcess | null = null;
  private lastPid = 0;
  private paused = false;
  private cleanedUp = false;

  private constructor(private readonly plan: LaunchPlan, public readonly port: number) {}

  /** Starts a server; on a port clash with a picked port, tries again on another one. */
  static async launch(plan: LaunchPlan): Promise<ManagedRedisServer> {
    const fixed = typeof plan.port === 'number';
    for (let attempt = 1; ; attempt++) {
      const port = typeof plan.port === 'number' ? plan.port : await plan.port();
      const server = new ManagedRedisServer(plan, port);
      try {
        await server.spawn();
        return server;
      } catch (err) {
        if (!(err instanceof BindFailed) || fixed || attempt >= 5) throw err;
      }
    }
  }

  get url(): string { return `redis://${HOST}:${this.port}`; }
  get dir(): string { return this.plan.dir; }
  get pid(): number { return this.child?.pid ?? this.lastPid; }
  get running(): boolean { return this.child !== null && !hasExited(this.child); }

  private async spawn(): Promise<void> {
    if (this.cleanedUp) throw new Error('this Redis server was cleaned up');
    // Right after a stop the same port may briefly be refused; a restart retries for a moment.
    for (let attempt = 1; ; attempt++) {
      try {
        this.child = await spawnRedis(this.port, this.plan);
        break;
      } catch (err) {
        if (!(err instanceof BindFailed) || attempt >= 10 || this.lastPid === 0) throw err;
        await sleep(200);
      }
    }
    this.lastPid = this.child.pid ?? 0;
    this.paused = false;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || hasExited(child)) return;
    child.kill('SIGTERM');
    if (this.paused) child.kill('SIGCONT'); // a stopped process handles SIGTERM only once continued
    this.paused = false;
    const timer = setTimeout(() => { if (!hasExited(child)) child.kill('SIGKILL'); }, STOP_TIMEOUT_MS);
    await waitForExit(child);
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || hasExited(child)) return;
    child.kill('SIGKILL');
    this.paused = false;
    await waitForExit(child);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  pause(): void {
    if (!this.running) throw new Error('cannot pause a Redis server that is not running');
    this.child!.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.running) throw new Error('cannot resume a Redis server that is not running');
    this.child!.kill('SIGCONT');
    this.paused = false;
  }

  async cleanup(): Promise<void> {
    await this.stop();
    this.cleanedUp = true;
    if (this.plan.ownsDir) await removeTempDir(this.plan.dir);
  }
}

function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  ownedDirs.add(dir);
  updateSignalHandlers();
  return dir;
}

async function removeTempDir(dir: string): Promise<void> {
  ownedDirs.delete(dir);
  updateSignalHandlers();
  await rm(dir, { recursive: true, force: true });
}

/** Starts a standalone redis-server on 127.0.0.1 and resolves once it answers PING. */
export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const ownsDir = opts.dir === undefined;
  const dir = opts.dir ?? makeTempDir('keygate-redis-');
  const args = ['--save', opts.save ?? '', '--appendonly', opts.appendonly ? 'yes' : 'no'];
  if (opts.appendfsync) args.push('--appendfsync', opts.appendfsync);
  try {
    return await ManagedRedisServer.launch({ dir, ownsDir, args, port: opts.port ?? freePort });
  } catch (err) {
    if (ownsDir) await removeTempDir(dir);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Cluster

export interface RedisClusterHandle {
  /** redis://127.0.0.1:PORT of every master, in node order. */
  urls: string[];
  nodes: RedisServer[];
  /** Stops every node (SIGTERM). */
  stop(): Promise<void>;
  /** Stops every node and removes their directories. */
  cleanup(): Promise<void>;
}

function runRedisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

function clusterInfoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(\\S+)`, 'm').exec(info)?.[1];
}

/** Whether this node sees a healthy cluster: state ok, every slot served, every master known. */
async function nodeSeesHealthyCluster(port: number, masters: number): Promise<boolean> {
  try {
    const info = await redisCommand(port, ['CLUSTER', 'INFO']);
    return clusterInfoField(info, 'cluster_state') === 'ok'
      && clusterInfoField(info, 'cluster_slots_ok') === '16384'
      && clusterInfoField(info, 'cluster_known_nodes') === String(masters)
      && clusterInfoField(info, 'cluster_size') === String(masters);
  } catch {
    return false;
  }
}

/**
 * Starts `masters` cluster-enabled redis-server processes (no replicas), joins them with
 * `redis-cli --cluster create` and resolves once every node reports `cluster_state:ok` and
 * sees all 16384 slots served by all masters.
 */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  if (masters < 3) throw new Error('a Redis cluster needs at least 3 masters');
  if (which('redis-cli') === null) throw new Error('no redis-cli binary on the PATH (needed to create a Redis cluster)');
  const nodes: ManagedRedisServer[] = [];
  const cleanup = async (): Promise<void> => { await Promise.all(nodes.map((n) => n.cleanup())); };
  try {
    const taken = new Set<number>();
    const pickPort = async (): Promise<number> => {
      const port = await freeClusterPort(taken);
      taken.add(port);
      return port;
    };
    const args = [
      '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '2000',
    ];
    const started = await Promise.allSettled(
      Array.from({ length: masters }, () => ManagedRedisServer.launch({ dir: makeTempDir('keygate-redis-cluster-'), ownsDir: true, args, port: pickPort })),
    );
    for (const result of started) if (result.status === 'fulfilled') nodes.push(result.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    await runRedisCli(
      ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      CLUSTER_TIMEOUT_MS,
    );

    const deadline = Date.now() + CLUSTER_TIMEOUT_MS;
    for (;;) {
      const healthy = await Promise.all(nodes.map((n) => nodeSeesHealthyCluster(n.port, masters)));
      if (healthy.every(Boolean)) break;
      if (Date.now() > deadline) {
        const infos = await Promise.all(nodes.map((n) => redisCommand(n.port, ['CLUSTER', 'INFO']).catch((e: Error) => e.message)));
        throw new Error(`Redis cluster did not become healthy within ${CLUSTER_TIMEOUT_MS} ms:\n${infos.join('\n---\n')}`);
      }
      await sleep(100);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    urls: nodes.map((n) => n.url),
    nodes,
    stop: async () => { await Promise.all(nodes.map((n) => n.stop())); },
    cleanup,
  };
}

// ---------------------------------------------------------------------------------------------
// TCP proxy: cut one client's connection to Redis while others keep theirs.

export interface TcpProxy {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** Destroys every open connection and drops new ones on arrival, until restore(). */
  cut(): void;
  /** Accepts and forwards connections again. */
  restore(): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** A TCP proxy on a free 127.0.0.1 port forwarding to 127.0.0.1:targetPort. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let isCut = false;

  const server = net.createServer((client) => {
    if (isCut) {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: HOST, port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const teardown = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('close', teardown);
    upstream.on('close', teardown);
    client.pipe(upstream);
    upstream.pipe(client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    url: `redis://${HOST}:${port}`,
    cut() {
      isCut = true;
      for (const socket of sockets) {
        // Reset rather than close, so the client sees the connection break, not a polite goodbye.
        if (!socket.destroyed) socket.resetAndDestroy();
      }
      sockets.clear();
    },
    restore() {
      isCut = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
