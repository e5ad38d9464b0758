import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteConfig } from '../../config/schema.js';
import type { ParsedIp } from '../../domain/cidr.js';
import type { CompiledPolicy } from '../../domain/compiled-policy.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import type { Refusal } from '../../errors/http.js';
import type { CredentialMemo } from '../key-resolver.js';
import type { HeaderScan } from '../request/credentials.js';
import type { Peer } from '../request/peer.js';
import type { Trace } from '../request/correlation.js';
import type { Logger } from 'pino';
import type { DrainState } from '../../http/drain.js';
import type { Upstream } from '../upstream/upstream.js';
import type { UpstreamErrorKind } from '../../observability/metrics.js';

/** What the pipeline knows about one request as it moves through the stages. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The client's well-formed X-Request-Id, or the gateway's own. */
  readonly requestId: string;
  /** The W3C trace the request belongs to: the client's traceparent, or a new trace. */
  readonly trace: Trace;
  readonly route: CompiledRoute;
  readonly params: Record<string, string>;
  readonly path: string;
  readonly search: string;
  /** The request's headers as scanned once; `POST /auth/token` adds the body's `apiKey` to it. */
  scan: HeaderScan;
  readonly now: number;
  /** `performance.now()` when the request arrived: its total time and time limit count from here. */
  readonly started: number;
  policy: CompiledPolicy | null;
  /** The peppered hash of the secret that authenticated the request (null for a token). */
  secretHash: string | null;
  /** The profile a profile-scoped token speaks for. */
  profile: string | null;
  clientIp: ParsedIp | null;
  /** The connection's peer: its address (parsed, and as text), whether it is a trusted proxy. */
  readonly peer: Peer;
  /** The connection's last secret and its resolution (a keep-alive client repeats it). */
  readonly credential: CredentialMemo;
  /** Headers for the answer of an admitted request (a key's RateLimit-*), forwarded or local. */
  responseHeaders: Readonly<Record<string, string>> | null;
  /** The body as received, on routes that inspect it; forwarded byte for byte. */
  body: Buffer | null;
  /** `POST /auth/token`: the exchange's request, read and checked by its first stage. */
  tokenRequest: TokenRequest | null;
}

/** `POST /auth/token`: what the exchange's first stage read from the body for its final handler. */
export interface TokenRequest {
  /** The identity a profile token would speak for. */
  readonly identity: { customId: string } | { email: string } | undefined;
  readonly signature: string | undefined;
}

/** A request past authentication: its key's policy is known. */
export interface AdmittedContext extends RequestContext {
  policy: CompiledPolicy;
}

/**
 * A stage continues (null) or refuses: with a catalogued code alone (its catalogue message, no
 * headers: nothing is allocated), or with a `Refusal` (a frozen one built at startup, or one
 * built when refusing with a message of the moment). It never throws for a policy outcome.
 */
export type StageResult = ErrorCode | Refusal | null;
/** The code a stage refused with, or null. */
export function refusedCode(r: StageResult): ErrorCode | null {
  return r === null || typeof r === 'string' ? r : r.code;
}

/** The message a stage refused with (null: the catalogue's, or no refusal). */
export function refusedMessage(r: StageResult): string | null {
  return r === null || typeof r === 'string' ? null : r.message;
}

/** A stage before the key is known (reading the request, authenticating it). */
export type Stage = (ctx: RequestContext) => StageResult | Promise<StageResult>;
/** A stage after authentication: it checks the request against the key's policy. */
export type KeyStage = (ctx: AdmittedContext) => StageResult | Promise<StageResult>;

/**
 * A route compiled once at startup: its stages in order, then its final handler (forward to
 * the upstream, or one of the gateway's own answers).
 */
export interface CompiledRoute {
  readonly name: string;
  /** In order: the stages up to and including authentication. */
  readonly stages: readonly Stage[];
  /** Then, in order, the key's checks (none on a route without authentication). */
  readonly checks: readonly KeyStage[];
  readonly final: FinalHandler;
  /** The upstreams its final handler may forward to (their timers are bound at startup). */
  readonly upstreams: readonly Upstream[];
}

/** A route of the config: matched by its method and path in the route table. */
export interface ConfiguredRoute extends CompiledRoute {
  readonly config: RouteConfig;
}

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
  /** `status`: when not the catalogue's (a `Refusal` that carries its own). */
  refuse(ctx: RequestContext, code: ErrorCode, message: string | null, headers: Readonly<Record<string, string>> | null, status?: number): void;
  /** Accounts an answer already written (e.g. streamed from the upstream). */
  finish(ctx: RequestContext, status: number, outcome: string, upstreamMs: number): void;
  /** The client went away before its answer: accounted as 499 CLIENT_CLOSED, nothing sent. */
  closed(ctx: RequestContext, upstreamMs: number): void;
  /** An unexpected failure: logged, answered 500 if nothing was sent yet (else the connection is cut); not counted. */
  fault(ctx: RequestContext, err: unknown): void;
  /** The time an upstream took to answer, on its pre-bound timer, and how it failed (null: it answered, not 5xx). */
  upstreamTime(upstream: string, ms: number, error: UpstreamErrorKind | null): void;
}

/**
 * What answers a request every stage of its route admitted: forward it to the upstream, or
 * answer locally (mint a token, serve the JWKS). A handler answers through `end` exactly once
 * and never throws; one that needs the key checks `admitted(ctx)`. A new kind of answer (e.g.
 * "decide only": the verdict without forwarding) is one file exporting a `FinalHandler`, set
 * as the `final` of the routes that use it.
 */
export type FinalHandler = (ctx: RequestContext, end: RequestEnd) => void;

/** Whether the request's key is known (false only on a route without authentication). */
export function admitted(ctx: RequestContext): ctx is AdmittedContext {
  return ctx.policy !== null;
}
