import type { KeyStatus } from '../../domain/api-key.js';
import type { ErrorCode } from '../../errors/catalogue.js';
import { fixedRefusal } from '../../errors/http.js';
import type { KeyStage } from '../pipeline/context.js';

export const STATUS_REFUSAL: Record<KeyStatus, ErrorCode | null> = {
  active: null,
  disabled: 'KEY_DISABLED',
  suspended: 'KEY_SUSPENDED',
  expired: 'KEY_EXPIRED',
};

// Still a valid credential, refused for what its owner did not do: 403, like a disabled key.
const INACTIVE = fixedRefusal('KEY_EXPIRED', 'The API key expired after going unused for longer than keys.inactivityDays; an admin can revive it.', null, 403);

/** Disabled and suspended keys are 403; expired ones 401 (CONTRACT §4), or 403 when they expired for going unused. */
export function keyStatusStage(): KeyStage {
  return (ctx) => {
    const refused = STATUS_REFUSAL[ctx.policy.status(ctx.now)];
    return refused === 'KEY_EXPIRED' && ctx.policy.inactive ? INACTIVE : refused;
  };
}
