// Public API of @shoal/grpc. Importing registers nothing: call register() (or createClient(), which does).
export { register, isRegistered, openConsulWatchers, CONSUL_SCHEME } from './register.js';
export type { RegisterOptions } from './register.js';
export { createClient, DEFAULT_KEEPALIVE } from './create-client.js';
export type { CreateClientOptions, KeepaliveConfig } from './create-client.js';
export {
  perTryTimeoutInterceptor,
  resolvePerTryTimeoutConfig,
  DEFAULT_PER_TRY_TIMEOUT_MS,
  DEFAULT_PER_TRY_MAX_ATTEMPTS,
} from './per-try-timeout.js';
export type { PerTryTimeoutConfig, ResolvedPerTryTimeoutConfig } from './per-try-timeout.js';
export type { ConsulTarget } from './consul-target.js';
export { POLICY_NAMES, POLICY_STRATEGIES, DEFAULT_FAILURE_CODES } from './policy-config.js';
export type {
  ShoalPolicyName,
  ShoalPolicyConfigJson,
  ResolvedPolicyConfig,
  SlowStartConfig,
  OutlierDetectionConfig,
  PolicyBalancerOptions,
} from './policy-config.js';
export {
  buildServiceConfig,
  resolveRetryConfig,
  resolveHedgingConfig,
  validateServiceConfigJson,
} from './service-config.js';
export type { RetryConfig, HedgingConfig } from './service-config.js';
export { encodeOrcaLoadReport, decodeOrcaLoadReport } from './orca.js';
export type { OrcaLoadReport } from './orca.js';
export { createLoadReporter, resolveLoadReporterOptions } from './load-reporter.js';
export type { LoadReporter, LoadReporterOptions, LoadStats, CallRecord } from './load-reporter.js';
export { addHealthService, HealthService, HealthClient, HEALTH_SERVICE_DEFINITION } from './health-service.js';
export type { HealthStatusSource, HealthServiceOptions, RegistrationLike, ServingStatus } from './health-service.js';
export { ORCA_TRAILER, MIN_GRPC_JS_VERSION } from './grpc-js-compat.js';
export { GRPC_ERROR_CODES } from './errors.js';
