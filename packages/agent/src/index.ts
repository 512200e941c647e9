export { Agent, createAgent } from './agent.js';
export type { AgentState } from './agent.js';
export type {
  AgentOptions,
  AgentRegistrationOptions,
  CoordinatorConnectionOptions,
  CoordinatorTlsOptions,
  DrainResult,
  MetricsEndpointOptions,
  ResolvedAgentOptions,
  ResolvedCoordinatorOptions,
} from './agent-options.js';
export type { AppCounter, GaugeOptions, GaugeScope } from './app-metrics.js';
export type { BreakerState } from './reporter.js';
export type { ExpressMiddleware } from './http-instrumentation.js';
export type { FastifyLike, FastifyPlugin, FastifyReplyLike } from './fastify-plugin.js';
export { GRPC_SERVER_FAULT_CODES, isGrpcServerFault } from '@shoal/core';
export { TRACKED } from './load-tracker.js';
export { AGENT_META_KEY, METRICS_PATH_META_KEY, METRICS_PORT_META_KEY } from './consul-metadata.js';
