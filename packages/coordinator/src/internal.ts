// Internals of @shoal/coordinator for its own tests and the repository's integration tests
// (`@shoal/coordinator/internal`). Not a public API: names here may change in any release.
export { formatPath } from './config.js';
export { servicePolicy } from './config.js';
export { TokenAuthenticator, resolveServiceTokens } from './auth.js';
export type { AuthResult } from './auth.js';
export { findFreePort } from './actuators/local.js';
export { LeaderElection } from './leader-election.js';
export type { LeaderElectionOptions, LeaderInfo, LeadershipChange } from './leader-election.js';
export { externalScalerService } from './keda-scaler.js';
export { LeaderView, LeaderUnavailableError } from './leader-view.js';
export type { LeaderViewOptions, LeaderAnswer } from './leader-view.js';
export { createCoordinatorMetrics } from './metrics.js';
export type { CoordinatorMetrics } from './metrics.js';
export { ServiceWindow } from './service-window.js';
export type { ServiceWindowOptions } from './service-window.js';
export { RateLimiter } from './rate-limiter.js';
export { ServiceController } from './control-loop.js';
export type { ServiceControllerOptions } from './control-loop.js';
export { MemoryStateStore, ConsulStateStore } from './state-store.js';
export type { StateStore, PersistedServiceState } from './state-store.js';
export { RefusalLog } from './ingest/refusal-log.js';
export type { RefusedSender, RefusalLogOptions } from './ingest/refusal-log.js';
export { refuse } from './ingest/refusal.js';
export { ExternalMetricsSource } from './external-metrics.js';
export type { ExternalMetric, ExternalMetricsReader, ExternalMetricsReading } from './external-metrics.js';
export { ScaleToZeroGate } from './activation.js';
export { WakeDemand, parseWakeReport, MAX_CLIENTS, MAX_WAITING_PER_CLIENT } from './wake-demand.js';
export type { WakeReport } from './wake-demand.js';
