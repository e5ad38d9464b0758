import { appendFileSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { spawn } from 'node:child_process';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createWorkspace, listAllKeys, runServeExpectingExit, stopAndClean, writeConfig } from './support/admin.js';
import { ADMIN_TOKEN, CLI, baseConfig, startKeygate, tempDir, type Keygate } from './support/keygate.js';
import { configWithPlainUpstream, gatewayStatus, startPlainUpstream, type PlainUpstream } from './support/admin-upstream.js';

const JOURNAL = 'journal.log';

/** Tracks what a test started so that afterEach can stop and remove it even on failure. */
const running: Keygate[] = [];
const cleanups: Array<() => void> = [];

let upstream: PlainUpstream;

async function start(dataDir: string): Promise<Keygate> {
  const kg = await startKeygate({ dataDir, config: configWithPlainUpstream(upstream.url) });
  running.push(kg);
  return kg;
}

/** Stops with `signal` (SIGTERM: returns the exit code) and forgets the process. */
async function stopClean(kg: Keygate, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const code = await kg.stop(signal);
  rmSync(dirname(kg.configFile), { recursive: true, force: true });
  const i = running.indexOf(kg);
  if (i !== -1) running.splice(i, 1);
  return code;
}

function freshDataDir(): string {
  const { dir, cleanup } = tempDir('keygate-durability-');
  cleanups.push(cleanup);
  return join(dir, 'data');
}

afterEach(async () => {
  for (const kg of running.splice(0)) await stopAndClean(kg, { keepData: true });
});

beforeAll(async () => {
  upstream = await startPlainUpstream();
});

afterAll(async () => {
  for (const c of cleanups.splice(0)) c();
  await upstream.close();
});

