// Public API of @shoal/coordinator. Internals its tests use are in `./internal.ts` (`@shoal/coordinator/internal`),
// which is not a stable API.
export { configSchema, parseConfig, parseConfigYaml, loadConfigFile, describeConfigIssues } from './config.js';
export type {
  CoordinatorConfig,
  CoordinatorConfigInput,
  ServiceConfig,
  ActuatorConfig,
  LocalActuatorConfig,
  KubernetesActuatorConfig,
  CommandActuatorConfig,
} from './config.js';
export type { Actuator, ReplicaInfo, ScaleOptions, SelectedVictims } from './actuators/actuator.js';
export { LocalActuator } from './actuators/local.js';
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
export type { DecisionRecord } from './control-loop.js';
export type { ServiceStatus, SdTargetGroup } from './http-api.js';
export type { InstanceView } from './service-window.js';
export { EXTERNAL_SCALER_PROTO_PATH } from './keda-scaler.js';
export { BUILTIN_METRICS } from './metric-names.js';
export type { PrometheusClientOptions } from './prometheus-client.js';
export { RolloutError, ROLLOUT_ERROR_CODES } from './rollout/rollout-error.js';
export type { RolloutErrorCode } from './rollout/rollout-error.js';
export type { RolloutStatus, RolloutState } from './rollout/rollout.js';
