import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ERROR_CATALOGUE, type ErrorCode } from '../../errors/catalogue.js';
import { bearerChallenge, errorJson, writeJson } from '../../errors/http.js';
import type { CounterChild } from '../../observability/hot-metrics.js';
import type { Metrics, UpstreamErrorKind } from '../../observability/metrics.js';
import type { DrainState } from '../../http/drain.js';
import type { CompiledRoute, RequestContext } from './context.js';
import type { Accounting } from './accounting.js';
import type { ActivityRecorder } from './activity-recorder.js';
import type { RequestEnd } from './context.js';

export interface RequestEndDeps {
  accounting: Accounting;
  metrics: Metrics;
  logger: Logger;
  drain: DrainState;
  /** Every route, so each upstream's timer is bound once at startup. */
  routes: readonly CompiledRoute[];
  /** Each key's requests, batched for the store (null: `keys.activityPerKey: 0`). */
  activity?: ActivityRecorder | null;
}

const CHALLENGE = bearerChallenge('keygate');

/**
 * Every JSON answer the gateway makes itself; while draining it closes the connection. The
 * request id is the last header.
 */
export function sendGatewayJson(res: ServerResponse, drain: DrainState, requestId: string, status: number, payload: string,
  headers?: Readonly<Record<string, string>>): void {
  if (drain.draining) res.shouldKeepAlive = false;
  writeJson(res, status, payload, headers, 'x-request-id', requestId);
}

/**
 * A catalogued refusal on the gateway port: `Cache-Control: no-store`, a Bearer challenge on a
 * 401, and the connection closed after a 413 or 408 (an unread body is not worth draining).
 * Returns the status sent.
 */
export function sendGatewayError(res: ServerResponse, drain: DrainState, requestId: string, code: ErrorCode, message: string | null,
  extra: Readonly<Record<string, string>> | null, statusOverride?: number): number {
  const status = statusOverride ?? ERROR_CATALOGUE[code].status;
  const headers: Record<string, string> = { ...extra, 'cache-control': 'no-store' };
  if (status === 401) headers['www-authenticate'] = CHALLENGE;
  if (status === 413 || status === 408) res.shouldKeepAlive = false;
  sendGatewayJson(res, drain, requestId, status, errorJson(code, message, requestId), headers);
  return status;
}

/** An unexpected failure: logged, answered 500 if nothing was sent yet, else the connection is cut. */
export function sendGatewayFault(res: ServerResponse, drain: DrainState, logger: Logger, requestId: string, err: unknown, traceId: string | null = null): void {
  logger.error({ err, requestId, traceId }, 'gateway request failed');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendGatewayJson(res, drain, requestId, 500, errorJson('INTERNAL', null, requestId));
}

/** The gateway's one `RequestEnd`: the response writer and the accounting around every request. */
export function createRequestEnd({ accounting, metrics, logger, drain, routes, activity = null }: RequestEndDeps): RequestEnd {
  const upstreamTimers = new Map<string, ReturnType<Metrics['upstreamDuration']['labels']>>();
  for (const route of routes) {
    for (const u of route.upstreams) if (!upstreamTimers.has(u.name)) upstreamTimers.set(u.name, metrics.upstreamDuration.labels({ upstream: u.name }));
  }
  // Upstream names come from the config and kinds from a fixed set: bound on first use.
  const upstreamErrors = new Map<string, CounterChild>();
  const upstreamError = (upstream: string, kind: UpstreamErrorKind): void => {
    const k = `${upstream}\u0000${kind}`;
    let c = upstreamErrors.get(k);
    if (!c) upstreamErrors.set(k, (c = metrics.upstreamErrors.labels({ upstream, kind })));
    c.inc();
  };
  /** Beside the usage counts: the key's activity record, when the request has a key. */
  const account = (ctx: RequestContext, status: number, outcome: string, upstreamMs: number): void => {
    accounting.finish(ctx, ctx.route.name, status, outcome, upstreamMs);
    if (activity !== null && ctx.policy !== null) activity.record(ctx, ctx.policy.keyId, status, outcome, ctx.now);
  };
  const end: RequestEnd = {
    drain,
    logger,
    json(ctx, status, payload, headers) {
      sendGatewayJson(ctx.res, drain, ctx.requestId, status, payload, headers);
      account(ctx, status, 'OK', 0);
    },
    refuse(ctx, code, message, headers, statusOverride) {
      const status = sendGatewayError(ctx.res, drain, ctx.requestId, code, message, headers, statusOverride);
      account(ctx, status, code, 0);
    },
    finish(ctx, status, outcome, upstreamMs) {
      account(ctx, status, outcome, upstreamMs);
    },
    closed(ctx, upstreamMs) {
      account(ctx, 499, 'CLIENT_CLOSED', upstreamMs);
    },
    fault(ctx, err) {
      sendGatewayFault(ctx.res, drain, logger, ctx.requestId, err, ctx.trace.traceId);
    },
    upstreamTime(upstream, ms, error) {
      upstreamTimers.get(upstream)?.observe(ms / 1000);
      if (error !== null) upstreamError(upstream, error);
    },
  };
  return end;
}
