/** Stage 2b: the latency SLO adds pressure (scale up above it, hold near it or while capacity settles). */
import { formatNumber, type DecideContext, type Sizing } from '../decision.js';
import { metricValue } from '../observation.js';
import type { ObservedInstance } from '../observation.js';
import type { Slo } from '../policy.js';

function isLive(i: ObservedInstance): boolean {
  return i.ready && i.deleting !== true && (i.phase ?? 'running') === 'running';
}

/** The SLO metric over ready instances (mean or max), undefined when none reports it. */
export function sloLatency(slo: Slo, instances: readonly ObservedInstance[]): number | undefined {
  let agg = 0;
  let n = 0;
  for (const i of instances) {
    if (!isLive(i)) continue;
    const v = metricValue(i.metrics, slo.metric);
    if (v === undefined) continue;
    agg = slo.aggregate === 'max' ? Math.max(agg, v) : agg + v;
    n++;
  }
  if (n === 0) return undefined;
  return slo.aggregate === 'max' ? agg : agg / n;
}

/** Capacity is still settling: an instance is starting, or became ready less than `settleMs` ago. */
export function capacitySettling(slo: Slo, instances: readonly ObservedInstance[], now: number): boolean {
  for (const i of instances) {
    if (i.deleting === true || i.phase === 'failed') continue;
    const startingUp = !i.ready && (i.readySince === undefined || i.readySince === i.startedAt);
    if (startingUp || (i.ready && i.readySince !== undefined && i.readySince > now - slo.settleMs)) return true;
  }
  return false;
}

/** Applies the SLO's proposal to the sizing (nothing when no SLO or no latency is known). */
export function applySlo(ctx: DecideContext, sizing: Sizing): void {
  const slo = ctx.policy.slo;
  if (!slo) return;
  const latency = sloLatency(slo, ctx.observation.instances);
  if (latency === undefined) return;
  const { current, reasons, proposals } = ctx;
  const ratio = latency / slo.thresholdMs;
  // Pressure scales the ready replicas (the ones whose latency we see); starting ones count towards it.
  const base = Math.max(ctx.readyCount, 1);
  const shown = `SLO ${slo.metric} ${formatNumber(latency)} ms`;
  if (ratio > 1 && capacitySettling(slo, ctx.observation.instances, ctx.now)) {
    proposals.push({ target: `slo:${slo.metric}`, replicas: current, ratio });
    sizing.proposal = Math.max(sizing.proposal, current);
    sizing.hold = true;
    reasons.push(`${shown} above ${slo.thresholdMs} ms while capacity settles: hold ${current}`);
  } else if (ratio > 1) {
    const want = Math.max(base + 1, Math.ceil(base * Math.min(ratio, slo.maxStep)));
    proposals.push({ target: `slo:${slo.metric}`, replicas: want, ratio });
    sizing.proposal = Math.max(sizing.proposal, want);
    sizing.demand = Math.max(sizing.demand, base * Math.min(ratio, slo.maxStep));
    reasons.push(`${shown} above ${slo.thresholdMs} ms → ${want}`);
  } else if (ratio > slo.holdFraction) {
    proposals.push({ target: `slo:${slo.metric}`, replicas: current, ratio });
    sizing.proposal = Math.max(sizing.proposal, current);
    sizing.hold = true;
    reasons.push(`${shown} near ${slo.thresholdMs} ms: hold ${current}`);
  } else {
    proposals.push({ target: `slo:${slo.metric}`, ratio });
  }
}
