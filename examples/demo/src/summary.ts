/** The end-of-run summary: what a reader wants to know after the demo (and what the e2e test asserts). */
import { quantile } from './recorder.js';
import type { Recorder } from './recorder.js';
import type { Scenario } from './scenario.js';

export interface DemoSummary {
  /** Whether the run went to its end (false when interrupted). */
  completed: boolean;
  durationMs: number;
  startReplicas: number;
  peakReplicas: number;
  finalReplicas: number;
  peakDesired: number | undefined;
  /** From the start of the ramp to the first moment the peak replica count was serving. */
  timeToScaleUpMs: number | undefined;
  /** From the end of the ramp-down to the first moment the replica count was back at its final value. */
  timeToScaleDownMs: number | undefined;
  scaledUp: boolean;
  scaledDown: boolean;
  requests: number;
  succeeded: number;
  failedRequests: number;
  failures: Record<string, number>;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  peakRps: number;
  decisions: number;
  scaleUpDecisions: number;
  scaleDownDecisions: number;
  chartPath: string | undefined;
  /** Process ids of every replica the run started (all stopped when the demo exits). */
  replicaPids: number[];
}

export function summarize(
  recorder: Recorder,
  scenario: Scenario,
  extra: { completed: boolean; chartPath: string | undefined; replicaPids: number[] },
): DemoSummary {
  const samples = recorder.samples;
  const first = samples[0];
  const last = samples[samples.length - 1];
  let peakReplicas = 0;
  let peakDesired: number | undefined;
  let peakRps = 0;
  for (const s of samples) {
    peakReplicas = Math.max(peakReplicas, s.replicas);
    if (s.desired !== undefined) peakDesired = Math.max(peakDesired ?? 0, s.desired);
    peakRps = Math.max(peakRps, s.rps);
  }
  const startReplicas = first?.replicas ?? 0;
  const finalReplicas = last?.replicas ?? 0;
  const rampStart = scenario.phase('ramp-up').startMs;
  const fallEnd = scenario.phase('ramp-down').endMs;
  const peakAt = samples.find((s) => s.replicas === peakReplicas && s.tMs >= rampStart);
  const downAt = samples.find((s) => s.tMs >= fallEnd && s.replicas <= finalReplicas);
  const sorted = [...recorder.allLatencies].sort((a, b) => a - b);
  const scaledUp = peakReplicas > startReplicas;
  return {
    completed: extra.completed,
    durationMs: last?.tMs ?? 0,
    startReplicas,
    peakReplicas,
    finalReplicas,
    peakDesired,
    timeToScaleUpMs: scaledUp && peakAt ? peakAt.tMs - rampStart : undefined,
    timeToScaleDownMs: scaledUp && finalReplicas < peakReplicas && downAt ? downAt.tMs - fallEnd : undefined,
    scaledUp,
    scaledDown: scaledUp && finalReplicas < peakReplicas,
    requests: recorder.totals.requests,
    succeeded: recorder.totals.succeeded,
    failedRequests: recorder.totals.failed,
    failures: { ...recorder.totals.failures },
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    peakRps,
    decisions: recorder.decisions.length,
    scaleUpDecisions: recorder.decisions.filter((d) => d.to > d.from).length,
    scaleDownDecisions: recorder.decisions.filter((d) => d.to < d.from).length,
    chartPath: extra.chartPath,
    replicaPids: extra.replicaPids,
  };
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(1)} s`;
}

function millis(ms: number | undefined): string {
  return ms === undefined ? 'n/a' : `${ms.toFixed(1)} ms`;
}

/** The summary as the lines printed at the end of the run. */
export function formatSummary(s: DemoSummary): string[] {
  const failures = Object.entries(s.failures)
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
  return [
    '',
    s.completed ? 'Shoal demo: summary' : 'Shoal demo: summary (interrupted)',
    `  replicas          ${s.startReplicas} → peak ${s.peakReplicas} → ${s.finalReplicas}` +
      (s.peakDesired !== undefined ? `   (peak desired ${s.peakDesired})` : ''),
    `  time to scale up  ${seconds(s.timeToScaleUpMs)} from the start of the ramp to ${s.peakReplicas} replicas serving`,
    `  time to scale in  ${seconds(s.timeToScaleDownMs)} from the end of the ramp-down`,
    `  decisions         ${s.decisions} (${s.scaleUpDecisions} up, ${s.scaleDownDecisions} down)`,
    `  requests          ${s.requests} at up to ${s.peakRps.toFixed(0)} req/s, p50 ${millis(s.p50Ms)}, p99 ${millis(s.p99Ms)}`,
    `  failed requests   ${s.failedRequests} (expected 0)${failures ? `: ${failures}` : ''}`,
    ...(s.chartPath ? [`  chart             ${s.chartPath}`] : []),
    '',
  ];
}
