export {
  ShoalError,
  isShoalError,
  hasErrorCode,
  ERROR_CODES,
  InvalidArgumentError,
  ConsulUnavailableError,
  ConsulPermissionError,
  ConsulRequestError,
  NoEndpointsError,
  RetryBudgetExhaustedError,
  TimeoutError,
  ClosedError,
  AbortedError,
  ProtocolError,
  ConfigError,
  ActuatorError,
  UnauthenticatedError,
  PermissionDeniedError,
  ExternalMetricError,
  ColdStartTimeoutError,
} from './errors.js';
export type { ShoalErrorOptions, ShoalErrorCode } from './errors.js';
export { realClock, ManualClock, sleep } from './clock.js';
export type { Clock, TimerHandle } from './clock.js';
export { Backoff, backoffDelay, fullJitterDelay, resolveBackoffOptions, retry } from './backoff.js';
export type { BackoffOptions, ResolvedBackoffOptions, RetryOptions } from './backoff.js';
export { createInstance, instanceAddress, instancesEqual, instanceSetsEqual, MAX_INSTANCE_WEIGHT } from './instance.js';
export type { Instance, InstanceInput } from './instance.js';
export { silentLogger, componentLogger, errorFields } from './logger.js';
export type { Logger, LogFn } from './logger.js';
export { memoizeMetrics } from './metrics.js';
export type { MetricsRegistry } from './metrics.js';
export { EventEmitter } from './events.js';
export type { Event, Disposable } from './events.js';
export { withTimeout } from './timeout.js';
export { SeededRandom, createRandom } from './random.js';
export type { RandomSource } from './random.js';
export {
  describeValue,
  assertObject,
  assertString,
  assertFiniteNumber,
  assertNonNegativeNumber,
  assertPositiveNumber,
  assertInteger,
  assertPositiveInteger,
  assertPort,
  assertBoolean,
  assertOneOf,
  assertStringArray,
  assertStringRecord,
  assertKnownKeys,
} from './validate.js';
export {
  GRPC_SERVER_FAULT_CODES,
  GRPC_CALL_COUNTER,
  isGrpcServerFault,
  isUncountedGrpcMethod,
  markGrpcCallCounted,
  grpcCallCounterOf,
} from './grpc-calls.js';
export type { GrpcCallCounter } from './grpc-calls.js';
export { defaultInstanceAddress, defaultInstanceId, firstNonInternalIPv4 } from './instance-identity.js';
