import { admitted, type FinalHandler } from '../pipeline/context.js';
import { profileHeaderValue } from '../upstream/request-headers.js';

/**
 * The final handler of a decision: the request passed every stage of its route, so the proxy
 * may forward it. A 200 without a body, carrying the identity the proxy copies upstream (the
 * `X-Keygate-*` headers keygate's own forwarding adds; `X-Keygate-Profile` empty unless a
 * profile token spoke), the key's `RateLimit-*`, and
 * `Cache-Control: no-store`: a cached allow would outlive a revocation.
 */
export function decideHandler(): FinalHandler {
  return (ctx, end) => {
    const { res } = ctx;
    if (res.destroyed) return end.closed(ctx, 0);
    if (!admitted(ctx)) return end.fault(ctx, new Error('a decision has no key'));
    const { policy } = ctx;
    const headers: Record<string, string> = {
      ...ctx.responseHeaders,
      'x-keygate-key-id': policy.keyId,
      'x-keygate-workspace-id': policy.workspaceId,
      'x-keygate-key-type': policy.type,
      'x-keygate-environment': policy.environment,
    };
    // Always present, empty but for a profile token: a proxy that copies an absent header
    // would leave the client's own value, or (Caddy 2.6) its placeholder's text, in its place.
    headers['x-keygate-profile'] = ctx.profile === null ? '' : profileHeaderValue(ctx.profile);
    headers['cache-control'] = 'no-store';
    headers['content-length'] = '0';
    headers['x-request-id'] = ctx.requestId;
    if (end.drain.draining) res.shouldKeepAlive = false;
    res.writeHead(200, headers);
    res.end();
    end.finish(ctx, 200, 'OK', 0);
  };
}
