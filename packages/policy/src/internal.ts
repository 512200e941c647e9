// Internals of @shoal/policy for its own tests and benchmarks (`@shoal/policy/internal`). Not a public API: names
// here may change in any release.
export { createDecideContext } from './decide.js';
export { formatNumber } from './decision.js';
export type { DecideContext, Sizing, LimitReason } from './decision.js';
export { clampToRange, scheduleMinimum } from './stages/range.js';
export { blockScaleDownOnFailure, proposeTarget, proposeTargets, totalOf } from './stages/targets.js';
export { applySlo, capacitySettling, sloLatency } from './stages/slo.js';
export { averageDemand, demandHistoryMs, recordDemand, sizeFromStableWindow } from './stages/stable-window.js';
export { applyPanic } from './stages/panic.js';
export { applyForecast, applyHeadroom, fitLine } from './stages/forecast.js';
export { limitLegacyPath, stabilizeAndLimit, stabilizeProposal } from './stages/limits.js';
export type { Limited } from './stages/limits.js';
export { finishDecision } from './stages/finish.js';
export { SimFleet } from './simulator/fleet.js';
export type { SimInstance } from './simulator/fleet.js';
export { SimAgents } from './simulator/reports.js';
export type { SecondShare } from './simulator/reports.js';
export { SimulationTally, countReversals, figureRatio, formatRatio } from './simulator/accounting.js';
export type { FigureRatio } from './simulator/accounting.js';
export type { SecondOutcome } from './simulator/accounting.js';
export { initialReplicas } from './simulator/simulate.js';
export { SHOAL_BEHAVIOR } from './policy.js';
export { withinTolerance, HPA_DEFAULTS } from './hpa-replicas.js';
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
export type { ScaleEvent, TimedRecommendation } from './behavior.js';
export { parseCron, cronMatches, lastCronMatch, zoneOffsetMinutes } from './cron.js';
export type { CronExpression, CronZone } from './cron.js';
export { selectVictims } from './victims.js';
export { rateAt, traceDurationS } from './simulator/trace.js';
export { erlangC } from './simulator/queue-model.js';
export { parseYamlDocument } from './yaml.js';
