// Public API of @shoal/consul.
export { resolveConsulConnectionOptions, DEFAULT_CONSUL_URL } from './connection-options.js';
export type { ConsulConnectionOptions, ResolvedConsulConnectionOptions } from './connection-options.js';
export { ServiceRegistration } from './registration.js';
export type { RegistrationState } from './registration.js';
export { resolveServiceRegistrationOptions } from './registration-options.js';
export type {
  ServiceRegistrationOptions,
  ResolvedServiceRegistrationOptions,
  CheckOptions,
  TtlCheckOptions,
  HttpCheckOptions,
  TcpCheckOptions,
  GrpcCheckOptions,
  ResolvedCheck,
} from './registration-options.js';
export type { CheckStatus, ServiceDefinition, HealthServiceEntry } from './consul-client.js';
export { deregisterOnSignals } from './signals.js';
export type { DeregisterOnSignalsOptions } from './signals.js';
export { ServiceWatcher } from './watcher.js';
export type { ServiceWatcherOptions, ResolvedServiceWatcherOptions, WatchOptions } from './watcher.js';
export type { WatchQuery } from './shared-watch.js';
export type { Watch } from './watch.js';
export { ConsulKv, resolveConsulKvOptions } from './kv.js';
export type {
  ConsulKvOptions,
  ResolvedConsulKvOptions,
  SessionOptions,
  KvCallOptions,
  KvEntry,
  KvWriteFlags,
  SessionEntry,
} from './kv.js';
export { firstNonInternalIPv4, defaultInstanceId } from './default-address.js';
export { CONSUL_ERROR_CODES } from './consul-errors.js';
export {
  Activator,
  resolveActivatorOptions,
  isActivator,
  DEFAULT_ACTIVATOR_MAX_WAIT_MS,
  MAX_REPORTED_WAITING,
} from './activator.js';
export type { ActivatorOptions, ResolvedActivatorOptions } from './activator.js';
