import type { KeyStatus } from '../../domain/api-key.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import type { KeyStage } from '../pipeline/context.js';

export const STATUS_REFUSAL: Record<KeyStatus, ErrorCode | null> = {
  active: null,
  disabled: 'KEY_DISABLED',
  suspended: 'KEY_SUSPENDED',
  expired: 'KEY_EXPIRED',
};

/** Disabled and suspended keys are 403, expired ones 401 (CONTRACT §4). */
export function keyStatusStage(): KeyStage {
  return (ctx) => STATUS_REFUSAL[ctx.policy.status(ctx.now)];
}
