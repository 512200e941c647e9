/**
 * `simulate()`: replays a request-rate trace through the queueing model of a service whose replica count
 * is driven by the coordinator's own controller (`ServiceAutoscaler`: `decide()` and the leadership guard). One-second steps; seeded, so the same
 * inputs always give the same result. The parts: `model.ts` (what is modelled), `fleet.ts` (the replicas),
 * `reports.ts` (what the agents report and the coordinator observes), `accounting.ts` (what is measured).
 */
import { InvalidArgumentError, SeededRandom } from '@shoal/core';
import { ServiceAutoscaler } from '../controller.js';
import type { ControllerStep } from '../controller.js';
import type { Decision } from '../decision.js';
import type { Observation } from '../observation.js';
import { resolvePolicy } from '../policy.js';
import type { Policy, PolicyInput } from '../policy.js';
import { SimulationTally } from './accounting.js';
import type { ScaleEventRecord, SimulationSummary, TimelinePoint } from './accounting.js';
import { SimFleet } from './fleet.js';
import { DEFAULT_START, resolveModel } from './model.js';
import type { SimulationModel, SimulationModelInput } from './model.js';
import { QueueStepCache, stepQueue } from './queue-model.js';
import type { QueueParams, QueueState } from './queue-model.js';
import { SimAgents } from './reports.js';
import { ServiceWindow, serviceWindowOptions } from '../service-window.js';
import type { Hello, LoadReport } from '@shoal/protocol';
import { rateAt, traceDurationS } from './trace.js';
import type { Trace } from './trace.js';

export { metricsServerModel, resolveModel } from './model.js';
export type { SimulationModel, SimulationModelInput } from './model.js';
export type { ScaleEventRecord, SimulationSummary, TimelinePoint } from './accounting.js';

export interface SimulationResult {
  trace: string;
  model: SimulationModel;
  summary: SimulationSummary;
  timeline: TimelinePoint[];
  events: ScaleEventRecord[];
}

export interface SimulateOptions {
  trace: Trace;
  policy: Policy | PolicyInput;
  model?: SimulationModelInput;
  /**
   * Called after every decision (second `t` of the trace), e.g. to log reasons: the engine's decision and the
   * controller's step (after the leadership guard; `step.desiredReplicas` is what was applied).
   */
  onDecision?: (t: number, decision: Decision, observation: Observation, step: ControllerStep) => void;
  /**
   * Called with every agent report as the coordinator's window receives it (`atMs` epoch ms; `hello` on an
   * instance's first report), e.g. to replay the run into a real coordinator.
   */
  onReport?: (atMs: number, hello: Hello | undefined, id: string, report: LoadReport) => void;
}

function checkTrace(trace: Trace): void {
  if (typeof trace !== 'object' || trace === null || !Array.isArray(trace.rates) || !(trace.stepS > 0)) {
    throw new InvalidArgumentError('trace must be { name, stepS, rates } (see parseTraceCsv)');
  }
}

/** Replicas at the start: the model's, else enough for the first second at 60 % utilization, within [min, max]. */
export function initialReplicas(policy: Policy, model: SimulationModel, trace: Trace): number {
  return (
    model.initialReplicas ??
    Math.min(
      policy.maxReplicas,
      Math.max(policy.minReplicas, 1, Math.ceil(rateAt(trace, 0) / (model.replicaCapacityRps * 0.6))),
    )
  );
}

function queueParams(model: SimulationModel): QueueParams {
  return {
    concurrency: model.concurrency,
    serviceTimeMs: model.serviceTimeMs,
    distribution: model.serviceTimeDistribution,
    cv: model.serviceTimeCv,
    timeoutMs: model.timeoutMs,
  };
}

