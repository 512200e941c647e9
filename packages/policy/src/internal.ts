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
export { SampleHistory } from './simulator/reports.js';
export type { SecondSample } from './simulator/reports.js';
export { SimulationTally, countReversals } from './simulator/accounting.js';
export type { SecondOutcome } from './simulator/accounting.js';
export { initialReplicas } from './simulator/simulate.js';
