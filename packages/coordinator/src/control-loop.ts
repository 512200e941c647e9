import {
  componentLogger,
  errorFields,
  realClock,
  withTimeout,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import { ServiceAutoscaler, type ControllerStep, type Observation, type Policy, type PolicyState } from '@shoal/policy';
import type { Actuator } from './actuators/actuator.js';
import type { ServiceConfig } from './config.js';
import { ScaleToZeroGate } from './activation.js';
import { activationTargetsOf, wakeSettingsOf } from './config.js';
import { WakeDemand, type WakeReport } from './wake-demand.js';
import type { ExternalMetricsReader } from './external-metrics.js';
import type { Ingest } from './ingest.js';
import type { CoordinatorMetrics } from './metrics.js';
import { RingBuffer } from '@shoal/core/internal';
import type { ServiceWindow } from './service-window.js';
import type { StateStore } from './state-store.js';

/** One entry of the decision log (`GET /v1/services/:name/decisions`). */
export interface DecisionRecord {
  atMs: number;
  service: string;
  currentReplicas: number;
  desiredReplicas: number;
  /** What the policy recommended before stabilization and limits. */
  recommendation?: number;
  victims?: string[];
  reasons: string[];
  /** True when the actuator was told (false in dry-run, on hold, or when nothing changed). */
  applied: boolean;
  dryRun: boolean;
  limitedBy?: string;
  panicking?: boolean;
  /** Drain outcome per victim. */
  drained?: Record<string, string>;
  /** Set when calls waiting at clients woke the service from zero: how many were waiting. */
  wokenByCalls?: number;
  error?: string;
  durationMs: number;
}

export interface ServiceControllerOptions {
  service: ServiceConfig;
  policy: Policy;
  window: ServiceWindow;
  actuator: Actuator;
  ingest: Ingest;
  metrics: CoordinatorMetrics;
  stateStore: StateStore;
  syncPeriodMs: number;
  decisionLogSize: number;
  dryRun: boolean;
  /** Coordinator id written with persisted state. */
  id: string;
  /** Called after every recorded decision (the KEDA scaler's StreamIsActive listens). */
  onDecision?: (record: DecisionRecord) => void;
  /** The service's external metrics (targets with a PromQL `query`), read every tick. */
  externalMetrics?: ExternalMetricsReader;
  /** Time limit for one actuator read. Default 15000. */
  actuatorTimeoutMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/**
 * The control loop of one service: every sync period, observe the window, `decide()`, drain the victims and
 * drive the actuator, then log the decision (ring buffer, pino line, metrics) and persist the policy state. Runs
 * only while this coordinator leads; after it starts leading, scale-down waits for one scale-down stabilization
 * window of fresh data, so a new leader never removes capacity on the strength of an empty window.
 */
export class ServiceController {
  readonly decisions: RingBuffer<DecisionRecord>;
  private readonly log: Logger;
  private readonly clock: Clock;
  /** The controller of @shoal/policy the simulator runs too: state, leadership guard, decide(). */
  private readonly autoscaler: ServiceAutoscaler;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private leading = false;
  private lastDesired: number | undefined;
  private lastCurrent: number | undefined;
  private lastScaleAtMs: number | undefined;
  private stopped = true;
  private zeroGate: ScaleToZeroGate | undefined;
  /** Calls waiting at clients (client wake); undefined when the service has no `wake` section. */
  private wakeDemand: WakeDemand | undefined;
  private wakeTick: Promise<unknown> | undefined;

  constructor(private options: ServiceControllerOptions) {
    this.decisions = new RingBuffer(options.decisionLogSize);
    this.log = componentLogger(options.logger, 'control-loop', { service: options.service.name });
    this.clock = options.clock ?? realClock;
    this.autoscaler = new ServiceAutoscaler({ policy: options.policy });
  }

  get name(): string {
    return this.options.service.name;
  }

  get config(): ServiceConfig {
    return this.options.service;
  }

  get desiredReplicas(): number | undefined {
    return this.lastDesired;
  }

  get currentReplicas(): number | undefined {
    return this.lastCurrent;
  }

  get isLeading(): boolean {
    return this.leading;
  }

  /** Swaps in a reloaded config/policy (same actuator). */
  update(service: ServiceConfig, policy: Policy, dryRun: boolean, syncPeriodMs: number): void {
    this.options = { ...this.options, service, policy, dryRun, syncPeriodMs };
    this.autoscaler.setPolicy(policy);
    const wake = wakeSettingsOf(service);
    if (!wake) this.wakeDemand = undefined;
    else this.wakeDemand?.setTtl(wake.demandTtlMs);
  }

  /**
   * A client's (validated, authenticated) count of calls waiting for this service. When it asks for more replicas
   * than were last decided, the loop runs now instead of at the next sync period: a call waiting at zero costs the
   * time to start a replica, not a sync period more. Returns the total waiting over every client.
   */
  reportWaiting(report: WakeReport): number {
    const wake = wakeSettingsOf(this.options.service);
    if (!wake) return 0;
    this.wakeDemand ??= new WakeDemand(wake.demandTtlMs);
    const now = this.clock.now();
    this.wakeDemand.record(report, now);
    const total = this.wakeDemand.total(now);
    this.options.metrics.wakeWaitingCalls.set({ service: this.name }, total);
    this.tickForWake(total, wake.callsPerReplica);
    return total;
  }

  /** Runs the loop now when `total` waiting calls need more replicas than were last decided (one such run at a time). */
  private tickForWake(total: number, callsPerReplica: number): void {
    const sized = Math.min(this.options.service.maxReplicas, Math.ceil(total / callsPerReplica));
    if (total === 0 || !this.leading || this.stopped || sized <= (this.lastDesired ?? 0) || this.wakeTick) return;
    this.wakeTick = this.tick()
      .catch((error: unknown) => this.log.error(errorFields(error), 'wake tick failed'))
      .finally(() => {
        this.wakeTick = undefined;
        // More calls may have arrived while it ran.
        const wake = wakeSettingsOf(this.options.service);
        if (wake && this.wakeDemand) this.tickForWake(this.wakeDemand.total(this.clock.now()), wake.callsPerReplica);
      });
  }

  /** Swaps in a reloaded service's external metrics (undefined: none). */
  setExternalMetrics(source: ExternalMetricsReader | undefined): void {
    const { externalMetrics: _old, ...rest } = this.options;
    this.options = source ? { ...rest, externalMetrics: source } : rest;
  }

  /**
   * Starts ticking after `initialDelayMs` (the coordinator staggers services across the sync period so their
   * loops do not all block the event loop at the same instant); ticks do nothing until `lead(true)`.
   */
  start(initialDelayMs = 0): void {
    this.stopped = false;
    this.schedule(initialDelayMs);
  }

  /** Called when this coordinator becomes (or stops being) the one that decides. */
  async lead(leading: boolean): Promise<void> {
    if (leading === this.leading) return;
    this.leading = leading;
    if (!leading) return;
    // The guard starts now (a tick while the state loads holds scale-down too); a saved state resumes below.
    const since = this.clock.now();
    this.autoscaler.lead(since);
    let saved: PolicyState | undefined;
    try {
      const persisted = await this.options.stateStore.load(this.name);
      if (persisted) {
        saved = persisted.policyState;
        this.lastDesired = persisted.desiredReplicas;
        if (persisted.lastScaleAtMs !== undefined) this.lastScaleAtMs = persisted.lastScaleAtMs;
        this.options.actuator.assumeReplicas?.(persisted.desiredReplicas);
        this.log.info({ desired: persisted.desiredReplicas, by: persisted.by }, 'resumed policy state');
      }
    } catch (error) {
      this.log.warn(errorFields(error), 'cannot load policy state; starting fresh');
    }
    if (saved) this.autoscaler.lead(since, saved);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      if (this.running) {
        // Still draining/actuating from the last period: skip this one.
        this.schedule(this.options.syncPeriodMs);
        return;
      }
      this.exclusive()
        .catch((error: unknown) => this.log.error(errorFields(error), 'control loop failed'))
        .finally(() => this.schedule(this.options.syncPeriodMs));
    }, ms);
    this.timer.unref();
  }

  /** One iteration now (also callable directly, e.g. by tests); waits for a running one first. */
  async tick(): Promise<DecisionRecord | undefined> {
    while (this.running) await this.running.catch(() => undefined);
    return this.exclusive();
  }

  private exclusive(): Promise<DecisionRecord | undefined> {
    const run = this.runTick();
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.running = settled;
    void settled.then(() => {
      if (this.running === settled) this.running = undefined;
    });
    return run;
  }

  /** Returns the record, or undefined when not leading. */
  private async runTick(): Promise<DecisionRecord | undefined> {
    if (!this.leading) return undefined;
    const started = this.clock.monotonic();
    const now = this.clock.now();
    const current = await this.readCurrent(now, started);
    if (typeof current !== 'number') return current;
    this.lastCurrent = current;
    // Silent instances the actuator still counts stay in the window as missing (HPA rules); the rest are forgotten.
    let observation = this.autoscaler.observe(this.options.window, now, current);
    let problems: string[] = [];
    if (this.options.externalMetrics) {
      const external = await this.options.externalMetrics.read();
      problems = external.problems;
      observation = { ...observation, metrics: { ...observation.metrics, ...external.values } };
    }
    this.countInstances(observation);
    const decided = this.decideGuarded(observation);
    if (problems.length > 0) {
      if ('error' in decided) decided.reason = [decided.reason, ...problems].join('; ');
      else decided.record.reasons.push(...problems);
    }
    if ('error' in decided) {
      return this.record(this.failedRecord(now, current, current, decided.reason, decided.error, started));
    }
    const { record, state } = decided;
    this.scaleToZero(observation, record, state);
    this.lastDesired = record.desiredReplicas;
    this.options.metrics.desiredReplicas.set({ service: this.name }, record.desiredReplicas);
    this.options.metrics.currentReplicas.set({ service: this.name }, current);
    if (record.desiredReplicas !== current && !this.options.dryRun) await this.apply(record, now);
    if (record.wokenByCalls !== undefined && record.applied) this.options.metrics.wakes.inc({ service: this.name });
    record.durationMs = this.clock.monotonic() - started;
    this.persist(state, record.desiredReplicas, now);
    return this.record(record);
  }

  /** With minReplicas 0: KEDA's activation and idle cooldown over the policy's count (activation.ts). */
  private scaleToZero(observation: Observation, record: DecisionRecord, state: PolicyState): void {
    const { service } = this.options;
    if (service.minReplicas !== 0) {
      this.zeroGate = undefined;
      return;
    }
    this.zeroGate ??= new ScaleToZeroGate(activationTargetsOf(service), service.idleCooldownMs, observation.now);
    const wake = wakeSettingsOf(service);
    const waiting = this.wakeDemand?.total(observation.now) ?? 0;
    if (wake) this.options.metrics.wakeWaitingCalls.set({ service: this.name }, waiting);
    const { desired, reason } = this.zeroGate.adjust(
      observation,
      record.desiredReplicas,
      wake ? { waiting, callsPerReplica: wake.callsPerReplica, maxReplicas: service.maxReplicas } : undefined,
    );
    if (wake && waiting > 0 && observation.currentReplicas === 0 && desired > 0) record.wokenByCalls = waiting;
    if (reason) record.reasons.push(reason);
    if (desired === record.desiredReplicas) return;
    const current = observation.currentReplicas;
    correctScaleEvents(state, observation.now, current, record.desiredReplicas, desired);
    record.desiredReplicas = desired;
    if (record.victims) {
      const victims = desired < current ? record.victims.slice(0, current - desired) : [];
      if (victims.length > 0) record.victims = victims;
      else delete record.victims;
    }
  }

  private failedRecord(
    now: number,
    current: number,
    desired: number,
    reason: string,
    error: unknown,
    started: number,
  ): DecisionRecord {
    return {
      atMs: now,
      service: this.name,
      currentReplicas: current,
      desiredReplicas: desired,
      reasons: [reason],
      applied: false,
      dryRun: this.options.dryRun,
      error: (error as Error).message,
      durationMs: this.clock.monotonic() - started,
    };
  }

  /** The actuator's current count, or the (recorded) failure record when it cannot be read in time. */
  private async readCurrent(now: number, started: number): Promise<number | DecisionRecord> {
    const { actuator, metrics } = this.options;
    try {
      return await withTimeout(
        actuator.getReplicas(),
        this.options.actuatorTimeoutMs ?? 15_000,
        `${actuator.type} getReplicas`,
        {
          clock: this.clock,
        },
      );
    } catch (error) {
      metrics.actuatorErrors.inc({ service: this.name });
      const reason = 'cannot read the current replica count';
      return this.record(this.failedRecord(now, this.lastCurrent ?? 0, this.lastDesired ?? 0, reason, error, started));
    }
  }

  /** Instances by state (ready, unready, missing, draining) for the gauges. */
  private countInstances(observation: Observation): void {
    const counts = { ready: 0, unready: 0, missing: 0, draining: 0 };
    for (const i of observation.instances) {
      if (i.deleting) counts.draining++;
      else if (Object.keys(i.metrics).length === 0) counts.missing++;
      else if (i.ready) counts.ready++;
      else counts.unready++;
    }
    for (const [state, n] of Object.entries(counts)) {
      this.options.metrics.instances.set({ service: this.name, state }, n);
    }
  }

  /**
   * The controller's step (`decide()`, then the leadership guard) as a decision record, with the state to keep;
   * or why decide() refused the observation.
   */
  private decideGuarded(
    observation: Observation,
  ): { record: DecisionRecord; state: PolicyState } | { reason: string; error: unknown } {
    let step: ControllerStep;
    try {
      step = this.autoscaler.step(observation);
    } catch (error) {
      return { reason: 'decide() refused the observation', error };
    }
    const record: DecisionRecord = {
      atMs: step.atMs,
      service: this.name,
      currentReplicas: step.currentReplicas,
      desiredReplicas: step.desiredReplicas,
      recommendation: step.recommendation,
      reasons: step.reasons,
      applied: false,
      dryRun: this.options.dryRun,
      limitedBy: step.limitedBy,
      panicking: step.panicking,
      durationMs: 0,
      ...(step.victims ? { victims: step.victims } : {}),
    };
    return { record, state: this.autoscaler.state as PolicyState };
  }

  /** Drains the victims of a scale-down, then tells the actuator; the outcome goes into the record. */
  private async apply(record: DecisionRecord, now: number): Promise<void> {
    const { service, window, actuator, metrics, ingest } = this.options;
    const { currentReplicas: current, desiredReplicas: desired } = record;
    let victims = record.victims;
    try {
      if (victims && victims.length > 0 && desired < current && actuator.selectVictims) {
        // Only instances the actuator removes first now are drained and passed on; the record says why not the others.
        const selection = await actuator.selectVictims(victims);
        victims = [...selection.victims];
        record.reasons.push(...selection.reasons);
        if (victims.length > 0) record.victims = victims;
        else delete record.victims;
      }
      if (desired < current && victims && victims.length > 0) {
        const reason = `scale down ${current} → ${desired}`;
        const outcomes = await Promise.all(
          victims.map(
            async (id) => [id, await ingest.drain(service.name, id, service.drainTimeoutMs, reason)] as const,
          ),
        );
        record.drained = Object.fromEntries(outcomes);
      }
      await actuator.scaleTo(desired, victims ? { victims } : {});
      for (const id of victims ?? []) window.remove(id);
      record.applied = true;
      this.lastScaleAtMs = now;
    } catch (error) {
      metrics.actuatorErrors.inc({ service: service.name });
      record.error = (error as Error).message;
    }
  }

  /** Saves the policy state (fire and forget: a failed save is logged, the next tick saves again). */
  private persist(policyState: PolicyState, desiredReplicas: number, now: number): void {
    this.options.stateStore
      .save(this.name, {
        policyState,
        desiredReplicas,
        ...(this.lastScaleAtMs !== undefined ? { lastScaleAtMs: this.lastScaleAtMs } : {}),
        updatedAtMs: now,
        by: this.options.id,
      })
      .catch((error: unknown) => this.log.warn(errorFields(error), 'cannot persist policy state'));
  }

  private record(record: DecisionRecord): DecisionRecord {
    const { metrics } = this.options;
    const direction =
      record.desiredReplicas > record.currentReplicas
        ? 'up'
        : record.desiredReplicas < record.currentReplicas
          ? 'down'
          : 'none';
    metrics.decisions.inc({ service: record.service, direction, applied: String(record.applied) });
    metrics.loopDuration.observe({ service: record.service }, record.durationMs / 1000);
    this.decisions.push(record);
    this.options.onDecision?.(record);
    const fields = {
      current: record.currentReplicas,
      desired: record.desiredReplicas,
      applied: record.applied,
      dryRun: record.dryRun,
      reasons: record.reasons,
      ...(record.victims ? { victims: record.victims } : {}),
      ...(record.drained ? { drained: record.drained } : {}),
      ...(record.error ? { error: record.error } : {}),
    };
    if (record.error) this.log.warn(fields, 'decision failed');
    else if (direction !== 'none') this.log.info(fields, record.dryRun ? 'decision (dry run)' : 'decision');
    else this.log.debug(fields, 'decision');
    return record;
  }
}

/**
 * The policy engine recorded this decision's scale event for its own count (`engine`); the scale-to-zero gate
 * changed it to `desired`. Records the event that happens instead, so the rate limits of later decisions count
 * what was done: a service held at 0 below its activation value would otherwise collect a phantom scale-up every
 * sync period, and its wake would find the scale-up limit spent (`ScaleUpLimit: 0`, one replica instead of
 * `ceil(value / target)`).
 */
function correctScaleEvents(state: PolicyState, now: number, current: number, engine: number, desired: number): void {
  if (engine !== current) {
    const events = engine > current ? state.scaleUpEvents : state.scaleDownEvents;
    const k = events.findLastIndex((e) => e.t === now && e.change === Math.abs(engine - current));
    if (k >= 0) events.splice(k, 1);
  }
  if (desired !== current) {
    (desired > current ? state.scaleUpEvents : state.scaleDownEvents).push({
      t: now,
      change: Math.abs(desired - current),
    });
  }
}
