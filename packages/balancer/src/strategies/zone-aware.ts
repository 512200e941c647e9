import type { Endpoint } from '../endpoint.js';
import type { PickContext, Strategy, StrategyEnv, StrategyFactory, StrategyOptions } from '../strategy.js';
import { instantiateStrategy } from '../strategy-registry.js';

export interface ZoneAwareConfig {
  readonly localZone: string;
  /** Local zone unhealthy below this percent of its endpoints pickable. */
  readonly minHealthyPercent: number;
  /** Spill over when local mean in-flight > factor × (remote mean in-flight + 1). */
  readonly spilloverLoadFactor: number;
}

/**
 * `zone_aware`: a wrapper that runs the wrapped strategy over the caller's zone while that zone is healthy and not
 * overloaded, and over every zone otherwise (Ribbon's ZoneAvoidance, Envoy's zone-aware routing, simplified).
 *
 * - Unhealthy: fewer than `minHealthyPercent` of the local zone's endpoints are pickable (the rest ejected), or
 *   the zone has none.
 * - Overloaded: the mean in-flight per local endpoint exceeds `spilloverLoadFactor` × (the mean elsewhere + 1).
 *
 * Two instances of the wrapped strategy run side by side (local, everywhere), so per-strategy state such as a
 * rotation or a hash ring stays consistent within each. O(1) on top of the wrapped strategy.
 */
export class ZoneAwareStrategy implements Strategy {
  readonly name: string;
  readonly slowStart: boolean;
  readonly ewmaDecayMs: number | undefined;
  readonly ewmaSampleWindow: number | undefined;
  private readonly local: Strategy;
  private readonly everywhere: Strategy;
  private localReady = 0;
  private remoteReady = 0;
  private healthy = false;
  private localInFlight = 0;
  private remoteInFlight = 0;
  private ready: readonly Endpoint[] = [];

  constructor(
    factory: StrategyFactory,
    options: StrategyOptions,
    env: StrategyEnv,
    private readonly config: ZoneAwareConfig,
  ) {
    this.local = instantiateStrategy(factory, options, env);
    this.everywhere = instantiateStrategy(factory, options, env);
    this.name = `zone_aware(${this.local.name})`;
    this.slowStart = this.local.slowStart !== false;
    this.ewmaDecayMs = this.local.ewmaDecayMs;
    this.ewmaSampleWindow = this.local.ewmaSampleWindow;
  }

  /** Whether the next pick stays in the local zone. */
  get preferringLocal(): boolean {
    if (!this.healthy) return false;
    if (this.remoteReady === 0) return true;
    const localMean = this.localInFlight / this.localReady;
    const remoteMean = this.remoteInFlight / this.remoteReady;
    return localMean <= this.config.spilloverLoadFactor * (remoteMean + 1);
  }

  update(ready: readonly Endpoint[], all: readonly Endpoint[]): void {
    const zone = this.config.localZone;
    const localReady = ready.filter((e) => e.zone === zone);
    const localAll = all.filter((e) => e.zone === zone);
    this.ready = ready;
    this.localReady = localReady.length;
    this.remoteReady = ready.length - localReady.length;
    // In panic mode the balancer passes ejected endpoints as ready; count only the really pickable ones for health.
    const pickable = localAll.filter((e) => !e.ejected && e.available).length;
    this.healthy = localReady.length > 0 && pickable * 100 >= this.config.minHealthyPercent * localAll.length;
    this.recount();
    this.local.update(localReady, localAll);
    this.everywhere.update(ready, all);
  }

  private recount(): void {
    const zone = this.config.localZone;
    let local = 0;
    let remote = 0;
    for (const e of this.ready) {
      if (e.zone === zone) local += e.inFlight;
      else remote += e.inFlight;
    }
    this.localInFlight = local;
    this.remoteInFlight = remote;
  }

  pick(ctx: PickContext | undefined, attempt: number): Endpoint | undefined {
    if (this.preferringLocal) {
      const ep = this.local.pick(ctx, attempt);
      if (ep !== undefined) return ep;
    }
    return this.everywhere.pick(ctx, attempt);
  }

  onPick(ep: Endpoint): void {
    if (ep.zone === this.config.localZone) {
      this.localInFlight++;
      this.local.onPick?.(ep);
    } else {
      this.remoteInFlight++;
    }
    this.everywhere.onPick?.(ep);
  }

  onComplete(ep: Endpoint, success: boolean, latencyMs: number): void {
    if (ep.zone === this.config.localZone) {
      if (this.localInFlight > 0) this.localInFlight--;
      this.local.onComplete?.(ep, success, latencyMs);
    } else if (this.remoteInFlight > 0) {
      this.remoteInFlight--;
    }
    this.everywhere.onComplete?.(ep, success, latencyMs);
  }

  tick(nowMs: number): void {
    this.recount();
    this.local.tick?.(nowMs);
    this.everywhere.tick?.(nowMs);
  }
}
