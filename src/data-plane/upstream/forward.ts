import { upstreamRequestHeaders } from './request-headers.js';
import type { Upstream } from './upstream.js';
import { admitted, type FinalHandler } from '../pipeline/context.js';
import { traceIds } from '../request/correlation.js';
import type { UpstreamErrorKind } from '../../observability/metrics.js';
import type { ForwardResult } from './proxy-handler.js';

/** How a forward failed at the upstream, for keygate_upstream_errors_total (null: not the upstream's failure). */
function upstreamErrorOf(result: ForwardResult): UpstreamErrorKind | null {
  if (result.ok) return result.status >= 500 ? '5xx' : null;
  if (result.code === 'UPSTREAM_TIMEOUT') return 'timeout';
  if (result.code === 'UPSTREAM_UNAVAILABLE') return result.responded ? 'reset' : 'unavailable';
  return null;
}

/**
 * The final handler of every configured route: the admitted request streams to the route's
 * upstream (its test upstream for a test key) and the answer streams back.
 */
export function forwardHandler(upstream: Upstream, upstreamTest: Upstream): FinalHandler {
  return (ctx, end) => {
    const { req, res, requestId, scan } = ctx;
    // A client that left while a stage waited (a store lookup, a Redis rate limit) gets
    // nothing forwarded: its response could never be written, and would hold the upstream.
    if (res.destroyed || req.socket.destroyed) return end.closed(ctx, 0);
    if (!admitted(ctx)) return end.fault(ctx, new Error('a forwarded request has no key'));
    const { policy } = ctx;
    const target = policy.environment === 'test' ? upstreamTest : upstream;
    const headers = upstreamRequestHeaders(req, scan, {
      requestId,
      traceparent: traceIds.childTraceparent(ctx.trace),
      tracestate: ctx.trace.tracestate,
      peerIp: ctx.peer.text,
      peerTrusted: ctx.peer.trusted,
      identity: {
        keyId: policy.keyId,
        workspaceId: policy.workspaceId,
        keyType: policy.type,
        environment: policy.environment,
        profile: ctx.profile,
      },
    });
    const upstreamStarted = performance.now();
    // A key with limits gets its RateLimit-* headers on the forwarded answer too.
    const limitHeaders = ctx.responseHeaders;
    target.forward(req, res, ctx.peer, ctx.path + ctx.search, headers, requestId, end.drain, ctx.body, scan.hasBody, limitHeaders, (result) => {
      const upstreamMs = performance.now() - upstreamStarted;
      end.upstreamTime(target.name, upstreamMs, upstreamErrorOf(result));
      if (result.ok) return end.finish(ctx, result.status, 'OK', upstreamMs);
      if (result.code === 'CLIENT_GONE') return end.closed(ctx, upstreamMs);
      if (result.code === 'INTERNAL') {
        end.logger.error({ err: result.err, requestId, traceId: ctx.trace.traceId }, 'gateway request failed');
        return end.refuse(ctx, 'INTERNAL', null, null);
      }
      if (result.responded) {
        res.destroy();
        return end.finish(ctx, 502, result.code, upstreamMs);
      }
      end.refuse(ctx, result.code, null, limitHeaders);
    });
  };
}
