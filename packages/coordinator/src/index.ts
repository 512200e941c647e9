export {
  configSchema,
  parseConfig,
  parseConfigYaml,
  loadConfigFile,
  describeConfigIssues,
  formatPath,
} from './config.js';
export type {
  CoordinatorConfig,
  CoordinatorConfigInput,
  ServiceConfig,
  ActuatorConfig,
  LocalActuatorConfig,
  KubernetesActuatorConfig,
  CommandActuatorConfig,
} from './config.js';
export { TokenAuthenticator, parseBearer, resolveServiceTokens } from './auth.js';
export type { AuthResult } from './auth.js';
export type { Actuator, ReplicaInfo, ScaleOptions } from './actuators/actuator.js';
export { LocalActuator, findFreePort } from './actuators/local.js';
export type { LocalActuatorOptions } from './actuators/local.js';
export {
  KubernetesActuator,
  POD_DELETION_COST_ANNOTATION,
  KUBERNETES_RBAC_RULES,
  VICTIM_DELETION_COST,
} from './actuators/kubernetes.js';
export type { KubernetesActuatorOptions } from './actuators/kubernetes.js';
export { CommandActuator, signWebhookBody, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './actuators/command.js';
export type { CommandActuatorOptions } from './actuators/command.js';
export { createActuator } from './actuators/create-actuator.js';
export type { ActuatorContext } from './actuators/create-actuator.js';
export { createCoordinator } from './coordinator.js';
export type { Coordinator, CoordinatorOptions, CoordinatorUrls } from './coordinator.js';
export { servicePolicy } from './config.js';
export type { DecisionRecord } from './control-loop.js';
export type { ServiceStatus, SdTargetGroup } from './http-api.js';
export type { InstanceView } from './service-window.js';
export { LeaderElection } from './leader-election.js';
export type { LeaderElectionOptions, LeaderInfo, LeadershipChange } from './leader-election.js';
export { EXTERNAL_SCALER_PROTO_PATH, externalScalerService } from './keda-scaler.js';
export { createCoordinatorMetrics } from './metrics.js';
export type { CoordinatorMetrics } from './metrics.js';
export { ServiceWindow } from './service-window.js';
export { BUILTIN_METRICS } from './metric-names.js';
export type { ServiceWindowOptions } from './service-window.js';
export { RateLimiter } from './rate-limiter.js';
export { RingBuffer } from './ring-buffer.js';
export { ServiceController } from './control-loop.js';
export type { ServiceControllerOptions } from './control-loop.js';
export { MemoryStateStore, ConsulStateStore } from './state-store.js';
export type { StateStore, PersistedServiceState } from './state-store.js';
