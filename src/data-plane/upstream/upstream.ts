import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../../config/schema.js';
import type { DrainState } from '../../http/drain.js';
import { clocks } from './clocks.js';
import { ProxyHandler, type ForwardResult } from './proxy-handler.js';
import type { Peer } from '../request/peer.js';

/** One keep-alive Pool per upstream; bodies stream both ways, never buffered here. */
export class Upstream {
  readonly name: string;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  private readonly basePath: string;

  constructor(name: string, config: UpstreamConfig, connections = 128) {
    this.name = name;
    this.timeoutMs = config.timeoutMs;
    clocks.register(config.timeoutMs);
    const url = new URL(config.url);
    this.pool = new Pool(url.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: Math.min(config.timeoutMs, 5_000),
    });
    this.basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  }

  /**
   * Streams `req` to the upstream and the answer back into `res` (a client leaving `peer`
   * aborts the upstream call). `body` replaces the
   * request stream when the pipeline already read it (inspected routes).
   */
  forward(req: IncomingMessage, res: ServerResponse, peer: Peer | null, path: string, headers: string[], requestId: string, drain: DrainState,
    body: Buffer | null, hasBody: boolean, extraHeaders: Readonly<Record<string, string>> | null, done: (result: ForwardResult) => void): void {
    this.pool.dispatch(
      {
        path: this.basePath + path,
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body: body ?? (hasBody ? req : null),
        // The upstream clocks enforce timeoutMs (see UpstreamClocks).
        headersTimeout: 0,
        bodyTimeout: 0,
      },
      new ProxyHandler(res, peer, requestId, drain, this.timeoutMs, extraHeaders, body === null && hasBody ? req : null, done),
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
