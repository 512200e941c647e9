import {
  ClosedError,
  componentLogger,
  errorFields,
  realClock,
  type Clock,
  type Disposable,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import type { Actuator, ReplicaInfo, ScaleOptions } from '../actuators/actuator.js';
import type { InstanceView } from '../service-window.js';
import { specVersion, type LocalReplicaSpec } from './replica-spec.js';
import { ROLLOUT_STATES, type RolloutMetrics } from './rollout-metrics.js';
import type { PersistedRollout, RolloutStore } from './rollout-store.js';
import { RolloutError } from './rollout-error.js';
import {
  DEFAULT_THRESHOLDS,
  VersionComparison,
  type ComparisonThresholds,
  type SideSummary,
} from './version-comparison.js';

const PAUSED = 'paused: no old replica is replaced until resumed (scale-ups still start new-version replicas)';

/** How a rollout proceeds (a service's `rollout` config section). */
export interface RolloutOptions {
  /** Replicas above the current count a rollout may run. Default 1. */
  maxSurge: number;
  /** Replicas below the current count a rollout may leave ready. Default 0. */
  maxUnavailable: number;
  /** After the first new replica is ready, how long both versions take traffic before any old one goes. Default 30000. */
  bakeMs: number;
  /** A new replica not ready this long after it started rolls the rollout back. Default 60000. */
  readyTimeoutMs: number;
  /** A new replica that restarted this many times rolls the rollout back. Default 3. */
  crashLoopRestarts: number;
  /** Roll back by itself on a regression, a crash loop or a ready timeout. Default true. */
  autoRollback: boolean;
  /** A new replica must also be passing in Consul (when the coordinator has a `consul` section). Default true. */
  requireConsulPassing: boolean;
  /** How often the rollout looks and acts. Default 500. */
  stepMs: number;
  analysis: ComparisonThresholds;
}

export const DEFAULT_ROLLOUT_OPTIONS: RolloutOptions = Object.freeze({
  maxSurge: 1,
  maxUnavailable: 0,
  bakeMs: 30_000,
  readyTimeoutMs: 60_000,
  crashLoopRestarts: 3,
  autoRollback: true,
  requireConsulPassing: true,
  stepMs: 500,
  analysis: DEFAULT_THRESHOLDS,
});

/** What a rollout needs of the local actuator. */
export interface RolloutActuator extends Actuator {
  readonly spec: LocalReplicaSpec;
  readonly version: string;
  setSpec(spec: LocalReplicaSpec): string;
  start(): Promise<string>;
  stop(id: string): Promise<void>;
  expectExit(id: string): void;
}

export type RolloutState = (typeof ROLLOUT_STATES)[number];
export type RollbackCause = 'errors' | 'latency' | 'crash_loop' | 'not_ready' | 'manual';

/** `GET /v1/services/:name/rollout`. */
export interface RolloutStatus {
  service: string;
  state: RolloutState;
  paused: boolean;
  /** The version being replaced and the one rolled to: the agents' `version`, else the config hash. */
  from?: { version: string; configHash: string };
  to?: { version: string; configHash: string };
  replicas: { desired: number; old: number; oldReady: number; new: number; newReady: number; draining: number };
  /** Why the rollout is where it is (waiting for readiness, baking, rolled back because ...). */
  reason?: string;
  /**
   * Set when a restarted coordinator found replicas of several versions that no readable rollout record explains
   * (the record was deleted or corrupt, or names another version): what it found and what it does about it.
   */
  warning?: string;
  rollbackCause?: RollbackCause;
  startedAtMs?: number;
  updatedAtMs?: number;
  finishedAtMs?: number;
  /** The new version against the old over the same seconds (what an automatic rollback is decided on). */
  comparison?: { old: SideSummary; new: SideSummary; verdict: string };
  /** The last events, newest last. */
  events: { atMs: number; message: string }[];
}

export interface RolloutManagerOptions {
  service: string;
  actuator: RolloutActuator;
  options?: Partial<RolloutOptions>;
  /** The service's instances as the coordinator sees them (hello, readiness, last report). */
  instances(): readonly InstanceView[];
  /** Instance ids passing in Consul; undefined while unknown (or no Consul: then `consulChecked` is false). */
  consulPassing?(): ReadonlySet<string> | undefined;
  /** Sends the drain directive and resolves once the instance is gone or the deadline passed. */
  drain(id: string, reason: string): Promise<string>;
  store: RolloutStore;
  metrics: RolloutMetrics;
  /** This coordinator's id (written with the persisted record). */
  id: string;
  /** Called with each line worth a place in the decision log. */
  onEvent?(message: string, status: RolloutStatus): void;
  logger?: Logger;
  clock?: Clock;
}

interface Active {
  direction: 'forward' | 'back';
  /** Why it started (the config change, or the rollback's cause): the reason a rollback shows throughout. */
  why: string;
  fromSpec: LocalReplicaSpec;
  toSpec: LocalReplicaSpec;
  fromHash: string;
  toHash: string;
  startedAtMs: number;
  /** When this coordinator took the rollout over from a persisted record (readiness deadlines count from here). */
  resumedAtMs?: number;
  /**
   * Replicas of several versions were found without a rollout that explains them: every replica is rolled to the
   * configured version, without bake or analysis (there may be no known version to roll back to).
   */
  converge?: string;
  firstReadyAtMs: number | undefined;
  comparison: VersionComparison;
  lastSeq: Map<string, number>;
  firstSeenAtMs: Map<string, number>;
}

/**
 * Rolling deploys of a `local` actuator's replicas, wrapped around it as the `Actuator` the control loop drives.
 *
 * Without a rollout it passes everything through. `begin(spec)` rolls a new command/args/env/cwd out: the count
 * the control loop sees stays the current one (surge replicas are the rollout's), new replicas start while at
 * most `maxSurge` are above it; a new replica counts once its agent said hello and reports ready (and, with
 * Consul, it passes there); only then is an old replica drained (drain directive, then SIGTERM) — never leaving
 * fewer than `count - maxUnavailable` ready. Scaling keeps working: a new count applies to the new version.
 * While both versions take traffic their reports are compared; a clear regression, a crash loop or a replica
 * not ready in time rolls back by the same procedure. Every change is persisted, logged and counted.
 */
export class RolloutManager implements Actuator {
  readonly type: Actuator['type'];
  private readonly log: Logger;
  private readonly clock: Clock;
  private opts: RolloutOptions;
  private active: Active | undefined;
  private state: RolloutState = 'none';
  private paused = false;
  private target = 0;
  private assumed: number | undefined;
  private pendingStarts = 0;
  private readonly draining = new Set<string>();
  private readonly displayVersions = new Map<string, string>();
  private reason: string | undefined;
  private warning: string | undefined;
  /** What a restart found (versions by config hash): the warning is rendered with the agents' versions once known. */
  private mixed: { found: Map<string, number>; why: string; target: string } | undefined;
  private rollbackCause: RollbackCause | undefined;
  private record: PersistedRollout | undefined;
  private readonly events: { atMs: number; message: string }[] = [];
  private timer: TimerHandle | undefined;
  private stepping: Promise<void> | undefined;
  private rerun = false;
  private loaded: Promise<void> = Promise.resolve();
  private closed = false;
  private lastVerdict = '';

  constructor(private readonly o: RolloutManagerOptions) {
    this.type = o.actuator.type;
    this.log = componentLogger(o.logger, 'rollout', { service: o.service });
    this.clock = o.clock ?? realClock;
    this.opts = { ...DEFAULT_ROLLOUT_OPTIONS, ...o.options };
    this.updateMetrics();
  }

  /** The wrapped actuator. */
  get inner(): RolloutActuator {
    return this.o.actuator;
  }

  get isActive(): boolean {
    return this.active !== undefined;
  }

  setOptions(options: Partial<RolloutOptions>): void {
    this.opts = { ...DEFAULT_ROLLOUT_OPTIONS, ...options };
  }

  // ---- Actuator -------------------------------------------------------------------------------------------------

  async getReplicas(): Promise<number> {
    await this.loaded;
    return this.active ? this.target : this.o.actuator.getReplicas();
  }

  async scaleTo(replicas: number, options: ScaleOptions = {}): Promise<void> {
    await this.loaded;
    if (!this.active) return this.o.actuator.scaleTo(replicas, options);
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new RangeError(`replicas must be an integer >= 0, got ${replicas}`);
    }
    const before = this.target;
    this.target = replicas;
    if (replicas !== before) {
      this.event(
        `scaled ${before} → ${replicas} during the rollout (applies to ${this.versionOf(this.active.toHash)})`,
      );
      this.persist();
    }
    // Victims were drained by the control loop already.
    await Promise.all((options.victims ?? []).map((id) => this.o.actuator.stop(id)));
    this.kick();
  }

  watch(listener: (replicas: number) => void): Disposable {
    return this.o.actuator.watch(listener);
  }

  assumeReplicas(replicas: number): void {
    // The count the control loop last decided (its persisted state): what a convergence keeps, surge excluded.
    this.assumed = replicas;
    if (this.active?.converge && this.target !== replicas) {
      this.event(`keeps ${replicas} replica(s), the count last decided before the restart (found ${this.target})`);
      this.target = replicas;
      this.persist();
    }
    this.o.actuator.assumeReplicas?.(replicas);
  }

  replicas(): readonly ReplicaInfo[] {
    return this.o.actuator.replicas();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.stepping;
    await this.o.actuator.close();
  }

  // ---- Rollout control ------------------------------------------------------------------------------------------

  /** Starts rolling `spec` out (a reloaded config). A rollout in progress is redirected to the new spec. */
  async begin(spec: LocalReplicaSpec, why = 'config changed'): Promise<void> {
    if (this.closed) throw new ClosedError('rollout manager is closed');
    await this.loaded;
    const fromSpec = this.active ? this.active.toSpec : this.o.actuator.spec;
    const toHash = specVersion(spec);
    if (toHash === specVersion(fromSpec) && !this.active) return;
    if (!this.active) this.target = await this.o.actuator.getReplicas();
    this.warning = undefined;
    this.mixed = undefined;
    this.startRollout('forward', fromSpec, spec, why);
  }

  /** Stops making progress (new replicas keep starting only for scale-ups; no old one is drained). */
  pause(): RolloutStatus {
    if (!this.active) throw this.notInProgress('pause');
    if (!this.paused) {
      this.paused = true;
      this.reason = PAUSED;
      this.event('paused');
      this.persist();
    }
    return this.status();
  }

  resume(): RolloutStatus {
    if (!this.active) throw this.notInProgress('resume');
    if (this.paused) {
      this.paused = false;
      // The next step (at once) says where the rollout is; until then, not "paused".
      this.reason = 'resumed';
      this.event('resumed');
      this.persist();
      this.kick();
    }
    return this.status();
  }

  /** Rolls back to the previous version: during a rollout, or after one completed. */
  async undo(): Promise<RolloutStatus> {
    await this.loaded;
    const r = this.record;
    if (this.active?.direction === 'forward' && !this.active.converge) {
      this.rollBack('manual', 'undo requested');
    } else if (this.active) {
      throw new RolloutError(
        'SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO',
        this.active.converge
          ? `${this.o.service}: cannot undo: the replicas are being converged to ${this.versionOf(this.active.toHash)} and no previous version is known (${this.active.converge})`
          : `${this.o.service}: cannot undo: a rollback to ${this.versionOf(this.active.toHash)} is already in progress`,
      );
    } else if (r && this.state === 'completed' && specVersion(r.fromSpec) !== specVersion(r.toSpec)) {
      this.target = await this.o.actuator.getReplicas();
      this.startRollout('back', r.toSpec, r.fromSpec, 'undo requested');
      this.rollbackCause = 'manual';
      this.o.metrics.rollbacks.inc({ service: this.o.service, cause: 'manual' });
    } else {
      throw new RolloutError(
        'SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO',
        `${this.o.service}: nothing to undo: ${
          !r || this.state === 'none'
            ? 'no rollout has completed'
            : this.state === 'rolled-back'
              ? `the last rollout was already rolled back to ${r.toVersion}`
              : `the last rollout converged the replicas to ${r.toVersion} and no previous version is known`
        }`,
      );
    }
    return this.status();
  }

  /**
   * Says that a config change was refused (it cannot be rolled out): a line in the events and the decision log,
   * the running version untouched.
   */
  refused(error: RolloutError): void {
    this.event(`config change refused (${error.code}): ${error.message}`, 'warn');
  }

  private notInProgress(action: 'pause' | 'resume'): RolloutError {
    return new RolloutError(
      'SHOAL_ERR_ROLLOUT_NOT_IN_PROGRESS',
      `${this.o.service}: cannot ${action}: no rollout in progress (state ${this.state}); a rollout starts when the config changes the local actuator's command, args, env or cwd`,
    );
  }

  /**
   * Picks up a persisted rollout after a coordinator restart, before the control loop first scales: a rollout to
   * the configured version resumes; a rollback away from it resumes (or, if finished, keeps the good version
   * running and says the config still names the bad one). Anything else is history.
   */
  restore(): Promise<void> {
    this.loaded = this.doRestore().catch((error: unknown) =>
      this.log.warn(errorFields(error), 'cannot load the persisted rollout; starting without one'),
    );
    return this.loaded;
  }

  private async doRestore(): Promise<void> {
    // The replicas adopted from the previous coordinator first: the versions they run are what the record explains.
    await this.o.actuator.getReplicas();
    let saved: PersistedRollout | undefined;
    let unreadable: string | undefined;
    try {
      saved = await this.o.store.load(this.o.service);
    } catch (error) {
      unreadable = error instanceof Error ? error.message : String(error);
    }
    if (saved) this.restoreRecord(saved);
    if (!this.active) this.convergeIfMixed(saved, unreadable);
    this.updateMetrics();
  }

  private restoreRecord(saved: PersistedRollout): void {
    this.record = saved;
    const configured = this.o.actuator.version;
    const fromHash = specVersion(saved.fromSpec);
    const toHash = specVersion(saved.toSpec);
    this.displayVersions.set(fromHash, saved.fromVersion);
    this.displayVersions.set(toHash, saved.toVersion);
    if (saved.warning) this.warning = saved.warning;
    if (saved.state === 'rolling-out' && toHash === configured) {
      this.resumeRollout(saved, 'forward', 'resumed after a coordinator restart');
    } else if (saved.state === 'rolling-back' && (fromHash === configured || toHash === configured)) {
      this.o.actuator.setSpec(saved.toSpec);
      this.rollbackCause = saved.rollbackCause;
      this.resumeRollout(saved, 'back', 'rollback resumed after a coordinator restart');
    } else if (saved.state === 'rolled-back' && (fromHash === configured || toHash === configured)) {
      this.o.actuator.setSpec(saved.toSpec);
      this.state = 'rolled-back';
      this.rollbackCause = saved.rollbackCause;
      this.reason =
        fromHash === configured
          ? `${saved.reason ?? 'rolled back'}; the config still names the rolled-back version ${saved.fromVersion}, so ${saved.toVersion} keeps running`
          : saved.reason;
      if (fromHash === configured) this.event(this.reason ?? 'rolled back', 'warn');
    } else if (saved.state === 'completed' && toHash === configured) {
      this.state = 'completed';
      this.reason = saved.reason;
    } else {
      this.event(
        `a ${saved.state} rollout of ${saved.toVersion} (from ${saved.fromVersion}) was persisted, but the config names ${configured}; it is history`,
      );
    }
  }

  /**
   * After a restart with no rollout to resume: replicas of a version other than the configured one that no record
   * explains (the record is gone, unreadable, or about other versions) are said loudly — error log, status
   * `warning`, decision log — and rolled to the configured version by the usual zero-failure procedure.
   */
  private convergeIfMixed(saved: PersistedRollout | undefined, unreadable: string | undefined): void {
    const target = this.o.actuator.version;
    const live = this.o.actuator.replicas().filter((r) => r.state !== 'stopping');
    const others = live.filter((r) => r.version !== undefined && r.version !== target);
    if (others.length === 0) return;
    const byVersion = new Map<string, number>();
    for (const r of live) byVersion.set(r.version ?? '?', (byVersion.get(r.version ?? '?') ?? 0) + 1);
    const why = unreadable
      ? `the rollout record is unreadable (${unreadable})`
      : saved
        ? `the persisted ${saved.state} rollout (${saved.fromVersion} → ${saved.toVersion}) does not explain them`
        : 'no rollout record was found (deleted, or never written)';
    this.mixed = { found: byVersion, why, target };
    const warning = this.mixedWarning() as string;
    // A previous version we know the spec of (from the record) can still be undone to; otherwise there is none.
    const otherHashes = new Set(others.map((r) => r.version));
    const known = saved ? [saved.fromSpec, saved.toSpec].find((s) => otherHashes.has(specVersion(s))) : undefined;
    this.target = this.assumed ?? live.length;
    this.startRollout('forward', known ?? this.o.actuator.spec, this.o.actuator.spec, warning, warning);
  }

  private mixedWarning(): string | undefined {
    const m = this.mixed;
    if (!m) return undefined;
    const found = [...m.found].map(([v, n]) => `${n} × ${this.versionOf(v)}`).join(', ');
    return `mixed versions after a coordinator restart: found ${found} and ${m.why}; rolling every replica to the configured version ${this.versionOf(m.target)}`;
  }

  private resumeRollout(saved: PersistedRollout, direction: 'forward' | 'back', message: string): void {
    this.active = this.newActive(direction, saved.fromSpec, saved.toSpec, saved.startedAtMs, saved.reason ?? message);
    this.active.resumedAtMs = this.clock.now();
    if (saved.converge) this.active.converge = saved.converge;
    this.state = direction === 'forward' ? 'rolling-out' : 'rolling-back';
    this.paused = saved.paused;
    this.reason = saved.reason;
    // The count it ran at; replicas that did not survive the restart are started again (of the target version).
    this.target = saved.replicas ?? this.o.actuator.replicas().filter((r) => r.state !== 'stopping').length;
    const live = this.o.actuator.replicas().filter((r) => r.state !== 'stopping');
    const toHash = this.active.toHash;
    const onTarget = live.filter((r) => r.version === toHash).length;
    this.event(
      `${message}: ${saved.fromVersion} → ${saved.toVersion} at ${this.target} replica(s); found ${onTarget} of ${saved.toVersion} and ${live.length - onTarget} of other versions running${saved.paused ? ' (paused)' : ''}`,
      'warn',
    );
    this.persist();
    this.updateMetrics();
    this.schedule(0);
  }

  status(): RolloutStatus {
    const view = this.classify();
    const a = this.active;
    const fromHash = a?.fromHash ?? (this.record ? specVersion(this.record.fromSpec) : undefined);
    const toHash = a?.toHash ?? (this.record ? specVersion(this.record.toSpec) : undefined);
    const comparison = a?.comparison.summary();
    return {
      service: this.o.service,
      state: this.state,
      paused: this.paused,
      ...(fromHash ? { from: { version: this.versionOf(fromHash), configHash: fromHash } } : {}),
      ...(toHash ? { to: { version: this.versionOf(toHash), configHash: toHash } } : {}),
      replicas: {
        desired: this.active ? this.target : view.incoming.length + view.outgoing.length,
        old: view.outgoing.length,
        oldReady: view.outgoing.filter((r) => view.ready(r.id)).length,
        new: view.incoming.length,
        newReady: view.incoming.filter((r) => view.ready(r.id)).length,
        draining: this.draining.size,
      },
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.mixedWarning() || this.warning ? { warning: this.mixedWarning() ?? this.warning } : {}),
      ...(this.rollbackCause ? { rollbackCause: this.rollbackCause } : {}),
      ...(this.record ? { startedAtMs: this.record.startedAtMs, updatedAtMs: this.record.updatedAtMs } : {}),
      ...(this.record?.finishedAtMs !== undefined ? { finishedAtMs: this.record.finishedAtMs } : {}),
      ...(comparison && a?.direction === 'forward' ? { comparison: { ...comparison, verdict: this.lastVerdict } } : {}),
      events: this.events.slice(-20),
    };
  }

  // ---- the state machine ----------------------------------------------------------------------------------------

  private newActive(
    direction: 'forward' | 'back',
    fromSpec: LocalReplicaSpec,
    toSpec: LocalReplicaSpec,
    startedAtMs: number,
    why: string,
  ): Active {
    return {
      direction,
      why,
      fromSpec,
      toSpec,
      fromHash: specVersion(fromSpec),
      toHash: specVersion(toSpec),
      startedAtMs,
      firstReadyAtMs: undefined,
      comparison: new VersionComparison(this.opts.analysis),
      lastSeq: new Map(),
      firstSeenAtMs: new Map(),
    };
  }

  private startRollout(
    direction: 'forward' | 'back',
    fromSpec: LocalReplicaSpec,
    toSpec: LocalReplicaSpec,
    why: string,
    converge?: string,
  ): void {
    const now = this.clock.now();
    this.active = this.newActive(direction, fromSpec, toSpec, now, why);
    if (converge) this.active.converge = converge;
    this.o.actuator.setSpec(toSpec);
    this.state = direction === 'forward' ? 'rolling-out' : 'rolling-back';
    this.paused = false;
    this.rollbackCause = undefined;
    this.lastVerdict = '';
    this.reason = why;
    this.record = {
      service: this.o.service,
      state: this.state === 'rolling-out' ? 'rolling-out' : 'rolling-back',
      paused: false,
      fromSpec,
      toSpec,
      fromVersion: this.versionOf(this.active.fromHash),
      toVersion: this.versionOf(this.active.toHash),
      reason: why,
      startedAtMs: now,
      updatedAtMs: now,
      by: this.o.id,
      ...(converge ? { converge, warning: converge } : {}),
    };
    if (converge) this.event(converge, 'error');
    else
      this.event(
        `${direction === 'forward' ? 'rolling out' : 'rolling back to'} ${this.versionOf(this.active.toHash)} (from ${this.versionOf(this.active.fromHash)}) over ${this.target} replica(s), maxSurge ${this.opts.maxSurge}, maxUnavailable ${this.opts.maxUnavailable}: ${why}`,
      );
    this.persist();
    this.updateMetrics();
    this.schedule(0);
  }

  private rollBack(cause: RollbackCause, why: string): void {
    const a = this.active;
    if (!a || a.direction !== 'forward') return;
    this.o.metrics.rollbacks.inc({ service: this.o.service, cause });
    const summary = `rolling back ${this.versionOf(a.toHash)} → ${this.versionOf(a.fromHash)}: ${why}`;
    const next = this.newActive('back', a.toSpec, a.fromSpec, a.startedAtMs, summary);
    this.active = next;
    this.o.actuator.setSpec(next.toSpec);
    this.state = 'rolling-back';
    this.paused = false;
    this.rollbackCause = cause;
    this.reason = summary;
    if (this.record) {
      this.record = {
        ...this.record,
        state: 'rolling-back',
        paused: false,
        fromSpec: next.fromSpec,
        toSpec: next.toSpec,
        fromVersion: this.versionOf(next.fromHash),
        toVersion: this.versionOf(next.toHash),
        reason: summary,
      };
    }
    this.event(summary, 'warn');
    this.persist();
    this.updateMetrics();
    this.kick();
  }

  private finish(): void {
    const a = this.active;
    if (!a) return;
    const forward = a.direction === 'forward';
    this.state = forward ? 'completed' : 'rolled-back';
    this.active = undefined;
    this.paused = false;
    const now = this.clock.now();
    const message = a.converge
      ? `converged every replica to ${this.versionOf(a.toHash)} in ${Math.round((now - a.startedAtMs) / 100) / 10} s`
      : forward
        ? `rollout of ${this.versionOf(a.toHash)} completed in ${Math.round((now - a.startedAtMs) / 100) / 10} s`
        : `rolled back to ${this.versionOf(a.toHash)} in ${Math.round((now - a.startedAtMs) / 100) / 10} s (${a.why})`;
    this.reason = forward ? message : a.why;
    if (this.record)
      this.record = {
        ...this.record,
        state: this.state === 'completed' ? 'completed' : 'rolled-back',
        paused: false,
        finishedAtMs: now,
      };
    this.o.metrics.rollouts.inc({ service: this.o.service, outcome: forward ? 'completed' : 'rolled_back' });
    this.event(message);
    this.persist();
    this.updateMetrics();
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs a step now, or right after the one running (a rollback decided in it drains the bad replica at once). */
  private kick(): void {
    if (!this.active) return;
    if (this.stepping) this.rerun = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.stepping || !this.active) return;
      const run = this.step()
        .catch((error: unknown) => this.log.error(errorFields(error), 'rollout step failed'))
        .finally(() => {
          this.stepping = undefined;
          const now = this.rerun;
          this.rerun = false;
          if (this.active) this.schedule(now ? 0 : this.opts.stepMs);
        });
      this.stepping = run;
    }, ms);
    this.timer.unref();
  }

  /** One look-and-act of the rollout (the timer runs it every `stepMs`; tests may call it). */
  async step(): Promise<void> {
    const a = this.active;
    if (!a || this.closed) return;
    const now = this.clock.now();
    const view = this.classify();
    for (const r of view.incoming) {
      // A replica adopted from the previous coordinator gets its readiness deadline from the takeover: its agent
      // needs time to find the new coordinator.
      if (!a.firstSeenAtMs.has(r.id)) a.firstSeenAtMs.set(r.id, Math.max(r.startedAtMs ?? now, a.resumedAtMs ?? 0));
    }
    const readyIn = view.incoming.filter((r) => view.ready(r.id));
    const readyOut = view.outgoing.filter((r) => view.ready(r.id));
    if (readyIn.length > 0 && a.firstReadyAtMs === undefined) {
      a.firstReadyAtMs = now;
      this.event(`first ${this.versionOf(a.toHash)} replica ready (${readyIn[0]?.id})`);
    }
    this.learnVersions(view.byId);

    if (a.direction === 'forward' && !a.converge && this.opts.autoRollback) {
      // Crash loops and readiness deadlines.
      for (const r of view.incoming) {
        if ((r.restarts ?? 0) >= this.opts.crashLoopRestarts) {
          return this.rollBack(
            'crash_loop',
            `replica ${r.id} of ${this.versionOf(a.toHash)} restarted ${r.restarts} times (limit ${this.opts.crashLoopRestarts})`,
          );
        }
        // An adopted replica passing in Consul serves: only its agent has not found this coordinator yet (agents
        // reconnect with their backoff, each wait at most half the time the coordinator was unreachable). Its
        // deadline counts from when that changes.
        if (r.adopted && !view.byId.has(r.id) && view.passing(r.id)) {
          a.firstSeenAtMs.set(r.id, now);
          continue;
        }
        const since = a.firstSeenAtMs.get(r.id) ?? now;
        if (!view.ready(r.id) && now - since > this.opts.readyTimeoutMs) {
          return this.rollBack(
            'not_ready',
            `replica ${r.id} of ${this.versionOf(a.toHash)} not ready ${Math.round((now - since) / 1000)} s after it started (limit ${Math.round(this.opts.readyTimeoutMs / 1000)} s)`,
          );
        }
      }
      // The same seconds: only while both versions have a ready replica taking traffic.
      if (readyIn.length > 0 && readyOut.length > 0) {
        for (const r of readyIn) this.addReport(a, 'new', view.byId.get(r.id));
        for (const r of readyOut) this.addReport(a, 'old', view.byId.get(r.id));
        const verdict = a.comparison.verdict();
        this.lastVerdict = verdict.worse ? verdict.reason : (verdict.reason ?? 'no regression');
        if (verdict.worse) return this.rollBack(verdict.kind, verdict.reason);
      }
    }

    // Scale-downs during the rollout: extra new replicas go (unready first).
    const liveIn = view.incoming.filter((r) => !this.draining.has(r.id));
    const liveOut = view.outgoing.filter((r) => !this.draining.has(r.id));
    let extraIn = liveIn.length - this.target;
    for (const r of [...liveIn].sort((x, y) => Number(view.ready(x.id)) - Number(view.ready(y.id)))) {
      if (extraIn-- <= 0) break;
      this.retire(r.id, `scale-down during the rollout`, view.ready(r.id));
    }

    if (this.paused) {
      this.reason = PAUSED;
      return;
    }

    // Start new replicas within the surge.
    const total = liveIn.length + liveOut.length + this.pendingStarts;
    let room = this.target + this.opts.maxSurge - total;
    let missing = this.target - liveIn.length - this.pendingStarts;
    while (room > 0 && missing > 0) {
      room--;
      missing--;
      this.startOne(a);
    }

    // Drain old replicas while at least target - maxUnavailable stay ready.
    let available =
      readyIn.filter((r) => !this.draining.has(r.id)).length + readyOut.filter((r) => !this.draining.has(r.id)).length;
    const floor = this.target - this.opts.maxUnavailable;
    const baked =
      a.direction === 'back' ||
      a.converge !== undefined ||
      (a.firstReadyAtMs !== undefined && now - a.firstReadyAtMs >= this.opts.bakeMs) ||
      liveOut.every((r) => !view.ready(r.id));
    const order = [...liveOut].sort((x, y) => Number(view.ready(x.id)) - Number(view.ready(y.id)));
    let drained = 0;
    for (const r of order) {
      const ready = view.ready(r.id);
      if (ready && !baked) break;
      const after = available - (ready ? 1 : 0);
      if (after < floor) break;
      available = after;
      drained++;
      this.retire(r.id, `replaced by ${this.versionOf(a.toHash)}`, ready);
    }

    if (
      view.outgoing.length === 0 &&
      this.draining.size === 0 &&
      this.pendingStarts === 0 &&
      readyIn.length >= this.target
    ) {
      this.finish();
      return;
    }
    this.reason = this.progressReason(a, view, readyIn.length, baked, drained);
    this.updateMetrics(view);
  }

  private progressReason(a: Active, view: Classified, readyIn: number, baked: boolean, drained: number): string {
    const to = this.versionOf(a.toHash);
    if (a.direction === 'back') return a.why;
    if (readyIn === 0) return `waiting for the first ${to} replica to be ready`;
    if (!baked && a.firstReadyAtMs !== undefined) {
      const left = Math.max(0, Math.ceil((this.opts.bakeMs - (this.clock.now() - a.firstReadyAtMs)) / 1000));
      return `baking: ${readyIn} ${to} replica(s) take traffic beside ${view.outgoing.length} old; ${left} s before old ones go`;
    }
    if (drained > 0) return `replacing old replicas: ${readyIn}/${this.target} ${to} ready`;
    return `waiting for ${to} replicas to be ready (${readyIn}/${this.target})`;
  }

  private addReport(a: Active, side: 'old' | 'new', view: InstanceView | undefined): void {
    const report = view?.lastReport;
    if (!view || !report) return;
    if (a.lastSeq.get(view.id) === report.seq) return;
    const first = !a.lastSeq.has(view.id);
    a.lastSeq.set(view.id, report.seq);
    // A replica's first report seen here may cover seconds before the comparison started: skip it.
    if (first) return;
    a.comparison.add(side, report);
  }

  private startOne(a: Active): void {
    this.pendingStarts++;
    this.o.actuator
      .start()
      .then((id) => {
        a.firstSeenAtMs.set(id, this.clock.now());
        this.log.info({ replica: id, version: this.versionOf(a.toHash) }, 'rollout started a replica');
      })
      .catch((error: unknown) => this.log.error(errorFields(error), 'rollout could not start a replica'))
      .finally(() => {
        this.pendingStarts--;
      });
  }

  /** Drain (when it takes traffic), then stop; the replica's exit in between is not a crash. */
  private retire(id: string, why: string, drain: boolean): void {
    if (this.draining.has(id)) return;
    this.draining.add(id);
    this.o.actuator.expectExit(id);
    this.log.info({ replica: id, drain }, `rollout retires a replica: ${why}`);
    const drained = drain ? this.o.drain(id, `rollout: ${why}`) : Promise.resolve('not-ready');
    drained
      .then((outcome) => {
        this.log.info({ replica: id, outcome }, 'rollout drained a replica');
        return this.o.actuator.stop(id);
      })
      .catch((error: unknown) =>
        this.log.warn({ replica: id, ...errorFields(error) }, 'rollout could not stop a replica'),
      )
      .finally(() => {
        this.draining.delete(id);
        this.kick();
      });
  }

  private classify(): Classified {
    const a = this.active;
    const toHash = a?.toHash ?? this.o.actuator.version;
    const reps = this.o.actuator.replicas().filter((r) => r.state !== 'stopping' || this.draining.has(r.id));
    const incoming = reps.filter((r) => r.version === toHash);
    const outgoing = reps.filter((r) => r.version !== toHash);
    const byId = new Map<string, InstanceView>();
    for (const v of this.o.instances()) byId.set(v.id, v);
    const passing = this.opts.requireConsulPassing ? this.o.consulPassing?.() : undefined;
    const consulChecked = this.opts.requireConsulPassing && this.o.consulPassing !== undefined;
    const inConsul = (id: string): boolean => consulChecked && (passing?.has(id) ?? false);
    const ready = (id: string): boolean => {
      if (this.draining.has(id)) return false;
      const v = byId.get(id);
      if (!v || !v.ready || v.missing || v.draining) return false;
      return !consulChecked || inConsul(id);
    };
    return { incoming, outgoing, byId, ready, passing: inConsul };
  }

  private learnVersions(byId: Map<string, InstanceView>): void {
    for (const r of this.o.actuator.replicas()) {
      const v = r.version ? byId.get(r.id)?.version : undefined;
      if (r.version && v && !this.displayVersions.has(r.version)) this.displayVersions.set(r.version, v);
    }
    const a = this.active;
    if (a && this.record) {
      const fromVersion = this.versionOf(a.fromHash);
      const toVersion = this.versionOf(a.toHash);
      if (this.record.fromVersion !== fromVersion || this.record.toVersion !== toVersion) {
        this.record = { ...this.record, fromVersion, toVersion };
        this.persist();
      }
    }
  }

  /** The agents' `version` for a config hash, when they gave one; else the hash. */
  private versionOf(hash: string): string {
    return this.displayVersions.get(hash) ?? hash;
  }

  private event(message: string, level: 'info' | 'warn' | 'error' = 'info'): void {
    const atMs = this.clock.now();
    this.events.push({ atMs, message });
    if (this.events.length > 50) this.events.splice(0, this.events.length - 50);
    this.log[level]({ state: this.state, paused: this.paused }, `rollout: ${message}`);
    try {
      this.o.onEvent?.(message, this.status());
    } catch (error) {
      this.log.warn(errorFields(error), 'rollout event listener failed');
    }
  }

  private persist(): void {
    if (!this.record) return;
    this.record = {
      ...this.record,
      paused: this.paused,
      ...(this.active ? { replicas: this.target } : {}),
      ...(this.rollbackCause ? { rollbackCause: this.rollbackCause } : {}),
      updatedAtMs: this.clock.now(),
      by: this.o.id,
    };
    this.o.store
      .save(this.record)
      .catch((error: unknown) => this.log.warn(errorFields(error), 'cannot persist the rollout'));
  }

  private updateMetrics(view?: Classified): void {
    const { metrics, service } = this.o;
    for (const s of ROLLOUT_STATES) metrics.state.set({ service, state: s }, s === this.state ? 1 : 0);
    metrics.paused.set({ service }, this.paused ? 1 : 0);
    const v = view ?? (this.active ? this.classify() : undefined);
    const count = (list: readonly ReplicaInfo[] | undefined, ready: boolean) =>
      list ? list.filter((r) => (v as Classified).ready(r.id) === ready).length : 0;
    metrics.replicas.set({ service, side: 'old', ready: 'true' }, this.active ? count(v?.outgoing, true) : 0);
    metrics.replicas.set({ service, side: 'old', ready: 'false' }, this.active ? count(v?.outgoing, false) : 0);
    metrics.replicas.set({ service, side: 'new', ready: 'true' }, this.active ? count(v?.incoming, true) : 0);
    metrics.replicas.set({ service, side: 'new', ready: 'false' }, this.active ? count(v?.incoming, false) : 0);
  }
}

interface Classified {
  incoming: readonly ReplicaInfo[];
  outgoing: readonly ReplicaInfo[];
  byId: Map<string, InstanceView>;
  ready(id: string): boolean;
  /** Passing in Consul (false when Consul is not checked). */
  passing(id: string): boolean;
}

export { ROLLOUT_ERROR_CODES, RolloutError, type RolloutErrorCode } from './rollout-error.js';
