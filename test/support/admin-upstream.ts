import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { baseConfig } from './keygate.js';

// Used by the admin/durability suites to check, through the gateway, that a secret is
// (still) accepted. Kept apart from the data-plane suites' richer upstream helper.

/** A tiny upstream that answers 200 `{"ok":true}` to everything. */
export interface PlainUpstream { url: string; close(): Promise<void> }

export async function startPlainUpstream(): Promise<PlainUpstream> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** The base config with both upstreams pointed at `url`. */
export function configWithPlainUpstream(url: string): (dataDir: string) => Record<string, unknown> {
  return (dataDir) => ({ ...baseConfig(dataDir), upstreams: { events: { url }, 'events-test': { url } } });
}

/**
 * The gateway's status for `GET /v1/events` (permission `events.read`) with the secret in
 * X-Api-Key: 200 when the secret is accepted and may read events, 401 when it is unknown.
 */
export async function gatewayStatus(gatewayUrl: string | null, secret: string): Promise<number> {
  if (gatewayUrl === null) throw new Error('keygate printed no gateway URL in its ready line');
  const res = await fetch(`${gatewayUrl}/v1/events`, { headers: { 'x-api-key': secret } });
  await res.arrayBuffer();
  return res.status;
}
