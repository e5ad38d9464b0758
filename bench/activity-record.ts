// CPU per request of recording activity, in process (what `keys.activityPerKey` adds to the
// key path beside the usage counts): record() for each of a second's requests, then the
// second's flush into a real embedded store (trim per key, JSON lines appended to its file).
// Compared with the usage recorder's record() + flush on the same requests.
//   npx tsx bench/activity-record.ts
// Knobs: BENCH_REQUESTS (23 000 a "second", the key path's rate), BENCH_KEYS (1 and 1 000), BENCH_ROUNDS (20).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseIp } from '../src/domain/cidr.js';
import { ActivityRecorder } from '../src/data-plane/pipeline/activity-recorder.js';
import type { RequestContext } from '../src/data-plane/pipeline/context.js';
import { UsageRecorder } from '../src/data-plane/pipeline/usage-recorder.js';
import { EmbeddedStore } from '../src/store/embedded/embedded-store.js';
import { median, num, round3, runMain } from './lib.js';

const REQUESTS = num('BENCH_REQUESTS', 23_000);
const ROUNDS = num('BENCH_ROUNDS', 20);

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-activity-record-'));
  const store = new EmbeddedStore({ path: join(dir, 'data'), logger: pino({ level: 'silent' }) });
  await store.open();
  try {
    for (const keyCount of process.env.BENCH_KEYS ? [num('BENCH_KEYS', 1)] : [1, 1_000]) {
      const keyIds = Array.from({ length: keyCount }, (_, i) => `key_bench_${keyCount}_${i}`);
      for (const id of keyIds) {
        await store.commit({ ops: [{ op: 'put', entity: { type: 'key', value: { id, workspaceId: 'w', name: id, description: '', groupId: null, ownerId: null, type: 'workspace', environment: 'live', prefix: 'kg_live_x', enabled: true, permissions: ['*'], permissionsLocked: false, ipAllowlist: [], eventAllowlist: [], eventDenylist: [], profileAttributeAllowlist: [], basicAuth: false, simpleAuth: { enabled: false, salt: null }, rateLimit: null, quota: null, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), expiresAt: null, version: 1, secretHash: `h_${id}`, retiredSecrets: [], seq: 0 } } }], audit: [] });
      }
      const ip = parseIp('127.0.0.1');
      const ctxs = Array.from({ length: 64 }, (_, i) => ({
        requestId: `req${i}`, req: { method: 'GET' }, route: { name: 'list-events' }, clientIp: ip, peer: { ip, text: '127.0.0.1' },
      }) as unknown as RequestContext);
      const activity = new ActivityRecorder((records) => store.recordActivity(records, 1_000), { keepPerKey: 1_000 });
      const usage = new UsageRecorder((deltas) => store.recordUsage(deltas));
      const a: number[] = [];
      const u: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        let t = cpuUs();
        for (let i = 0; i < REQUESTS; i++) activity.record(ctxs[i & 63]!, keyIds[i % keyCount]!, 200, 'OK', Date.now());
        await activity.flush();
        a.push((cpuUs() - t) / REQUESTS);
        t = cpuUs();
        for (let i = 0; i < REQUESTS; i++) usage.record(keyIds[i % keyCount]!, 'OK', Date.now());
        await usage.flush();
        u.push((cpuUs() - t) / REQUESTS);
      }
      console.log(`${keyCount} key(s), ${REQUESTS} requests a flush: activity ${round3(median(a))} µs CPU/request, usage ${round3(median(u))} µs CPU/request (medians of ${ROUNDS})`);
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runMain(main);
