/**
 * Errors with a stable `code`, an optional `cause` and a `retryable` flag.
 *
 * Errors are branded with `Symbol.for('shoal.error')` so `isShoalError()` works even when two copies of
 * `@shoal/core` are installed (the `instanceof` check does not).
 */
const BRAND: unique symbol = Symbol.for('shoal.error') as never;

export interface ShoalErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

export class ShoalError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  declare readonly cause?: unknown;
  readonly [BRAND] = true;

  constructor(code: string, message: string, options: ShoalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShoalError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** True for any Shoal error, from this or another copy of `@shoal/core`. */
export function isShoalError(value: unknown): value is ShoalError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** True when `value` is a Shoal error carrying `code`. */
export function hasErrorCode(value: unknown, code: string): value is ShoalError {
  return isShoalError(value) && value.code === code;
}

/** Every stable error code defined in `@shoal/core`, with what it means. Package READMEs document these. */
export const ERROR_CODES = {
  SHOAL_ERR_INVALID_ARGUMENT: 'An option or argument is missing or invalid; the message names it and the value.',
  SHOAL_ERR_CONSUL_UNAVAILABLE: 'Consul could not be reached or answered with a server error.',
  SHOAL_ERR_CONSUL_PERMISSION_DENIED: 'Consul refused the ACL token (HTTP 403).',
  SHOAL_ERR_CONSUL_REQUEST: 'Consul rejected a request (HTTP 4xx other than 403).',
  SHOAL_ERR_NO_ENDPOINTS: 'A balancer had no endpoint it could pick.',
  SHOAL_ERR_RETRY_BUDGET_EXHAUSTED: 'A retry was refused because the retry budget is spent.',
  SHOAL_ERR_TIMEOUT: 'An operation did not finish within its time limit.',
  SHOAL_ERR_CLOSED: 'The component was closed.',
  SHOAL_ERR_ABORTED: 'The operation was aborted by its caller.',
  SHOAL_ERR_PROTOCOL: 'A peer sent a message that breaks the Shoal protocol.',
  SHOAL_ERR_CONFIG: 'A configuration file or object is invalid; the message gives the path and the value.',
  SHOAL_ERR_ACTUATOR: 'An actuator could not read or change the replica count.',
  SHOAL_ERR_UNAUTHENTICATED: 'A request carried no valid credentials.',
  SHOAL_ERR_PERMISSION_DENIED: 'A request was authenticated but is not allowed to do this.',
  SHOAL_ERR_EXTERNAL_METRIC:
    'An external metric (a Prometheus query) could not be read: unreachable, refused, or not one number.',
  SHOAL_ERR_COLD_START_TIMEOUT:
    'A call waited for a service at zero replicas to wake, and no instance passed its checks within maxWaitMs.',
} as const;

export type ShoalErrorCode = keyof typeof ERROR_CODES;

function define(code: ShoalErrorCode, name: string, retryable: boolean) {
  const cls = class extends ShoalError {
    constructor(message: string, options: ShoalErrorOptions = {}) {
      super(code, message, { retryable, ...options });
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  Object.defineProperty(cls, 'code', { value: code });
  return cls;
}

export const InvalidArgumentError = define('SHOAL_ERR_INVALID_ARGUMENT', 'InvalidArgumentError', false);
export type InvalidArgumentError = InstanceType<typeof InvalidArgumentError>;
export const ConsulUnavailableError = define('SHOAL_ERR_CONSUL_UNAVAILABLE', 'ConsulUnavailableError', true);
export type ConsulUnavailableError = InstanceType<typeof ConsulUnavailableError>;
export const ConsulPermissionError = define('SHOAL_ERR_CONSUL_PERMISSION_DENIED', 'ConsulPermissionError', false);
export type ConsulPermissionError = InstanceType<typeof ConsulPermissionError>;
export const ConsulRequestError = define('SHOAL_ERR_CONSUL_REQUEST', 'ConsulRequestError', false);
export type ConsulRequestError = InstanceType<typeof ConsulRequestError>;
export const NoEndpointsError = define('SHOAL_ERR_NO_ENDPOINTS', 'NoEndpointsError', true);
export type NoEndpointsError = InstanceType<typeof NoEndpointsError>;
export const RetryBudgetExhaustedError = define('SHOAL_ERR_RETRY_BUDGET_EXHAUSTED', 'RetryBudgetExhaustedError', false);
export type RetryBudgetExhaustedError = InstanceType<typeof RetryBudgetExhaustedError>;
export const TimeoutError = define('SHOAL_ERR_TIMEOUT', 'TimeoutError', true);
export type TimeoutError = InstanceType<typeof TimeoutError>;
export const ClosedError = define('SHOAL_ERR_CLOSED', 'ClosedError', false);
export type ClosedError = InstanceType<typeof ClosedError>;
export const AbortedError = define('SHOAL_ERR_ABORTED', 'AbortedError', false);
export type AbortedError = InstanceType<typeof AbortedError>;
export const ProtocolError = define('SHOAL_ERR_PROTOCOL', 'ProtocolError', false);
export type ProtocolError = InstanceType<typeof ProtocolError>;
export const ConfigError = define('SHOAL_ERR_CONFIG', 'ConfigError', false);
export type ConfigError = InstanceType<typeof ConfigError>;
export const ActuatorError = define('SHOAL_ERR_ACTUATOR', 'ActuatorError', true);
export type ActuatorError = InstanceType<typeof ActuatorError>;
export const UnauthenticatedError = define('SHOAL_ERR_UNAUTHENTICATED', 'UnauthenticatedError', false);
export type UnauthenticatedError = InstanceType<typeof UnauthenticatedError>;
export const PermissionDeniedError = define('SHOAL_ERR_PERMISSION_DENIED', 'PermissionDeniedError', false);
export type PermissionDeniedError = InstanceType<typeof PermissionDeniedError>;
export const ExternalMetricError = define('SHOAL_ERR_EXTERNAL_METRIC', 'ExternalMetricError', true);
export type ExternalMetricError = InstanceType<typeof ExternalMetricError>;
/** A call waited for a service at zero to wake and no instance passed within the activator's maxWaitMs. */
export const ColdStartTimeoutError = define('SHOAL_ERR_COLD_START_TIMEOUT', 'ColdStartTimeoutError', true);
export type ColdStartTimeoutError = InstanceType<typeof ColdStartTimeoutError>;