/** Replays `trace` under `policy` through the model. Deterministic for a given seed. */
/**
 * An instance is missing (HPA rules) after three delivery gaps without a report. Reports published in batches
 * (`metricResolutionMs`, as metrics-server does) arrive one resolution apart, so the gap is the resolution, not the
 * report interval: counted in report intervals, every replica would be missing between two scrapes, and the HPA
 * would read 0 % and never scale up.
 */
function missingAfterIntervals(model: SimulationModel): number {
  const gapMs = Math.max(model.reportIntervalMs, model.metricResolutionMs);
  return Math.ceil((3 * gapMs) / model.reportIntervalMs);
}

export function simulate(options: SimulateOptions): SimulationResult {
  const { trace } = options;
  checkTrace(trace);
  const policy = resolvePolicy(options.policy);
  const model = resolveModel(options.model);
  const rng = new SeededRandom(model.seed);
  const params = queueParams(model);
  const duration = Math.floor(traceDurationS(trace));
  const startAtMs = model.startAtMs ?? trace.startMs ?? DEFAULT_START;
  const fleet = new SimFleet(rng, {
    coldStartS: model.coldStartMs / 1000,
    coldStartCv: model.coldStartCv,
    maxParallelStarts: model.maxParallelStarts,
    drainS: model.drainMs / 1000,
  });
  const initial = initialReplicas(policy, model, trace);
  for (let k = 0; k < initial; k++) fleet.add(0, true);
  // The coordinator's window over the agents' reports, sized as the coordinator sizes it.
  const window = new ServiceWindow('sim', {
    ...serviceWindowOptions({
      reportIntervalMs: model.reportIntervalMs,
      syncPeriodMs: model.metricWindowMs,
      windowSize: 1000,
      maxInstances: 100_000,
    }),
    requests: { cpu: model.cpuPerReplica },
    missingAfterIntervals: missingAfterIntervals(model),
  });
  const agents = new SimAgents(model, window, startAtMs, 'sim', options.onReport);
  const tally = new SimulationTally(model, duration);
  const q: QueueState = { backlog: 0 };
  const stepCache = new QueueStepCache();
  // The coordinator's controller, as a coordinator that starts leading with the trace (fresh state, so scale-down
  // waits one scale-down stabilization window, as it does after every start or failover).
  const controller = new ServiceAutoscaler({ policy });
  controller.lead(startAtMs);
  const syncMs = model.syncPeriodMs;
  let nextSyncMs = 0;

  for (let t = 0; t < duration; t++) {
    // 1. Reports sent by now reach the window; decide on the sync period, as the coordinator's loop does.
    agents.deliver(t * 1000);
    while (nextSyncMs <= t * 1000) {
      const atMs = nextSyncMs;
      nextSyncMs += syncMs;
      const observation = controller.observe(window, startAtMs + atMs, fleet.size);
      const step = controller.step(observation);
      options.onDecision?.(t, step.decision, observation, step);
      const from = fleet.size;
      const removed = fleet.apply(t, step);
      for (const id of removed) agents.remove(id);
      if (step.desiredReplicas !== from) {
        tally.scaleEvent({ t, from, to: step.desiredReplicas, panicking: step.panicking });
      }
    }
    // 2. Serve this second; the agents account it.
    const ready = fleet.readyAt(t);
    const rate = rateAt(trace, t);
    const arrivals = rng.poisson(rate);
    const r = stepQueue(q, params, ready, arrivals, 1, stepCache);
    agents.second(t, fleet.instances, {
      completed: ready > 0 ? r.served / ready : 0,
      inFlight: r.inFlightPerReplica,
      utilization: r.utilization,
      latencyShares: r.latencyShares,
    });
    tally.second({
      t,
      rate,
      arrivals,
      ready,
      replicas: fleet.billedAt(t),
      utilization: r.utilization,
      latencyP95Ms: r.latencyP95Ms,
      dropped: r.dropped,
    });
  }
  const summary = tally.finish();
  return { trace: trace.name, model, summary, timeline: tally.timeline, events: tally.events };
}
