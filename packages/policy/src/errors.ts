import { ShoalError } from '@shoal/core';
import type { ShoalErrorOptions } from '@shoal/core';

/** Error codes defined by `@shoal/policy` (in addition to `SHOAL_ERR_INVALID_ARGUMENT` from `@shoal/core`). */
export const POLICY_ERROR_CODES = {
  SHOAL_ERR_POLICY_NO_METRICS:
    'No instance had a usable metric for the target (Kubernetes: "did not receive metrics for targeted pods").',
  SHOAL_ERR_POLICY_NO_INSTANCES: 'The observation held no instance (Kubernetes: "no pods returned by selector").',
  SHOAL_ERR_POLICY_MISSING_REQUEST: 'A resource-utilization target saw an instance with usage but no request.',
  SHOAL_ERR_TRACE: 'A trace file could not be parsed; the message names the line.',
} as const;

export type PolicyErrorCode = keyof typeof POLICY_ERROR_CODES;

/** A metric could not be computed; `decide()` turns it into a reason and skips the target. */
export class PolicyMetricError extends ShoalError {
  constructor(code: PolicyErrorCode, message: string, options: ShoalErrorOptions = {}) {
    super(code, message, options);
    this.name = 'PolicyMetricError';
  }
}

/** A trace could not be parsed. */
export class TraceError extends ShoalError {
  constructor(message: string, options: ShoalErrorOptions = {}) {
    super('SHOAL_ERR_TRACE', message, options);
    this.name = 'TraceError';
  }
}
