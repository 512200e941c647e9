// Public API of @shoal/policy. Internals its tests and benchmarks use are in `./internal.ts`
// (`@shoal/policy/internal`), which is not a stable API.
export { decide } from './decide.js';
export { ServiceAutoscaler } from './controller.js';
export type { ControllerOptions, ControllerStep } from './controller.js';
export type { Decision, TargetProposal } from './decide.js';
export { resolvePolicy, isResolvedPolicy, SHOAL_DEFAULTS, HPA_POLICY_DEFAULTS } from './policy.js';
export type {
  Policy,
  PolicyInput,
  PolicyPreset,
  Target,
  TargetInput,
  TargetType,
  Slo,
  SloInput,
  Panic,
  PanicInput,
  Schedule,
  ScheduleInput,
  Forecast,
  ForecastInput,
  VictimSelection,
} from './policy.js';
export type {
  Behavior,
  BehaviorInput,
  ScalingPolicy,
  ScalingRules,
  ScalingRulesInput,
  SelectPolicy,
} from './behavior.js';
export { validateObservation } from './observation.js';
export type { Observation, ObservedInstance } from './observation.js';
export { initialState, restoreState } from './state.js';
export type { PolicyState, DemandSample } from './state.js';
export { computeHpaReplicas } from './hpa-replicas.js';
export type {
  HpaInput,
  HpaInstance,
  HpaMetric,
  HpaPhase,
  HpaResult,
  ToleranceInput,
  Tolerances,
} from './hpa-replicas.js';
export { PolicyMetricError, TraceError, POLICY_ERROR_CODES } from './errors.js';
export type { PolicyErrorCode } from './errors.js';
export { simulate, resolveModel, metricsServerModel } from './simulator/simulate.js';
export type {
  SimulateOptions,
  SimulationModel,
  SimulationModelInput,
  SimulationResult,
  SimulationSummary,
  TimelinePoint,
  ScaleEventRecord,
} from './simulator/simulate.js';
export { parseTraceCsv, syntheticTrace } from './simulator/trace.js';
export type { Trace, TraceOptions } from './simulator/trace.js';
export type { ServiceTimeDistribution } from './simulator/queue-model.js';
export { renderSimulationSvg } from './simulator/svg.js';
export type { SvgOptions } from './simulator/svg.js';
export { ServiceWindow, CapacityError, StaleSequenceError, serviceWindowOptions } from './service-window.js';
export type { InstanceView, ServiceWindowOptions } from './service-window.js';
