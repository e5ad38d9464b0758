import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../../errors/catalogue.js';
import { errorJson, fixedRefusal } from '../../errors/http.js';
import type { ConfiguredRoute, RequestEnd } from '../pipeline/context.js';
import { RouteTable } from '../pipeline/route-table.js';
import { readsBody } from '../stages/body-policy.js';
import { decideHandler } from './decide-handler.js';
import { FORWARD_PATH, envoyOriginal, forwardedOriginal, isDecisionPath } from './original-request.js';

/** A decision request resolved to the original request's route, or refused before any route. */
export type DecisionMatch =
  | { refused: false; route: ConfiguredRoute; params: Record<string, string>; path: string; search: string }
  | { refused: true; code: ErrorCode; message: string | null };

export interface DecisionRoutes {
  /** Whether `path` is a decision endpoint. */
  owns(path: string): boolean;
  /** The route of the original request the proxy names, with its path and query. */
  match(req: IncomingMessage, path: string, search: string): DecisionMatch;
  /** The gateway's `RequestEnd` for decisions: every refusal also carries its body in `X-Keygate-Error`. */
  end(end: RequestEnd): RequestEnd;
}

const UNDECIDABLE = fixedRefusal('BODY_POLICY_NOT_DECIDABLE');

/**
 * `/auth/forward` and `/auth/envoy/<path>`: each configured route again, with the same stages
 * and key checks (compiled once, so a decision runs exactly what a proxied request runs) but
 * answered by the decision instead of forwarding. A route with a body policy cannot be decided
 * without the body a proxy does not send: its decision refuses before any credential is read,
 * unless the route says `decideWithoutBody: true` (then it is decided without that policy).
 */
export function compileDecisionRoutes(routes: readonly ConfiguredRoute[]): DecisionRoutes {
  const decide = decideHandler();
  const variants = routes.map((r): ConfiguredRoute => {
    const inspects = r.config.events !== undefined || r.config.profileAttributes;
    if (!inspects) return { config: r.config, name: r.name, stages: r.stages, checks: r.checks, final: decide, upstreams: [] };
    // `decideWithoutBody: true`: the operator accepts that decisions leave the body policy out.
    if (r.config.decideWithoutBody) return { config: r.config, name: r.name, stages: r.stages, checks: r.checks.filter((c) => !readsBody(c)), final: decide, upstreams: [] };
    return { config: r.config, name: r.name, stages: [() => UNDECIDABLE], checks: [], final: decide, upstreams: [] };
  });
  const table = new RouteTable(variants);
  return {
    owns: isDecisionPath,
    match(req, path, search) {
      const original = path === FORWARD_PATH ? forwardedOriginal(req.rawHeaders) : envoyOriginal(req.method ?? '', path, search);
      if (!('method' in original)) return { refused: true, code: original.code, message: original.message };
      const found = table.match(original.method, original.path);
      if (found === null) return { refused: true, code: 'ROUTE_NOT_FOUND', message: null };
      return { refused: false, route: found.route, params: found.params, path: original.path, search: original.search };
    },
    end: decisionEnd,
  };
}

/**
 * nginx `auth_request` passes on the status of a 401 or 403 but never the body, and turns any
 * other refusal into its own 500: the error body rides along in `X-Keygate-Error` (non-ASCII
 * escaped, so it is a valid header and still the same JSON), and the shipped nginx snippet
 * answers the client with it.
 */
export function errorHeader(code: ErrorCode, message: string | null, requestId: string): string {
  return errorJson(code, message, requestId).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function decisionEnd(end: RequestEnd): RequestEnd {
  return {
    ...end,
    refuse(ctx, code, message, headers, status) {
      end.refuse(ctx, code, message, { ...headers, 'x-keygate-error': errorHeader(code, message, ctx.requestId) }, status);
    },
  };
}
