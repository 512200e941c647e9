/**
 * What the simulated agents report and what the coordinator knows from it: per-second samples of the queue,
 * averaged over the report interval and aged by the metric lag, turned into the `Observation` `decide()` takes.
 */
import type { Observation, ObservedInstance } from '../observation.js';
import type { SimFleet, SimInstance } from './fleet.js';
import type { SimulationModel } from './model.js';

/** One simulated second, per ready replica. */
export interface SecondSample {
  utilization: number;
  inFlight: number;
  rps: number;
  p95: number;
  p99: number;
}

/** The last few seconds of samples, enough for the lag plus one report interval. */
export class SampleHistory {
  private readonly ring: SecondSample[];
  private readonly size: number;

  constructor(private readonly model: SimulationModel) {
    this.size = Math.ceil((model.metricLagMs + model.reportIntervalMs) / 1000) + 2;
    this.ring = new Array(this.size);
  }

  record(t: number, sample: SecondSample): void {
    this.ring[t % this.size] = sample;
  }

  /** The mean sample over `[from, to)` seconds (`n`: how many seconds had one). */
  average(from: number, to: number): { avg: SecondSample; n: number } {
    let n = 0;
    const avg: SecondSample = { utilization: 0, inFlight: 0, rps: 0, p95: 0, p99: 0 };
    for (let s = from; s < to; s++) {
      if (s < 0) continue;
      const x = this.ring[s % this.size];
      if (!x) continue;
      avg.utilization += x.utilization;
      avg.inFlight += x.inFlight;
      avg.rps += x.rps;
      avg.p95 += x.p95;
      avg.p99 += x.p99;
      n++;
    }
    if (n > 0) {
      avg.utilization /= n;
      avg.inFlight /= n;
      avg.rps /= n;
      avg.p95 /= n;
      avg.p99 /= n;
    }
    return { avg, n };
  }

  /** What the coordinator would know at second `t`: each instance's latest report, aged by the metric lag. */
  observe(t: number, fleet: SimFleet, startAtMs: number): Observation {
    const model = this.model;
    const end = t - Math.ceil(model.metricLagMs / 1000);
    const span = Math.max(1, Math.round(model.reportIntervalMs / 1000));
    const { avg, n } = this.average(end - span, end);
    const reportAt = startAtMs + end * 1000;
    const out: ObservedInstance[] = new Array(fleet.instances.length);
    for (let k = 0; k < fleet.instances.length; k++) {
      const i = fleet.instances[k] as SimInstance;
      const hasReport = n > 0 && i.readyAt <= end - span;
      const isReady = i.readyAt <= t;
      const f = 1 + model.metricNoise * i.noise;
      out[k] = {
        id: i.id,
        ready: isReady,
        startedAt: startAtMs + i.createdAt * 1000,
        readySince: startAtMs + (isReady ? i.readyAt : i.createdAt) * 1000,
        sampledAt: reportAt,
        requests: { cpu: model.cpuPerReplica },
        metrics: hasReport
          ? {
              eventLoopUtilization: Math.min(1, avg.utilization * f),
              cpu: Math.min(1, avg.utilization * f) * model.cpuPerReplica,
              inFlight: avg.inFlight * f,
              rps: avg.rps * f,
              latencyP95Ms: avg.p95,
              latencyP99Ms: avg.p99,
            }
          : {},
      };
    }
    return { now: startAtMs + t * 1000, currentReplicas: fleet.instances.length, instances: out };
  }
}
