import { Registry } from 'prom-client';
import {
  ClosedError,
  EventEmitter,
  InvalidArgumentError,
  MAX_INSTANCE_WEIGHT,
  NoEndpointsError,
  assertObject,
  assertString,
  componentLogger,
  describeValue,
  type Event,
  type Instance,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import { EndpointState, type Endpoint, type EndpointSnapshot, type EndpointLoad } from './endpoint.js';
import { balancerMetrics, type BalancerMetrics, type BalancerMetricsSource } from './metrics.js';
import {
  applyBalancerContext,
  type BalancerContext,
  type BalancerOptions,
  type ResolvedBalancerOptions,
} from './options.js';
import { OutlierDetector, type EjectionReason } from './outlier-detector.js';
import { Handle, type HandleOwner, type PickHandle, type PickOutcome } from './pick-handle.js';
import { RetryBudget } from './retry-budget.js';
import { slowStartFactor } from './slow-start.js';
import type { PickContext, Strategy, StrategyEnv } from './strategy.js';
import { createStrategy, resolveStrategyFactory } from './strategy-registry.js';
import { ZoneAwareStrategy } from './strategies/zone-aware.js';

/** Re-picks tried when a candidate is excluded (Finagle's `maxEffort`). */
const MAX_EFFORT = 5;
/**
 * The clock is read on at most one completion in this many (and on every sweep tick); the completions in between
 * reuse the last reading. Reading a monotonic clock costs ~40-50 ns on our machines, a third of the pick+complete
 * budget; the error this leaves in the EWMA's time base is the time of a few completions (microseconds under
 * load, where it matters) and never more than one sweep interval (when idle, where it does not).
 */
const CLOCK_READ_EVERY = 8;
/** Interval of the "recent" failure counters when outlier detection is off (its default `intervalMs`). */
const DEFAULT_INTERVAL_MS = 10_000;
/** gRPC A58 `weight_expiration_period`: a load-report gap this long restarts the reporting run (blackout). */
const LOAD_REPORT_GAP_MS = 180_000;

export type { EjectionReason } from './outlier-detector.js';

export interface EjectionEvent {
  readonly instance: Instance;
  readonly reason: EjectionReason;
  /** How long this ejection lasts. */
  readonly durationMs: number;
}

/**
 * Client-side load balancer over a set of endpoints, independent of the transport.
 *
 * Feed it the current instances with `setEndpoints()` (from discovery; survivors keep their stats), then per call:
 * `const h = balancer.pick(); ... h.complete('success', latencyMs)`. Stats per endpoint: in-flight calls,
 * peak-sensitive EWMA latency, failures, server-reported load. Cross-cutting for every strategy: slow start (a
 * weight), outlier ejection (gRPC A50), a healthy-panic threshold, a retry budget. One coarse timer
 * (`sweepIntervalMs`) does all background work.
 */
export class Balancer implements HandleOwner {
  private readonly options: ResolvedBalancerOptions;
  private readonly strategy: Strategy;
  private readonly log: Logger;
  private readonly metrics: BalancerMetrics;
  private readonly metricsSource: BalancerMetricsSource;
  private readonly budget: RetryBudget | undefined;
  private readonly outliers: OutlierDetector | undefined;
  private readonly decayMs: number;
  /** Minimum weight of one observation in the EWMA (1 / the strategy's `ewmaSampleWindow`; 0 = time only). */
  private readonly sampleWeight: number;
  private readonly slowStartApplies: boolean;
  private readonly ticksPerGeneration: number;
  private all: EndpointState[] = [];
  private byId = new Map<string, EndpointState>();
  private ready: EndpointState[] = [];
  private ejectedCount = 0;
  private panic = false;
  private generation = 0;
  private ticks = 0;
  private nowMs: number;
  private lastIntervalMs: number;
  private completionsSinceClockRead = 0;
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly ejectEmitter = new EventEmitter<EjectionEvent>();
  private readonly returnEmitter = new EventEmitter<Instance>();

  /** Fires when outlier detection ejects an endpoint. */
  readonly onEject: Event<EjectionEvent> = this.ejectEmitter.event;
  /** Fires when an ejected endpoint returns to the set. */
  readonly onReturn: Event<Instance> = this.returnEmitter.event;

  /**
   * `options` as given or as `resolveBalancerOptions()` returned them (resolve once, create many); `context` holds
   * what differs per balancer (name, zone, logger, registry, clock). Throws InvalidArgumentError for bad options.
   */
  constructor(options: BalancerOptions | ResolvedBalancerOptions = {}, context?: BalancerContext) {
    const opts = applyBalancerContext(options, context);
    this.options = opts;
    this.nowMs = opts.clock.monotonic();
    this.lastIntervalMs = this.nowMs;
    const env: StrategyEnv = {
      random: opts.random,
      clock: opts.clock,
      now: () => this.nowMs,
      ewmaDecayMs: opts.ewmaDecayMs,
    };
    if (opts.localZone !== undefined) {
      const factory = resolveStrategyFactory(opts.strategy);
      if (factory === undefined) {
        throw new InvalidArgumentError(
          'localZone needs the strategy given by name, class or factory (the zone-aware wrapper runs two instances of it), got a strategy object',
        );
      }
      this.strategy = new ZoneAwareStrategy(factory, opts.strategyOptions, env, {
        localZone: opts.localZone,
        ...opts.zoneAware,
      });
    } else {
      this.strategy = createStrategy(opts.strategy, opts.strategyOptions, env);
    }
    this.decayMs = this.strategy.ewmaDecayMs ?? opts.ewmaDecayMs;
    const window = this.strategy.ewmaSampleWindow;
    this.sampleWeight = window !== undefined && window > 0 ? 1 / window : 0;
    this.slowStartApplies = opts.slowStart !== false && this.strategy.slowStart !== false;
    this.ticksPerGeneration = Math.max(1, Math.ceil(opts.handleTimeoutMs / opts.sweepIntervalMs));
    this.budget =
      opts.retryBudget === false
        ? undefined
        : new RetryBudget(
            opts.retryBudget.ratio,
            opts.retryBudget.minRetriesPerSecond,
            opts.retryBudget.ttlMs,
            opts.sweepIntervalMs,
          );
    this.outliers =
      opts.outlierDetection === false ? undefined : new OutlierDetector(opts.outlierDetection, opts.random);
    this.log = componentLogger(opts.logger, 'balancer', { balancer: opts.name });
    this.metrics = balancerMetrics(opts.registry ?? new Registry());
    this.metricsSource = {
      name: opts.name,
      strategyName: this.strategy.name,
      picks: 0,
      picksReported: 0,
      endpointCount: () => this.all.length,
      ejectedCount: () => this.ejectedCount,
      panicking: () => this.panic,
    };
    this.metrics.sources.add(this.metricsSource);
    this.strategy.update(this.ready, this.all);
    this.schedule();
  }

  /** The strategy's name (e.g. `peak_ewma`, `zone_aware(round_robin)`). */
  get strategyName(): string {
    return this.strategy.name;
  }

  /** Number of endpoints known (ejected ones included). */
  get size(): number {
    return this.all.length;
  }

  /**
   * True while fewer than `healthyPanicThresholdPercent` of the available endpoints are healthy (not ejected):
   * then picks spread over every available endpoint, ejected ones included (Envoy's healthy panic).
   */
  get panicking(): boolean {
    return this.panic;
  }

  /**
   * Replaces the endpoint set. Endpoints are keyed by `Instance.id`: one that stays keeps its stats (in-flight,
   * latency, ejection), one that is new starts fresh (in slow start if some endpoint survived the update).
   * Throws InvalidArgumentError for a malformed list (weights must be finite, > 0 and <= 10000; ids unique).
   */
  setEndpoints(instances: readonly Instance[]): void {
    if (this.closed) throw new ClosedError('balancer is closed');
    validateInstances(instances);
    this.refreshNow();
    const now = this.nowMs;
    const survivors = instances.some((inst) => this.byId.has(inst.id));
    const nextAll: EndpointState[] = [];
    const nextById = new Map<string, EndpointState>();
    let added = 0;
    let changed = instances.length !== this.all.length;
    for (const inst of instances) {
      let ep = this.byId.get(inst.id);
      if (ep !== undefined) {
        if (ep.instance !== inst) {
          // Only weight and zone matter to strategies; a new address just rides along on the instance.
          if (ep.weight !== (inst.weight ?? 1) || ep.zone !== inst.zone) changed = true;
          ep.setInstance(inst);
        }
        if (this.all[nextAll.length] !== ep) changed = true;
      } else {
        changed = true;
        ep = new EndpointState(inst);
        ep.ewmaStampMs = now;
        if (survivors) this.startSlowStart(ep, now);
        added++;
      }
      nextAll.push(ep);
      nextById.set(ep.id, ep);
    }
    let removed = 0;
    for (const ep of this.all) {
      if (!nextById.has(ep.id)) {
        ep.removed = true;
        removed++;
      }
    }
    // Discovery often repeats an unchanged list: then there is nothing to rebuild (a ring, a heap, …).
    if (!changed) return;
    this.all = nextAll;
    this.byId = nextById;
    this.ejectedCount = nextAll.reduce((n, ep) => n + (ep.ejected ? 1 : 0), 0);
    this.rebuildReady();
    if (added > 0 || removed > 0) {
      this.log.debug({ endpoints: nextAll.length, added, removed }, 'endpoint set changed');
    }
  }

  /**
   * Picks an endpoint for one call. Complete the returned handle with the outcome and latency. Throws
   * NoEndpointsError when there is no endpoint (or every one is in `ctx.exclude`), ClosedError after `close()`.
   */
  pick(ctx?: PickContext): PickHandle {
    if (this.closed) throw new ClosedError('balancer is closed');
    if (this.ready.length === 0) throw this.noEndpoints();
    let ep = this.strategy.pick(ctx, 0) as EndpointState | undefined;
    if (ep === undefined || (ctx !== undefined && ctx.exclude !== undefined && ctx.exclude.has(ep.id))) {
      ep = this.repick(ctx);
    }
    ep.inFlight++;
    ep.inFlightCur++;
    this.metricsSource.picks++;
    if (this.budget !== undefined) this.budget.onRequest();
    if (this.strategy.onPick !== undefined) this.strategy.onPick(ep);
    return new Handle(ep.instance, ep, this.generation, this);
  }

  private noEndpoints(): NoEndpointsError {
    const name = this.options.name;
    if (this.all.length === 0) return new NoEndpointsError(`balancer "${name}" has no endpoints`);
    const available = this.all.filter((ep) => ep.available).length;
    if (available === 0) {
      return new NoEndpointsError(
        `balancer "${name}" has no available endpoint (all ${this.all.length} marked unavailable)`,
      );
    }
    return new NoEndpointsError(
      `balancer "${name}" has no healthy endpoint (all ${available} available ones ejected; healthyPanicThresholdPercent is 0)`,
    );
  }

  /** The slow path of `pick()`: the first candidate was excluded or missing. */
  private repick(ctx: PickContext | undefined): EndpointState {
    const exclude = ctx?.exclude;
    for (let attempt = 1; attempt < MAX_EFFORT; attempt++) {
      const ep = this.strategy.pick(ctx, attempt) as EndpointState | undefined;
      if (ep !== undefined && (exclude === undefined || !exclude.has(ep.id))) return ep;
    }
    for (const ep of this.ready) if (exclude === undefined || !exclude.has(ep.id)) return ep;
    throw new NoEndpointsError(
      `balancer "${this.options.name}" has no endpoint left to pick: all ${this.ready.length} are excluded`,
    );
  }

  /** @internal Called by `PickHandle.complete()`. */
  completeHandle(handle: Handle, outcome: PickOutcome, latencyMs: number, load: EndpointLoad | undefined): void {
    let failure: boolean;
    if (outcome === 'success') failure = false;
    else if (outcome === 'failure') failure = true;
    else throw new InvalidArgumentError(`outcome must be "success" or "failure", got ${describeValue(outcome)}`);
    if (!(latencyMs >= 0 && latencyMs < Number.POSITIVE_INFINITY)) {
      throw new InvalidArgumentError(`latencyMs must be a finite number >= 0, got ${describeValue(latencyMs)}`);
    }
    if (load !== undefined) validateLoad(load);
    handle.done = true;
    const ep = handle.endpoint;
    const g = handle.generation;
    if (g === this.generation) {
      ep.inFlight--;
      ep.inFlightCur--;
    } else if (g === this.generation - 1) {
      ep.inFlight--;
      ep.inFlightPrev--;
    }
    if (++this.completionsSinceClockRead >= CLOCK_READ_EVERY) this.refreshNow();
    ep.observeLatency(latencyMs, this.nowMs, this.decayMs, this.sampleWeight);
    ep.windowRequests++;
    if (failure) {
      ep.failures++;
      ep.windowFailures++;
      ep.consecutiveFailures++;
      if (this.outliers !== undefined && this.outliers.tripsOnFailure(ep)) this.eject(ep, 'consecutive_failures');
    } else {
      ep.consecutiveFailures = 0;
    }
    if (this.strategy.onComplete !== undefined) this.strategy.onComplete(ep, !failure, latencyMs);
    if (load !== undefined) this.applyLoad(ep, load);
  }

  /**
   * Marks an endpoint available or not (e.g. its connection is not READY) without forgetting its stats, as
   * `setEndpoints()` would. Unavailable endpoints are never picked; when none is available `pick()` throws
   * NoEndpointsError. Unknown ids are ignored. Changing availability rebuilds the pickable set: O(n).
   */
  setAvailable(instanceId: string, available: boolean): void {
    assertString('instanceId', instanceId);
    if (typeof available !== 'boolean') {
      throw new InvalidArgumentError(`available must be a boolean, got ${describeValue(available)}`);
    }
    const ep = this.byId.get(instanceId);
    if (ep === undefined || ep.available === available) return;
    ep.available = available;
    this.rebuildReady();
  }

  /**
   * Records a load report from a server (e.g. ORCA trailers, a Shoal agent report). Unknown ids are ignored (the
   * instance may have just left). Used by `weighted_least_load` and shown in `endpoints()`.
   */
  reportLoad(instanceId: string, load: EndpointLoad): void {
    assertString('instanceId', instanceId);
    validateLoad(load);
    const ep = this.byId.get(instanceId);
    if (ep === undefined) return;
    this.refreshNow();
    this.applyLoad(ep, load);
  }

  private applyLoad(ep: EndpointState, load: EndpointLoad): void {
    const now = this.nowMs;
    if (load.utilization !== undefined) ep.utilization = load.utilization;
    if (load.cpu !== undefined) ep.cpu = load.cpu;
    if (load.rps !== undefined) ep.rps = load.rps;
    if (load.eps !== undefined) ep.eps = load.eps;
    const util = Number.isNaN(ep.utilization) ? ep.cpu : ep.utilization;
    const nonEmpty = ep.rps > 0 && util > 0;
    if (!nonEmpty) ep.loadNonEmptySinceMs = NaN;
    else if (Number.isNaN(ep.loadNonEmptySinceMs) || now - ep.loadUpdatedMs > LOAD_REPORT_GAP_MS) {
      ep.loadNonEmptySinceMs = now;
    }
    ep.loadUpdatedMs = now;
  }

  /**
   * Asks the retry budget for one retry. True: go ahead (the retry's own `pick()` counts as a request). False: the
   * budget is spent; fail the call (RetryBudgetExhaustedError from @shoal/core is the error to surface).
   */
  tryRetry(): boolean {
    if (this.budget === undefined) return true;
    if (this.budget.tryWithdraw()) return true;
    this.metrics.retryBudgetRefusals.inc({ balancer: this.options.name });
    return false;
  }

  /** A copy of every endpoint's state. */
  endpoints(): readonly EndpointSnapshot[] {
    this.refreshNow();
    return this.all.map((ep) => ep.snapshot(this.nowMs, this.decayMs));
  }

  /** Stops the background timer. Later picks throw ClosedError; completing old handles stays harmless. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.metrics.flush(this.metricsSource);
    this.metrics.sources.delete(this.metricsSource);
    this.ejectEmitter.clear();
    this.returnEmitter.clear();
  }

  private refreshNow(): void {
    this.completionsSinceClockRead = 0;
    const now = this.options.clock.monotonic();
    if (now > this.nowMs) this.nowMs = now;
  }

  private rebuildReady(): void {
    const healthy: EndpointState[] = [];
    const available: EndpointState[] = [];
    for (const ep of this.all) {
      if (!ep.available) continue;
      available.push(ep);
      if (!ep.ejected) healthy.push(ep);
    }
    // Envoy's healthy panic: when too few of the endpoints we could use are healthy, the ejections are more likely
    // wrong (or the whole service is struggling) than right; spread over all of them rather than overload the rest.
    const wasPanicking = this.panic;
    this.panic =
      healthy.length < available.length &&
      healthy.length * 100 < this.options.healthyPanicThresholdPercent * available.length;
    this.ready = this.panic ? available : healthy;
    if (this.panic !== wasPanicking) {
      this.log.warn(
        { healthy: healthy.length, available: available.length, panic: this.panic },
        this.panic ? 'too few healthy endpoints: balancing over all (panic)' : 'left panic mode',
      );
    }
    this.strategy.update(this.ready as readonly Endpoint[], this.all as readonly Endpoint[]);
  }

  private eject(ep: EndpointState, reason: EjectionReason): boolean {
    const od = this.options.outlierDetection;
    if (od === false || this.outliers === undefined) return false;
    // gRPC A50: eject only while the ejected share is below maxEjectionPercent.
    if (this.ejectedCount * 100 >= od.maxEjectionPercent * this.all.length) return false;
    ep.ejectionMultiplier++;
    ep.ejections++;
    const durationMs = this.outliers.ejectionMs(ep);
    ep.ejected = true;
    ep.ejectedUntilMs = this.nowMs + durationMs;
    this.ejectedCount++;
    this.metrics.ejections.inc({ balancer: this.options.name, reason });
    this.log.warn({ instanceId: ep.id, reason, durationMs }, 'endpoint ejected');
    this.rebuildReady();
    this.ejectEmitter.emit({ instance: ep.instance, reason, durationMs });
    return true;
  }

  private startSlowStart(ep: EndpointState, now: number): void {
    const s = this.options.slowStart;
    if (!this.slowStartApplies || s === false) return;
    ep.slowStartSinceMs = now;
    ep.slowStartFactor = slowStartFactor(s, 0);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.options.clock.setTimeout(() => this.tick(), this.options.sweepIntervalMs);
    this.timer.unref();
  }

  /** The one background timer: sweeps stale handles, returns ejected endpoints, ramps slow start, rotates budgets. */
  private tick(): void {
    this.timer = undefined;
    if (this.closed) return;
    try {
      this.refreshNow();
      const now = this.nowMs;
      this.ticks++;
      let changed = false;
      if (this.ticks % this.ticksPerGeneration === 0) changed = this.advanceGeneration();
      this.budget?.rotate();
      // gRPC A50 order: the interval's ejections and multiplier decay first, then returns from ejection.
      this.runInterval(now);
      if (this.returnAndRamp(now)) changed = true;
      if (changed) this.rebuildReady();
      this.strategy.tick?.(now);
    } catch (error) {
      this.log.error(
        { err: error instanceof Error ? { name: error.name, message: error.message } : String(error) },
        'balancer tick failed',
      );
    } finally {
      this.schedule();
    }
  }

  /** Every `intervalMs` (on the tick): outlier detection's interval checks, or just the rolling counters. */
  private runInterval(now: number): void {
    const od = this.options.outlierDetection;
    if (now - this.lastIntervalMs < (od === false ? DEFAULT_INTERVAL_MS : od.intervalMs)) return;
    this.lastIntervalMs = now;
    if (this.outliers !== undefined) {
      this.outliers.runInterval(this.all, (ep, reason) => this.eject(ep, reason));
      return;
    }
    for (const ep of this.all) {
      ep.prevWindowRequests = ep.windowRequests;
      ep.prevWindowFailures = ep.windowFailures;
      ep.windowRequests = 0;
      ep.windowFailures = 0;
    }
  }

  /** Brings back endpoints whose ejection ended and ramps slow start. True if the strategy must be updated. */
  private returnAndRamp(now: number): boolean {
    let changed = false;
    const slowStart = this.options.slowStart;
    for (const ep of this.all) {
      if (ep.ejected && now >= ep.ejectedUntilMs) {
        ep.ejected = false;
        ep.consecutiveFailures = 0;
        this.ejectedCount--;
        this.startSlowStart(ep, now);
        changed = true;
        this.log.info({ instanceId: ep.id }, 'endpoint returned from ejection');
        this.returnEmitter.emit(ep.instance);
      }
      if (ep.slowStartFactor < 1 && slowStart !== false) {
        // Strategies apply the factor as a weight: a change rebuilds their tables (O(n), once per tick at most).
        ep.slowStartFactor = slowStartFactor(slowStart, now - ep.slowStartSinceMs);
        changed = true;
      }
    }
    return changed;
  }

  /** Expires handles older than two generations: they no longer count as in flight. True if any expired. */
  private advanceGeneration(): boolean {
    this.generation++;
    let expired = 0;
    for (const ep of this.all) {
      const stale = ep.inFlightPrev;
      if (stale > 0) {
        ep.inFlight -= stale;
        expired += stale;
      }
      ep.inFlightPrev = ep.inFlightCur;
      ep.inFlightCur = 0;
    }
    if (expired > 0) {
      this.metrics.handlesExpired.inc({ balancer: this.options.name }, expired);
      this.log.debug({ expired }, 'swept pick handles never completed');
    }
    return expired > 0;
  }
}

/** An endpoint list as `setEndpoints()` accepts it: an array of instances with unique ids and sane weights. */
function validateInstances(instances: readonly Instance[]): void {
  if (!Array.isArray(instances)) {
    throw new InvalidArgumentError(`instances must be an array of Instance, got ${describeValue(instances)}`);
  }
  const seen = new Map<string, number>();
  instances.forEach((inst: Instance, i: number) => {
    assertObject(`instances[${i}]`, inst);
    assertString(`instances[${i}].id`, inst.id);
    const w: unknown = inst.weight;
    if (w !== undefined && !(typeof w === 'number' && Number.isFinite(w) && w > 0 && w <= MAX_INSTANCE_WEIGHT)) {
      throw new InvalidArgumentError(
        `instances[${i}].weight must be a finite number > 0 and <= ${MAX_INSTANCE_WEIGHT}, got ${describeValue(w)}`,
      );
    }
    const dup = seen.get(inst.id);
    if (dup !== undefined) {
      throw new InvalidArgumentError(
        `instances[${i}].id duplicates instances[${dup}].id, got ${describeValue(inst.id)}`,
      );
    }
    seen.set(inst.id, i);
  });
}

function validateLoad(load: EndpointLoad): void {
  assertObject('load', load);
  for (const key of ['utilization', 'rps', 'eps', 'cpu'] as const) {
    const v = load[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
      throw new InvalidArgumentError(`load.${key} must be a finite number >= 0, got ${describeValue(v)}`);
    }
  }
}
