import type { IncomingMessage } from 'node:http';
import type { Config } from '../../config/schema.js';
import type { Actor } from '../../domain/entities.js';
import type { PermissionCatalogue } from '../../domain/permissions.js';
import type { Metrics } from '../../observability/metrics.js';
import type { KeyStore } from '../../store/types.js';
import type { ActivityService } from '../activity-service.js';
import type { DirectoryService } from '../directory-service.js';
import type { KeyService } from '../key-service.js';
import type { SigningKeyService } from '../signing-key-service.js';
import type { CounterStore } from '../../store/rate-limit/types.js';
import type { Router } from '../router.js';

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
  /** Per-key and per-owner request activity. */
  activity: ActivityService;
}

export interface AdminContext {
  req: IncomingMessage;
  params: Record<string, string>;
  query: Record<string, string>;
  actor: Actor;
  requestId: string;
  /** The parsed JSON body, or undefined when empty. */
  body(): Promise<unknown>;
}

export interface AdminResult { status: number; body?: unknown; headers?: Record<string, string> }
export type AdminHandler = (ctx: AdminContext) => Promise<AdminResult>;
export type AdminRouter = Router<AdminHandler>;
