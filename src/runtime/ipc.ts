import type { LimitRequest, LimitResult } from '../store/rate-limit/ipc.js';
import type { LeakReport, LeakVerdict } from '../domain/leak.js';
import type { SigningKeyRecord } from '../domain/signing-key.js';
import type { LookupRequest, LookupResult } from '../store/key-source-ipc.js';
import type { ActivityRecord, Change, UsageDelta } from '../store/types.js';

// Messages between the primary (admin port, the embedded store's single writer) and the
// gateway workers. IPC is ordered and lossless while the channel lives; a worker whose
// channel closes exits, and the primary starts a fresh one that has missed nothing.

export type ToWorker =
  | LookupResult
  | { t: 'changes'; changes: Change[] }
  /** The primary has applied `version`, and every change committed before `confirmedAt`. */
  | { t: 'sync'; version: number; confirmedAt: number }
  | { t: 'reset' }
  | MetricsRequest
  | { t: 'signing-keys'; keys: SigningKeyRecord[] }
  | LimitResult
  | LeaksResult
  | { t: 'shutdown' };

export type ToPrimary =
  | { t: 'ready'; url: string }
  | { t: 'signing-keys-req' }
  | LimitRequest
  | LookupRequest
  | { t: 'usage'; deltas: UsageDelta[] }
  | { t: 'activity'; records: ActivityRecord[] }
  | { t: 'report'; appliedVersion: number }
  | MetricsResult
  | LeaksRequest;

/** A worker's `POST /auth/secret-scanning`: the primary, the store's writer, applies it. */
export interface LeaksRequest { t: 'leaks'; id: number; reports: LeakReport[] }
export interface LeaksResult { t: 'leaks-result'; id: number; verdicts: LeakVerdict[] | null; error?: string }

/** A scrape of the admin port asks each worker for its metrics. */
export interface MetricsRequest { t: 'metrics-req'; id: number }
export interface MetricsResult { t: 'metrics-res'; id: number; metrics: unknown }

export function isMessage<T extends { t: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
