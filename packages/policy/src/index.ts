// Public API of @shoal/policy.
export { decide } from './decide.js';
export type { Decision, TargetProposal } from './decide.js';
export { resolvePolicy, isResolvedPolicy, SHOAL_DEFAULTS, SHOAL_BEHAVIOR, HPA_POLICY_DEFAULTS } from './policy.js';
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
export { validateObservation } from './observation.js';
export type { Observation, ObservedInstance } from './observation.js';
export { initialState, restoreState } from './state.js';
export type { PolicyState, DemandSample } from './state.js';
export { computeHpaReplicas, withinTolerance, HPA_DEFAULTS } from './hpa-replicas.js';
export type {
  HpaInput,
  HpaInstance,
  HpaMetric,
  HpaPhase,
  HpaResult,
  ToleranceInput,
  Tolerances,
} from './hpa-replicas.js';
export {
  KUBERNETES_BEHAVIOR,
  resolveBehavior,
  stabilize,
  scaleUpLimit,
  scaleDownLimit,
  limitRate,
  stabilizeLegacy,
  limitLegacy,
  LEGACY_SCALE_UP_FACTOR,
  LEGACY_SCALE_UP_MINIMUM,
  LEGACY_DOWNSCALE_STABILIZATION_SECONDS,
} from './behavior.js';
export type {
  Behavior,
  BehaviorInput,
  ScalingPolicy,
  ScalingRules,
  ScalingRulesInput,
  SelectPolicy,
  ScaleEvent,
  TimedRecommendation,
} from './behavior.js';
export { parseCron, cronMatches, lastCronMatch, zoneOffsetMinutes } from './cron.js';
export type { CronExpression, CronZone } from './cron.js';
export { selectVictims } from './victims.js';
export { PolicyMetricError, TraceError, POLICY_ERROR_CODES } from './errors.js';
export type { PolicyErrorCode } from './errors.js';
export { simulate, resolveModel } from './simulator/simulate.js';
export type {
  SimulateOptions,
  SimulationModel,
  SimulationModelInput,
  SimulationResult,
  SimulationSummary,
  TimelinePoint,
  ScaleEventRecord,
} from './simulator/simulate.js';
export { parseTraceCsv, syntheticTrace, rateAt, traceDurationS } from './simulator/trace.js';
export type { Trace, TraceOptions } from './simulator/trace.js';
export { erlangC } from './simulator/queue-model.js';
export type { ServiceTimeDistribution } from './simulator/queue-model.js';
export { renderSimulationSvg } from './simulator/svg.js';
export type { SvgOptions } from './simulator/svg.js';
