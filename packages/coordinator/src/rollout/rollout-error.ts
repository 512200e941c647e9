import { ShoalError } from '@shoal/core';

/** The stable codes of rollout refusals (`err.code`; HTTP answers carry it as `code`). */
export const ROLLOUT_ERROR_CODES = {
  SHOAL_ERR_ROLLOUT_NOT_IN_PROGRESS: 'pause or resume asked while the service has no rollout in progress',
  SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO:
    'undo asked with nothing to undo: no completed rollout, a rollback already running, or no known previous version',
  SHOAL_ERR_ROLLOUT_UNSUPPORTED: 'the service does not roll out: only a local actuator does',
  SHOAL_ERR_ROLLOUT_INVALID:
    'a config change cannot be rolled out (the new command, cwd or rollout section is unusable)',
  SHOAL_ERR_ROLLOUT_RECORD: 'the rollout record persisted in Consul KV is unreadable',
} as const;

export type RolloutErrorCode = keyof typeof ROLLOUT_ERROR_CODES;

/** A rollout request refused (no rollout to pause, nothing to undo, a change that cannot roll out), with a code. */
export class RolloutError extends ShoalError {
  declare readonly code: RolloutErrorCode;
  constructor(code: RolloutErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { retryable: false, ...options });
    this.name = 'RolloutError';
  }
}
