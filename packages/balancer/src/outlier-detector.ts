import type { EndpointState } from './endpoint.js';
import type { ResolvedOutlierDetection } from './options.js';
import type { RandomSource } from './random.js';

/** Why an endpoint was ejected: `failure_rate` is the failure-percentage check (the name predates it). */
export type EjectionReason = 'consecutive_failures' | 'success_rate' | 'failure_rate';

/** Ejects `ep` for `reason`; false when `maxEjectionPercent` is reached (then no later ejection this interval). */
export type Eject = (ep: EndpointState, reason: EjectionReason) => boolean;

/**
 * Passive outlier detection as gRPC A50 and Envoy define it. Per call: consecutive failures eject at once (Envoy's
 * `consecutive_5xx`). Every `intervalMs`, over the calls of the interval that just ended:
 *
 * 1. success rate: with at least `minimumHosts` endpoints that saw `requestVolume` calls, those whose success
 *    rate is below mean − `stdevFactor` / 1000 × stdev are ejected (each with `enforcementPercentage` chance);
 * 2. failure percentage (opt-in): among the same kind of candidates, those failing more than `threshold` percent;
 * 3. every endpoint not ejected lowers its ejection multiplier by one.
 *
 * The n-th ejection in a row lasts min(base × n, max) (`ejectionMs`); the balancer checks `maxEjectionPercent`
 * before each ejection and brings endpoints back. Counters live on the endpoints; this class keeps no state of its
 * own besides the configuration, and allocates only a little per interval.
 */
export class OutlierDetector {
  constructor(
    readonly config: ResolvedOutlierDetection,
    private readonly random: RandomSource,
  ) {}

  /** Per failed call: true when `ep` has now failed `consecutiveFailures` times in a row. */
  tripsOnFailure(ep: EndpointState): boolean {
    const limit = this.config.consecutiveFailures;
    return limit > 0 && ep.consecutiveFailures >= limit && !ep.ejected && !ep.removed;
  }

  /** How long the next ejection of `ep` lasts, once its multiplier was raised. */
  ejectionMs(ep: EndpointState): number {
    return Math.min(this.config.baseEjectionMs * ep.ejectionMultiplier, this.config.maxEjectionMs);
  }

  /** The interval's checks (A50 order). Rolls every endpoint's interval counters over first. */
  runInterval(all: readonly EndpointState[], eject: Eject): void {
    for (const ep of all) {
      ep.prevWindowRequests = ep.windowRequests;
      ep.prevWindowFailures = ep.windowFailures;
      ep.windowRequests = 0;
      ep.windowFailures = 0;
    }
    if (this.config.successRateEjection !== false) this.successRate(all, eject);
    if (this.config.failurePercentageEjection !== false) this.failurePercentage(all, eject);
    // Returns from ejection come after this (the balancer's tick), so an endpoint still ejected is skipped here.
    for (const ep of all) if (!ep.ejected && ep.ejectionMultiplier > 0) ep.ejectionMultiplier--;
  }

  private successRate(all: readonly EndpointState[], eject: Eject): void {
    const c = this.config.successRateEjection;
    if (c === false) return;
    const candidates = all.filter((ep) => ep.prevWindowRequests >= c.requestVolume);
    if (candidates.length < c.minimumHosts) return;
    const rate = (ep: EndpointState) => 1 - ep.prevWindowFailures / ep.prevWindowRequests;
    let sum = 0;
    for (const ep of candidates) sum += rate(ep);
    const mean = sum / candidates.length;
    let squares = 0;
    for (const ep of candidates) squares += (rate(ep) - mean) ** 2;
    const stdev = Math.sqrt(squares / candidates.length);
    const threshold = mean - stdev * (c.stdevFactor / 1000);
    for (const ep of candidates) {
      if (ep.ejected || !(rate(ep) < threshold)) continue;
      if (this.random() * 100 >= c.enforcementPercentage) continue;
      if (!eject(ep, 'success_rate')) return;
    }
  }

  private failurePercentage(all: readonly EndpointState[], eject: Eject): void {
    const c = this.config.failurePercentageEjection;
    if (c === false) return;
    const candidates = all.filter((ep) => ep.prevWindowRequests >= c.requestVolume);
    if (candidates.length < c.minimumHosts) return;
    for (const ep of candidates) {
      if (ep.ejected || !((ep.prevWindowFailures * 100) / ep.prevWindowRequests > c.threshold)) continue;
      if (this.random() * 100 >= c.enforcementPercentage) continue;
      if (!eject(ep, 'failure_rate')) return;
    }
  }
}
