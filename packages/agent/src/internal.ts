// Internals of @shoal/agent for Shoal's own tests and benchmarks: no stability promise, not for applications.
export { Reporter, CoordinatorBusyError, ReportRejectedError } from './reporter.js';
export type { ReportTransport, ReporterDeps, TransportFactory, TransportLink } from './reporter.js';
export { ReportBreaker, BreakerOpenError } from './report-breaker.js';
export { ReportBuffer } from './report-buffer.js';
export { createRecordingSignals } from './agent-metrics.js';
export type { AgentSignals } from './agent-metrics.js';
export { resolveAgentOptions } from './agent-options.js';
