import type { IncomingMessage } from 'node:http';
import type { RequestContext, StageResult } from '../context.js';
import type { RequestEnd } from './final-handler.js';

/** The client went away mid-request (its body was cut off): a closed request, not a gateway fault. */
export function clientGone(req: IncomingMessage, err: unknown): boolean {
  return req.destroyed || (err as NodeJS.ErrnoException | null)?.code === 'ECONNRESET';
}

/** A stage's refusal, answered with the message and headers it left on the context. */
function refuse(ctx: RequestContext, code: NonNullable<StageResult>, end: RequestEnd): void {
  end.refuse(ctx, code, ctx.message, ctx.responseHeaders);
}

/**
 * Runs the route's stages from `from`, then its final handler. A cache hit keeps the whole
 * pipeline synchronous (no promise per request); only a stage that must wait (a store lookup,
 * a body read) goes async, and the run resumes after it.
 */
export function runPipeline(ctx: RequestContext, from: number, end: RequestEnd): void {
  const stages = ctx.route.stages;
  for (let i = from; i < stages.length; i++) {
    const result = stages[i]!(ctx);
    if (result instanceof Promise) {
      result.then((r) => {
        if (r !== null) refuse(ctx, r, end);
        else runPipeline(ctx, i + 1, end);
      }).catch((err: unknown) => {
        if (clientGone(ctx.req, err)) end.closed(ctx, 0);
        else end.fault(ctx, err);
      });
      return;
    }
    if (result !== null) return refuse(ctx, result, end);
  }
  ctx.route.final(ctx, end);
}