describe('restart', () => {
  it('SIGTERM exits 0 and a restart on the same data dir keeps workspaces, keys, groups, owners and audit', async () => {
    const dataDir = freshDataDir();
    const a = await start(dataDir);
    const ws = await createWorkspace(a, 'durable');
    const group = (await a.admin('POST', '/v1/groups', { name: 'g', description: 'd' })).body;
    const owner = (await a.admin('POST', '/v1/owners', { name: 'o', permissions: ['events.*'] })).body;
    const k1 = await createKey(a, { workspaceId: ws, name: 'one', groupId: group.id, ownerId: owner.id, permissions: ['events.create'], ipAllowlist: ['10.0.0.0/8'] });
    const k2 = await createKey(a, { workspaceId: ws, name: 'two', type: 'profile', simpleAuth: { enabled: true }, permissions: ['events.read'] });
    const reader = await createKey(a, { workspaceId: ws, name: 'reader', permissions: ['events.read'] });
    expect(await gatewayStatus(a.gatewayUrl, reader.secret)).toBe(200);
    const patched = (await a.admin('PATCH', `/v1/keys/${k1.key.id}`, { description: 'patched' })).body;
    const rotated = (await a.admin('POST', `/v1/keys/${k2.key.id}/rotate`, { gracePeriodSeconds: 600 })).body;
    const k3 = await createKey(a, { workspaceId: ws, name: 'three' });
    expect((await a.admin('DELETE', `/v1/keys/${k3.key.id}`)).status).toBe(204);
    await a.admin('PATCH', `/v1/owners/${owner.id}`, { status: 'disabled' });
    const auditBefore = (await a.admin('GET', '/v1/audit?limit=1000')).body.items;
    const keysBefore = await listAllKeys(a);

    expect(await stopClean(a)).toBe(0);

    const b = await start(dataDir);
    expect((await b.admin('GET', `/v1/workspaces/${ws}`)).body).toMatchObject({ id: ws, name: 'durable' });
    const g1 = await b.admin('GET', `/v1/keys/${k1.key.id}`);
    expect(g1.status).toBe(200);
    // The owner was disabled before the restart: the key now reads suspended.
    expect(g1.body).toEqual({ ...patched, status: 'suspended' });
    const g2 = await b.admin('GET', `/v1/keys/${k2.key.id}`);
    expect(g2.body.version).toBe(rotated.key.version);
    expect(g2.body.prefix).toBe(rotated.key.prefix);
    expect(g2.body.simpleAuth).toEqual({ enabled: true });
    expect((await b.admin('GET', `/v1/keys/${k3.key.id}`)).status).toBe(404);
    // lastUsedAt is telemetry flushed in the background; everything else must be identical.
    const noUsage = (keys: any[]): any[] => keys.map(({ lastUsedAt: _ignored, ...rest }) => rest);
    const keysAfter = await listAllKeys(b);
    expect(noUsage(keysAfter)).toEqual(noUsage(keysBefore));
    // A clean stop flushes the usage the gateway recorded for the key it served.
    expect(keysAfter.find((k) => k.id === reader.key.id).lastUsedAt).not.toBeNull();
    // The stored secret hashes still match the secrets handed out before the restart.
    expect(await gatewayStatus(b.gatewayUrl, reader.secret)).toBe(200);
    expect(await gatewayStatus(b.gatewayUrl, rotated.secret)).toBe(200);
    expect(await gatewayStatus(b.gatewayUrl, k2.secret)).toBe(200); // the rotation grace outlives the restart
    expect(await gatewayStatus(b.gatewayUrl, k3.secret)).toBe(401); // deleted
    expect(await gatewayStatus(b.gatewayUrl, k1.secret)).toBe(403); // known, but its owner is disabled
    expect((await b.admin('GET', '/v1/groups')).body.items).toContainEqual(group);
    expect((await b.admin('GET', '/v1/owners')).body.items.find((o: any) => o.id === owner.id).status).toBe('disabled');
    expect((await b.admin('GET', '/v1/audit?limit=1000')).body.items).toEqual(auditBefore);

    // Writes go on after the restart, and the cursor order continues.
    const k4 = await createKey(b, { workspaceId: ws, name: 'four' });
    const page = await b.admin('GET', `/v1/keys?workspaceId=${ws}&limit=1`);
    expect(page.body.items[0].id).toBe(k1.key.id);
    const ids = (await listAllKeys(b, `workspaceId=${ws}`)).map((k) => k.id);
    expect(ids).toEqual([k1.key.id, k2.key.id, reader.key.id, k4.key.id]);
    expect(await stopClean(b)).toBe(0);
  });

  it('SIGKILL right after a 201 keeps the key (repeated)', async () => {
    const dataDir = freshDataDir();
    let kg = await start(dataDir);
    const ws = await createWorkspace(kg, 'crashy');
    const created: Array<{ id: string; prefix: string; secret: string }> = [];
    for (let i = 0; i < 4; i++) {
      const res = await kg.admin('POST', '/v1/keys', { workspaceId: ws, name: `crash-${i}`, permissions: ['events.read'] });
      expect(res.status).toBe(201);
      await stopClean(kg, 'SIGKILL');
      created.push({ id: res.body.key.id, prefix: res.body.key.prefix, secret: res.body.secret });

      kg = await start(dataDir);
      for (const c of created) {
        const got = await kg.admin('GET', `/v1/keys/${c.id}`);
        expect(got.status, `key ${c.id} after kill -9 #${i}`).toBe(200);
        expect(got.body.prefix).toBe(c.prefix);
        expect(await gatewayStatus(kg.gatewayUrl, c.secret)).toBe(200);
      }
    }
    // A 204 DELETE acknowledged just before kill -9 stays deleted.
    const victim = created[0]!.id;
    expect((await kg.admin('DELETE', `/v1/keys/${victim}`)).status).toBe(204);
    await stopClean(kg, 'SIGKILL');
    kg = await start(dataDir);
    expect((await kg.admin('GET', `/v1/keys/${victim}`)).status).toBe(404);
    expect(await gatewayStatus(kg.gatewayUrl, created[0]!.secret)).toBe(401);
    // A PATCH acknowledged just before kill -9 is kept too.
    const survivor = created[1]!.id;
    const p = await kg.admin('PATCH', `/v1/keys/${survivor}`, { enabled: false });
    expect(p.status).toBe(200);
    await stopClean(kg, 'SIGKILL');
    kg = await start(dataDir);
    const got = await kg.admin('GET', `/v1/keys/${survivor}`);
    expect(got.body.status).toBe('disabled');
    expect(got.body.version).toBe(2);
    expect(await gatewayStatus(kg.gatewayUrl, created[1]!.secret)).toBe(403);
  });

  it('a rotation acknowledged just before SIGKILL is kept: the new secret works, the old one only per its grace', async () => {
    const dataDir = freshDataDir();
    let kg = await start(dataDir);
    const ws = await createWorkspace(kg, 'rotate-crash');
    const a = await createKey(kg, { workspaceId: ws, name: 'no-grace', permissions: ['events.read'] });
    const b = await createKey(kg, { workspaceId: ws, name: 'grace', permissions: ['events.read'] });
    const ra = await kg.admin('POST', `/v1/keys/${a.key.id}/rotate`, { gracePeriodSeconds: 0 });
    expect(ra.status).toBe(200);
    const rb = await kg.admin('POST', `/v1/keys/${b.key.id}/rotate`, { gracePeriodSeconds: 3600 });
    expect(rb.status).toBe(200);
    await stopClean(kg, 'SIGKILL');
    kg = await start(dataDir);
    expect((await kg.admin('GET', `/v1/keys/${a.key.id}`)).body.version).toBe(2);
    expect(await gatewayStatus(kg.gatewayUrl, ra.body.secret)).toBe(200);
    expect(await gatewayStatus(kg.gatewayUrl, a.secret)).toBe(401);
    expect(await gatewayStatus(kg.gatewayUrl, rb.body.secret)).toBe(200);
    expect(await gatewayStatus(kg.gatewayUrl, b.secret)).toBe(200);
  });
});

