/**
 * The demo's load scenario: a quiet start, a ramp to the peak, a hold, a fall, and a cool-down long enough for
 * the coordinator to scale back in. Phases are fractions of the whole duration, so `--duration` stretches or
 * shrinks every phase alike.
 */
export type PhaseName = 'warm-up' | 'ramp-up' | 'hold' | 'ramp-down' | 'cool-down';

export interface Phase {
  readonly name: PhaseName;
  readonly startMs: number;
  readonly endMs: number;
}

export interface ScenarioOptions {
  /** Whole run, in milliseconds. */
  durationMs: number;
  /** Requests per second outside the peak. */
  baseRps: number;
  /** Requests per second during the hold. */
  peakRps: number;
}

const SHAPE: ReadonlyArray<readonly [PhaseName, number]> = [
  ['warm-up', 0.08],
  ['ramp-up', 0.17],
  ['hold', 0.25],
  ['ramp-down', 0.1],
  ['cool-down', 0.4],
];

export class Scenario {
  readonly durationMs: number;
  readonly baseRps: number;
  readonly peakRps: number;
  readonly phases: readonly Phase[];

  constructor(options: ScenarioOptions) {
    const { durationMs, baseRps, peakRps } = options;
    if (!Number.isFinite(durationMs) || durationMs <= 0) {
      throw new RangeError(`durationMs must be a positive number, got ${String(durationMs)}`);
    }
    if (!Number.isFinite(baseRps) || baseRps <= 0) {
      throw new RangeError(`baseRps must be a positive number, got ${String(baseRps)}`);
    }
    if (!Number.isFinite(peakRps) || peakRps < baseRps) {
      throw new RangeError(`peakRps must be a number >= baseRps (${baseRps}), got ${String(peakRps)}`);
    }
    this.durationMs = durationMs;
    this.baseRps = baseRps;
    this.peakRps = peakRps;
    const phases: Phase[] = [];
    let start = 0;
    for (const [name, fraction] of SHAPE) {
      const end = name === 'cool-down' ? durationMs : Math.round(start + fraction * durationMs);
      phases.push(Object.freeze({ name, startMs: start, endMs: end }));
      start = end;
    }
    this.phases = Object.freeze(phases);
  }

  /** The phase at `elapsedMs` (the last phase once the run is over). */
  phaseAt(elapsedMs: number): Phase {
    for (const phase of this.phases) if (elapsedMs < phase.endMs) return phase;
    return this.phases[this.phases.length - 1]!;
  }

  phase(name: PhaseName): Phase {
    return this.phases.find((p) => p.name === name)!;
  }

  /** The offered load, in requests per second, at `elapsedMs`. */
  rateAt(elapsedMs: number): number {
    const phase = this.phaseAt(elapsedMs);
    const within = phase.endMs > phase.startMs ? (elapsedMs - phase.startMs) / (phase.endMs - phase.startMs) : 1;
    const f = Math.min(1, Math.max(0, within));
    switch (phase.name) {
      case 'warm-up':
      case 'cool-down':
        return this.baseRps;
      case 'ramp-up':
        return this.baseRps + (this.peakRps - this.baseRps) * f;
      case 'hold':
        return this.peakRps;
      case 'ramp-down':
        return this.peakRps - (this.peakRps - this.baseRps) * f;
    }
  }

  /** Fraction of the run done, 0..1. */
  progress(elapsedMs: number): number {
    return Math.min(1, Math.max(0, elapsedMs / this.durationMs));
  }
}
