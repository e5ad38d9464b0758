import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteConfig } from '../config/schema.js';
import type { ParsedIp } from '../domain/cidr.js';
import type { CompiledPolicy } from '../domain/compiled-policy.js';
import type { ErrorCode } from '../errors.js';
import type { CredentialMemo } from './key-resolver.js';
import type { HeaderScan } from './credentials.js';
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
  readonly scan: HeaderScan;
  readonly now: number;
  policy: CompiledPolicy | null;
  /** The profile a profile-scoped token speaks for. */
  profile: string | null;
  clientIp: ParsedIp | null;
  peerIp: ParsedIp | null;
  peerTrusted: boolean;
  /** The connection's last secret and its resolution (a keep-alive client repeats it). */
  readonly credential: CredentialMemo;
  /** A custom message for the refusal, e.g. naming the refused event. */
  message: string | null;
  /** Extra headers for the refusal (Retry-After and RateLimit-* on a 429). */
  responseHeaders: Record<string, string> | null;
  /** The body as received, on routes that inspect it; forwarded byte for byte. */
  body: Buffer | null;
}

/** A stage continues (null) or refuses with a catalogued code; it never throws for a policy outcome. */
export type StageResult = ErrorCode | null;
export type Stage = (ctx: RequestContext) => StageResult | Promise<StageResult>;

export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly name: string;
  readonly stages: readonly Stage[];
  readonly upstream: Upstream;
  readonly upstreamTest: Upstream;
}