describe('journal damage', () => {
  /** Starts, writes a workspace and two keys, stops cleanly; returns what was written. */
  async function seed(dataDir: string): Promise<{ ws: string; keyIds: string[] }> {
    const kg = await start(dataDir);
    const ws = await createWorkspace(kg, 'seeded');
    const keyIds = [
      (await createKey(kg, { workspaceId: ws, name: 'seed-1' })).key.id,
      (await createKey(kg, { workspaceId: ws, name: 'seed-2' })).key.id,
    ];
    expect(await stopClean(kg)).toBe(0);
    return { ws, keyIds };
  }

  async function expectSeedIntact(kg: Keygate, seeded: { ws: string; keyIds: string[] }): Promise<void> {
    expect((await kg.admin('GET', `/v1/workspaces/${seeded.ws}`)).status).toBe(200);
    for (const id of seeded.keyIds) expect((await kg.admin('GET', `/v1/keys/${id}`)).status).toBe(200);
  }

  for (const variant of ['half of a real record', 'random garbage'] as const) {
    it(`recovers from a torn journal tail (${variant}, no newline): starts, keeps earlier data, and new writes survive another restart`, async () => {
      const dataDir = freshDataDir();
      const seeded = await seed(dataDir);
      const journal = join(dataDir, JOURNAL);
      const text = readFileSync(journal, 'utf8');
      const lines = text.split('\n').filter((l) => l !== '');
      expect(lines.length).toBeGreaterThanOrEqual(3);
      const last = lines[lines.length - 1]!;
      appendFileSync(journal, variant === 'half of a real record' ? last.slice(0, Math.floor(last.length / 2)) : '\u0000\u00ffgarbage{"v":');

      const b = await start(dataDir);
      await expectSeedIntact(b, seeded);
      const k = await createKey(b, { workspaceId: seeded.ws, name: 'after-repair' });
      expect(await stopClean(b)).toBe(0);

      const c = await start(dataDir);
      await expectSeedIntact(c, seeded);
      const got = await c.admin('GET', `/v1/keys/${k.key.id}`);
      expect(got.status).toBe(200);
      expect(got.body.name).toBe('after-repair');
      expect((await listAllKeys(c, `workspaceId=${seeded.ws}`)).map((x) => x.id)).toEqual([...seeded.keyIds, k.key.id]);
    });
  }

  it('garbage in the middle of the journal followed by valid records makes serve exit non-zero without touching the file', async () => {
    const dataDir = freshDataDir();
    await seed(dataDir);
    const journal = join(dataDir, JOURNAL);
    const lines = readFileSync(journal, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const damaged = [lines[0]!, 'this is not a journal record', ...lines.slice(1)].join('\n') + '\n';
    writeFileSync(journal, damaged);
    const configFile = writeConfig(dataDir);
    try {
      const res = await runServeExpectingExit(configFile);
      expect(res.becameReady, res.stdout + res.stderr).toBe(false);
      expect(res.code).not.toBe(0);
      expect(res.code).not.toBeNull();
      expect(res.stdout + res.stderr).toContain(JOURNAL);
    } finally {
      rmSync(dirname(configFile), { recursive: true, force: true });
    }
    expect(readFileSync(journal, 'utf8')).toBe(damaged);
  });

  it('a record with a flipped byte (bad checksum) in the middle makes serve exit non-zero', async () => {
    const dataDir = freshDataDir();
    await seed(dataDir);
    const journal = join(dataDir, JOURNAL);
    const lines = readFileSync(journal, 'utf8').split('\n').filter((l) => l !== '');
    const middle = lines[1]!;
    const at = middle.indexOf('seed-1') !== -1 ? middle.indexOf('seed-1') : Math.floor(middle.length / 2);
    lines[1] = middle.slice(0, at) + 'X' + middle.slice(at + 1);
    writeFileSync(journal, lines.join('\n') + '\n');
    const configFile = writeConfig(dataDir);
    try {
      const res = await runServeExpectingExit(configFile);
      expect(res.becameReady, res.stdout + res.stderr).toBe(false);
      expect(res.code).not.toBe(0);
      expect(res.code).not.toBeNull();
    } finally {
      rmSync(dirname(configFile), { recursive: true, force: true });
    }
  });
});

describe('data dir', () => {
  it('a data dir keygate creates is mode 0700 and every file in it 0600', async () => {
    const dataDir = freshDataDir(); // does not exist yet: keygate creates it
    const kg = await start(dataDir);
    const ws = await createWorkspace(kg);
    await createKey(kg, { workspaceId: ws, name: 'mode' });
    const check = (): void => {
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      const names = readdirSync(dataDir);
      expect(names).toContain(JOURNAL);
      for (const name of names) {
        const st = statSync(join(dataDir, name));
        if (st.isDirectory()) expect(st.mode & 0o777, name).toBe(0o700);
        else expect(st.mode & 0o777, name).toBe(0o600);
      }
    };
    check();
    expect(await stopClean(kg)).toBe(0);
    check();
  });

  it('a nested data path is created with 0700 directories', async () => {
    const { dir, cleanup } = tempDir('keygate-nested-');
    cleanups.push(cleanup);
    const dataDir = join(dir, 'a', 'b', 'data');
    const kg = await start(dataDir);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'a', 'b')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, JOURNAL)).mode & 0o777).toBe(0o600);
    expect(await stopClean(kg)).toBe(0);
  });

  it('of two serves started together on a data dir with a stale lock, only one opens it (regression: both took the lock over)', async () => {
    const dataDir = freshDataDir();
    const first = await start(dataDir);
    expect(await stopClean(first, 'SIGKILL')).toBeNull(); // leaves store.lock naming a dead process
    const configFile = writeConfig(dataDir, baseConfig);
    try {
      for (let round = 0; round < 3; round++) {
        const procs = [0, 1].map(() => spawn(process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'ignore'] }));
        const readies = procs.map((p) => new Promise<boolean>((resolve) => {
          let out = '';
          p.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('"msg":"ready"')) resolve(true); });
          p.once('exit', () => resolve(false));
          setTimeout(() => resolve(false), 8_000);
        }));
        const ready = await Promise.all(readies);
        expect(ready.filter(Boolean).length).toBe(1);
        await Promise.all(procs.map((p) => new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        })));
      }
    } finally {
      rmSync(dirname(configFile), { recursive: true, force: true });
    }
  });

  it('starts on a data dir whose stale lock names a pid now held by another live process (regression: "in use by process N" after a container restart)', async () => {
    const dataDir = freshDataDir();
    const first = await start(dataDir);
    const ws = await createWorkspace(first, 'reused-pid');
    expect(await stopClean(first, 'SIGKILL')).toBeNull();
    const lockFile = join(dataDir, 'store.lock');
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      // The dead holder's pid now belongs to a process that started after it.
      writeFileSync(lockFile, readFileSync(lockFile, 'utf8').replace(/\d+/, String(other.pid)));
      const again = await start(dataDir);
      expect((await again.admin('GET', `/v1/workspaces/${ws}`)).status).toBe(200);
    } finally {
      other.kill();
    }
  });

  it('exits non-zero, instead of hanging, when gateway workers cannot take the port (regression)', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as AddressInfo).port;
    const configFile = writeConfig(freshDataDir(), (dir) => ({ ...baseConfig(dir), gateway: { listen: { host: '127.0.0.1', port }, workers: 2 } }));
    try {
      const res = await runServeExpectingExit(configFile, 20_000);
      expect(res.becameReady).toBe(false);
      expect(res.code).toBe(1);
    } finally {
      blocker.close();
      rmSync(dirname(configFile), { recursive: true, force: true });
    }
  });

  it('a second serve on the same data dir exits non-zero while the first runs, and the first keeps working', async () => {
    const dataDir = freshDataDir();
    const first = await start(dataDir);
    const ws = await createWorkspace(first, 'locked');
    const configFile = writeConfig(dataDir, baseConfig);
    try {
      for (let i = 0; i < 2; i++) {
        const res = await runServeExpectingExit(configFile);
        expect(res.becameReady, res.stdout + res.stderr).toBe(false);
        expect(res.code).not.toBe(0);
        expect(res.code).not.toBeNull();
      }
    } finally {
      rmSync(dirname(configFile), { recursive: true, force: true });
    }
    const k = await createKey(first, { workspaceId: ws, name: 'still-writable' });
    expect(await stopClean(first)).toBe(0);
    const again = await start(dataDir);
    expect((await again.admin('GET', `/v1/keys/${k.key.id}`)).status).toBe(200);
  });
});

