import type { IncomingMessage } from 'node:http';
import type { z } from 'zod';
import type { Config } from '../../config/schema.js';
import type { AdminGrant, AdminScope } from '../../domain/admin-scopes.js';
import type { Actor } from '../../domain/entities.js';
import type { PermissionCatalogue } from '../../domain/permissions.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import type { Metrics } from '../../observability/metrics.js';
import type { KeyStore } from '../../store/types.js';
import type { ActivityService } from '../activity-service.js';
import type { AdminTokenService } from '../admin-token-service.js';
import type { DirectoryService } from '../directory-service.js';
import type { KeyService } from '../key-service.js';
import type { SigningKeyService } from '../signing-key-service.js';
import type { CounterStore } from '../../store/rate-limit/types.js';
import { Router } from '../router.js';

export interface AdminDeps {
  config: Config;
  store: KeyStore;
  keys: KeyService;
  directory: DirectoryService;
  catalogue: PermissionCatalogue;
  metrics: Metrics;
  signingKeys: SigningKeyService;
  /** The node's shared rate-limit counters, read (never consumed) by the usage endpoint. */
  limiter: CounterStore;
  adminTokens: AdminTokenService;
  /** Per-key and per-owner request activity. */
  activity: ActivityService;
}

/**
 * Checks `If-Match` against the current state of the resource (the store's precondition
 * token of its record): throws 412 PRECONDITION_FAILED on a mismatch; no header passes.
 */
export type IfMatch = (id: string, token: string) => void;

export interface AdminContext<Q = unknown, B = unknown> {
  req: IncomingMessage;
  params: Record<string, string>;
  /** The query, parsed by the route's `query` schema (the raw strings when it has none). */
  query: Q;
  /** The body, parsed by the route's `body` schema (an empty body reads as `{}`). */
  body: B;
  actor: Actor;
  /** The scopes and workspaces the token reaches. */
  grant: AdminGrant;
  requestId: string;
  ifMatch: IfMatch;
}

export interface AdminResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** A single resource's id and precondition token: the answer carries its ETag. */
  etag?: { id: string; token: string };
  /** A 201's `Location`. */
  location?: string;
}

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;

/**
 * One admin operation, declared once: the router serves it, the OpenAPI document describes
 * it, and its scope guards it. `query` and `body` are the schemas the request is validated
 * with; `responses` the schema of each success status (null: no body).
 */
export interface AdminRoute<Q extends z.ZodType | undefined = z.ZodType | undefined, B extends z.ZodType | undefined = z.ZodType | undefined> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** `/v1/keys/:id`; `:name` is one path segment. */
  path: string;
  /** The scope a token needs; null: any valid admin token. */
  scope: AdminScope | null;
  /** Groups operations in the document (`keys`, `workspaces`, …). */
  tag: string;
  summary: string;
  description?: string;
  query?: Q;
  body?: B;
  responses: Partial<Record<200 | 201 | 204, z.ZodType | null>>;
  /** Refusals beyond the ones every operation may give (400, 401, 403 for the scope, 404 for an id…). */
  errors?: ErrorCode[];
  /**
   * Problems with the body that its schema cannot see (catalogue names, references to other
   * records), run on the raw body when the schema refuses it too, so one 400 names every bad field.
   */
  alsoCheck?: (raw: unknown, grant: AdminGrant) => Promise<string[]>;
  handler: (ctx: AdminContext<Infer<Q>, Infer<B>>) => Promise<AdminResult>;
}

/** The admin routes: what `admin-server.ts` serves and `openapi.ts` describes. */
export class AdminRoutes {
  readonly router = new Router<AdminRoute>();
  readonly all: AdminRoute[] = [];

  add<Q extends z.ZodType | undefined = undefined, B extends z.ZodType | undefined = undefined>(route: AdminRoute<Q, B>): this {
    const r = route as unknown as AdminRoute;
    this.router.add(r.method, r.path, r);
    this.all.push(r);
    return this;
  }
}
