import type { Logger } from 'pino';
import type { ErrorCode } from '../../errors/catalogue.js';
import type { DrainState } from '../../runtime/drain.js';
import type { AdmittedContext, RequestContext } from '../context.js';

/**
 * How a request's answer is written and accounted. One object per gateway, built at startup:
 * every answer goes through it, so every request is counted, timed, logged and recorded
 * against its key once, whichever final handler answered it.
 */
export interface RequestEnd {
  readonly drain: DrainState;
  readonly logger: Logger;
  /** A JSON answer of the gateway's own (`OK` for the route); `headers` come first. */
  json(ctx: RequestContext, status: number, payload: string, headers?: Readonly<Record<string, string>>): void;
  /** A catalogued refusal (the catalogue's message when `message` is null). */
  refuse(ctx: RequestContext, code: ErrorCode, message: string | null, headers: Readonly<Record<string, string>> | null): void;
  /** Accounts an answer already written (e.g. streamed from the upstream). */
  finish(ctx: RequestContext, status: number, outcome: string, upstreamMs: number): void;
  /** The client went away before its answer: accounted as 499 CLIENT_CLOSED, nothing sent. */
  closed(ctx: RequestContext, upstreamMs: number): void;
  /** An unexpected failure: logged, answered 500 if nothing was sent yet (else the connection is cut). */
  fault(ctx: RequestContext, err: unknown): void;
  /** The time an upstream took to answer, on its pre-bound timer. */
  upstreamTime(upstream: string, ms: number): void;
}

/**
 * What answers a request every stage of its route admitted: forward it to the upstream, or
 * answer locally (mint a token, serve the JWKS). A handler answers through `end` exactly once
 * and never throws (a handler that needs the key checks `admitted(ctx)`): a new kind of answer is one file exporting a `FinalHandler`, named by the
 * routes that use it.
 */
export type FinalHandler = (ctx: RequestContext, end: RequestEnd) => void;

/** The admitted request's key, or null on a route without authentication. */
export function admitted(ctx: RequestContext): ctx is AdmittedContext {
  return ctx.policy !== null;
}
