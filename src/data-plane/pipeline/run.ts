import type { IncomingMessage } from 'node:http';
import { admitted, type AdmittedContext, type RequestContext, type RequestEnd, type StageResult } from './context.js';

/** The client went away mid-request (its body was cut off): a closed request, not a gateway fault. */
export function clientGone(req: IncomingMessage, err: unknown): boolean {
  return req.destroyed || (err as NodeJS.ErrnoException | null)?.code === 'ECONNRESET';
}

/** A stage's refusal, answered: a bare code with its catalogue message, or the refusal as given. */
function refuse(ctx: RequestContext, r: NonNullable<StageResult>, end: RequestEnd): void {
  if (typeof r === 'string') end.refuse(ctx, r, null, null);
  else end.refuse(ctx, r.code, r.message, r.headers, r.status);
}

function failed(ctx: RequestContext, err: unknown, end: RequestEnd): void {
  if (clientGone(ctx.req, err)) end.closed(ctx, 0);
  else end.fault(ctx, err);
}

/**
 * Runs the route's stages from `from`, then its key checks, then its final handler. A cache
 * hit keeps the whole pipeline synchronous (no promise per request); only a stage that must
 * wait (a store lookup, a body read) goes async, and the run resumes after it.
 */
export function runPipeline(ctx: RequestContext, from: number, end: RequestEnd): void {
  const stages = ctx.route.stages;
  for (let i = from; i < stages.length; i++) {
    const result = stages[i]!(ctx);
    if (result instanceof Promise) {
      result.then((r) => {
        if (r !== null) refuse(ctx, r, end);
        else runPipeline(ctx, i + 1, end);
      }).catch((err: unknown) => failed(ctx, err, end));
      return;
    }
    if (result !== null) return refuse(ctx, result, end);
  }
  if (ctx.route.checks.length === 0) return ctx.route.final(ctx, end);
  if (!admitted(ctx)) return end.fault(ctx, new Error(`route ${ctx.route.name} checks a key it did not authenticate`));
  runChecks(ctx, 0, end);
}

/** The key's checks from `from`, then the final handler. */
function runChecks(ctx: AdmittedContext, from: number, end: RequestEnd): void {
  const checks = ctx.route.checks;
  for (let i = from; i < checks.length; i++) {
    const result = checks[i]!(ctx);
    if (result instanceof Promise) {
      result.then((r) => {
        if (r !== null) refuse(ctx, r, end);
        else runChecks(ctx, i + 1, end);
      }).catch((err: unknown) => failed(ctx, err, end));
      return;
    }
    if (result !== null) return refuse(ctx, result, end);
  }
  ctx.route.final(ctx, end);
}
