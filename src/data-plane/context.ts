import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import type { ParsedIp } from '../domain/cidr.js';
import type { CompiledPolicy } from '../domain/compiled-policy.js';
import type { ErrorCode } from '../errors/catalogue.js';
import type { CredentialMemo } from './key-resolver.js';
import type { HeaderScan } from './credentials.js';
import type { FinalHandler } from './pipeline/final-handler.js';
import type { TokenRequest } from './tokens/token-request.js';
import type { Upstream } from './forwarder.js';

/** What the pipeline knows about one request as it moves through the stages. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
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
  peerIp: ParsedIp | null;
  /** The connection's peer address as text (the `X-Forwarded-For` the gateway appends). */
  peerText: string;
  peerTrusted: boolean;
  /** The connection's last secret and its resolution (a keep-alive client repeats it). */
  readonly credential: CredentialMemo;
  /** A custom message for the refusal, e.g. naming the refused event. */
  message: string | null;
  /** Extra headers for the refusal (Retry-After and RateLimit-* on a 429). */
  responseHeaders: Readonly<Record<string, string>> | null;
  /** The body as received, on routes that inspect it; forwarded byte for byte. */
  body: Buffer | null;
  /** `POST /auth/token`: the exchange's request, read and checked by its first stage. */
  tokenRequest: TokenRequest | null;
}

/** A request past authentication: its key's policy is known. */
export interface AdmittedContext extends RequestContext {
  policy: CompiledPolicy;
}

/** A stage continues (null) or refuses with a catalogued code; it never throws for a policy outcome. */
export type StageResult = ErrorCode | null;
export type Stage = (ctx: RequestContext) => StageResult | Promise<StageResult>;

/**
 * A route compiled once at startup: its stages in order, then its final handler (forward to
 * the upstream, or one of the gateway's own answers).
 */
export interface CompiledRoute {
  readonly name: string;
  readonly stages: readonly Stage[];
  readonly final: FinalHandler;
  /** The upstreams its final handler may forward to (their timers are bound at startup). */
  readonly upstreams: readonly Upstream[];
}

/** A route of the config: matched by its method and path in the route table. */
export interface ConfiguredRoute extends CompiledRoute {
  readonly config: RouteConfig;
}
