// The policy check alone, without the network: request target → header scan → route match →
// credential → cache hit → status → permission → key type → IP allowlist, as the gateway runs
// it per request (synchronously on a cache hit). Prints ns/op twice: for the first request on
// a connection (the secret is hashed and looked up in the cache) and for a repeat on a
// keep-alive connection (recognised by the connection's CredentialMemo); the last line is the
// keep-alive figure, the one `npm run bench` reports.
// Run: npm run build && npx tsx bench/policy-check.ts
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseConfigText } from '../src/config/load.js';
import { parseIp } from '../src/domain/cidr.js';
import { generateSecret, hashSecret } from '../src/domain/secret.js';
import type { CompiledRoute, RequestContext, Stage } from '../src/data-plane/pipeline/context.js';
import { scanHeaders } from '../src/data-plane/request/credentials.js';
import { newPeer } from '../src/data-plane/request/peer.js';
import { CredentialMemo, KeyResolver } from '../src/data-plane/key-resolver.js';
import { LocalRateLimiter } from '../src/store/rate-limit/local.js';
import { compileRoutes } from '../src/data-plane/pipeline/compile-routes.js';
import { parseRequestTarget } from '../src/data-plane/request/request-target.js';
import { RouteTable } from '../src/data-plane/pipeline/route-table.js';
import { keyRecord } from '../test/support/fixtures.js';

const PEPPER = 'bench-pepper-0123456789abcdef';
const loaded = parseConfigText(`
admin: { tokens: [{ name: b, token: bench-admin-token-0123 }] }
secrets: { pepper: ${PEPPER} }
upstreams: { api: { url: "http://127.0.0.1:9" } }
routes:
  - { name: list-events, method: GET, path: /v1/events, upstream: api, permission: events.read, keyTypes: [workspace] }
`, {});
if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
const config = loaded.config;

const { secret } = generateSecret('live');
const now = new Date().toISOString();
const record = keyRecord({
  id: 'key_bench', name: 'bench', prefix: secret.slice(0, 12), permissions: ['events.read'], ipAllowlist: ['10.0.0.0/8', '127.0.0.0/8'],
  createdAt: now, updatedAt: now, secretHash: hashSecret(PEPPER, secret),
});
const resolver = new KeyResolver({
  source: {
    lookup: async (hash) => (hash === record.secretHash ? { record, owner: null } : null),
    lookupById: async (id) => (id === record.id ? { record, owner: null } : null),
  },
  pepper: PEPPER,
  fresh: () => true,
  stats: { hit: () => undefined, miss: () => undefined, storeError: () => undefined },
});
const { routes, upstreams } = compileRoutes({ config, resolver, tokens: null, limiter: new LocalRateLimiter(), rateLimited: { inc: () => undefined } });
const table = new RouteTable(routes);
const rawHeaders = ['Host', '127.0.0.1:8080', 'User-Agent', 'autocannon', 'X-Api-Key', secret, 'Accept', '*/*'];
const peer = parseIp('127.0.0.1');
const connection = newPeer(peer, '127.0.0.1', false);
const res = {} as ServerResponse;

/** The route's stages and then its key checks, as one list (each request here is admitted by the first). */
const stagesOf = (route: CompiledRoute): Stage[] => [...route.stages, ...(route.checks as unknown as Stage[])];
const eventStages = stagesOf(table.match('GET', '/v1/events')!.route);

/** One request's checks; a cache hit stays synchronous, as in the gateway (no promise). */
function once(credential: CredentialMemo): Promise<void> | undefined {
  const target = parseRequestTarget('/v1/events?limit=10')!;
  const scan = scanHeaders(rawHeaders);
  const match = table.match('GET', target.path)!;
  const ctx: RequestContext = {
    req: { rawHeaders } as IncomingMessage, res, requestId: 'r', trace: { traceId: '0af7651916cd43dd8448eb211c80319c', flags: '01', tracestate: null }, route: match.route, params: match.params,
    path: target.path, search: target.search, scan, now: Date.now(), started: 0, policy: null, secretHash: null, profile: null,
    clientIp: peer, peer: connection, credential, responseHeaders: null, body: null, tokenRequest: null,
  };
  const stages = eventStages;
  for (let i = 0; i < stages.length; i++) {
    const r = stages[i]!(ctx);
    if (r instanceof Promise) return finishAsync(ctx, r, i);
    if (r !== null) throw new Error(`refused: ${r}`);
  }
  return undefined;
}

async function finishAsync(ctx: RequestContext, pending: Promise<unknown>, at: number): Promise<void> {
  let r = await pending;
  const stages = eventStages;
  for (let i = at + 1; r === null && i < stages.length; i++) {
    const next = stages[i]!(ctx);
    r = next instanceof Promise ? await next : next;
  }
  if (r !== null) throw new Error(`refused: ${String(r)}`);
}

await once(new CredentialMemo()); // fill the cache
const keepAlive = new CredentialMemo();
for (const [label, memo] of [['first request on a connection', null], ['keep-alive repeat', keepAlive]] as const) {
  for (const n of [50_000, 500_000]) {
    let async = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const p = once(memo ?? new CredentialMemo());
      if (p) { async++; await p; }
    }
    const ns = Number(process.hrtime.bigint() - t0) / n;
    process.stdout.write(`policy check, ${label} (cache hit, ${n} iterations, ${async} went async): ${ns.toFixed(0)} ns/op\n`);
  }
}
await Promise.all(upstreams.map((u) => u.close()));