describe('process', () => {
  it('prints one JSON ready line with msg "ready" and an admin URL, and SIGTERM exits 0', async () => {
    const dataDir = freshDataDir();
    const kg = await start(dataDir);
    const readyLines = kg.output.filter((l) => {
      try {
        return (JSON.parse(l) as { msg?: string }).msg === 'ready';
      } catch {
        return false;
      }
    });
    expect(readyLines).toHaveLength(1);
    const ready = JSON.parse(readyLines[0]!) as { msg: string; admin: string; gateway?: unknown };
    expect(ready.admin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.admin).toBe(kg.adminUrl);
    expect(ready.gateway).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.gateway).not.toBe(ready.admin);
    const health = await fetch(`${ready.admin}/healthz`);
    expect(health.status).toBe(200);
    expect(await stopClean(kg)).toBe(0);
    // A clean stop leaves the store unlocked: the next start succeeds at once.
    const again = await start(dataDir);
    expect((await fetch(`${again.adminUrl}/readyz`)).status).toBe(200);
  });

  /**
   * Sends a POST /v1/workspaces whose body is held back: the first part is written, then
   * SIGTERM, then the rest. Returns the response and how long the process took to exit after it.
   */
  async function inFlightWriteAcrossSigterm(kg: Keygate, keepAlive: boolean): Promise<{ status: number; text: string; connection: string | undefined; exitCode: number | null; exitAfterMs: number }> {
    const url = new URL(`${kg.adminUrl}/v1/workspaces`);
    let status = 0;
    let text = '';
    let connection: string | undefined;
    const req = request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...(keepAlive ? {} : { connection: 'close' }) },
      ...(keepAlive ? { agent: new Agent({ keepAlive: true }) } : { agent: false }),
    });
    const responded = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        status = res.statusCode ?? 0;
        connection = res.headers.connection;
        res.on('data', (d: Buffer) => { text += d.toString(); });
        res.on('end', () => resolve());
      });
      req.on('error', reject);
    });
    req.write('{"name": "in-fli');
    await new Promise((r) => setTimeout(r, 150));
    const exit = kg.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(kg.proc.exitCode).toBeNull(); // still draining
    req.end('ght"}');
    await responded;
    const at = Date.now();
    const exitCode = await exit;
    return { status, text, connection, exitCode, exitAfterMs: Date.now() - at };
  }

  it('SIGTERM lets an in-flight admin write finish (201, durable) before exiting 0', async () => {
    const dataDir = freshDataDir();
    const kg = await start(dataDir);
    const r = await inFlightWriteAcrossSigterm(kg, false);
    expect(r.status, r.text).toBe(201);
    expect(r.exitCode).toBe(0);
    const ws = JSON.parse(r.text) as { id: string };
    await stopClean(kg);
    const again = await start(dataDir);
    expect((await again.admin('GET', `/v1/workspaces/${ws.id}`)).body.name).toBe('in-flight');
  });

  it('after SIGTERM the drained response closes its keep-alive connection and the process exits promptly', async () => {
    const dataDir = freshDataDir();
    const kg = await start(dataDir);
    const r = await inFlightWriteAcrossSigterm(kg, true);
    await stopClean(kg);
    expect(r.status, r.text).toBe(201);
    expect(r.exitCode).toBe(0);
    // A draining server must not keep (or advertise) keep-alive: an idle client connection
    // would otherwise hold the shutdown until its keep-alive timeout.
    expect(r.connection).toBe('close');
    expect(r.exitAfterMs).toBeLessThan(2000);
  });

  it('serve with an invalid config exits non-zero naming the path in the file', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const configFile = writeConfig(join(dir, 'data'), (d) => {
      const c = baseConfig(d);
      (c.routes as Array<Record<string, unknown>>)[0]!.upstream = 'evnts';
      return c;
    });
    try {
      const res = await runServeExpectingExit(configFile);
      expect(res.becameReady).toBe(false);
      expect(res.code).not.toBe(0);
      expect(res.code).not.toBeNull();
      expect(res.stderr + res.stdout).toContain('routes[0].upstream: unknown upstream "evnts"');
    } finally {
      rmSync(dirname(configFile), { recursive: true, force: true });
    }
  });
});
