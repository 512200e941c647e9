import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import {
  ActuatorError,
  Backoff,
  ClosedError,
  EventEmitter,
  InvalidArgumentError,
  assertPositiveInteger,
  assertString,
  componentLogger,
  errorFields,
  realClock,
  type Clock,
  type Disposable,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import { specVersion, type LocalReplicaSpec } from '../rollout/replica-spec.js';
import type { Actuator, ReplicaInfo, ScaleOptions } from './actuator.js';
import { launchGuard, type GuardHandle } from './guard-handle.js';
import { adoptGuards, openStateDirectory, stopStrayGuards, type StateDirectory } from './replica-adoption.js';

export interface LocalActuatorOptions {
  /** Service name (used in instance ids and logs). */
  service: string;
  command: string;
  args?: readonly string[];
  /** Extra environment for every replica, on top of `baseEnv`. */
  env?: Readonly<Record<string, string>>;
  /**
   * The environment replicas inherit (the CLI passes `process.env`; library code does not read it). Default: only
   * `PATH` is not set, so give an absolute `command` or pass a `baseEnv` with `PATH`.
   */
  baseEnv?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** Address replicas bind; also the host used to find a free port. Default 127.0.0.1. */
  host?: string;
  /** URL replicas report to (`SHOAL_COORDINATOR_URL`). */
  coordinatorUrl?: string;
  /** Token replicas present (`SHOAL_COORDINATOR_TOKEN`). */
  coordinatorToken?: string;
  /** SIGTERM → SIGKILL deadline when stopping a replica. Default 10000. */
  stopTimeoutMs?: number;
  /**
   * Directory where each replica's guard keeps a record (`<stateDir>/<service>/`), so the next coordinator adopts
   * the replicas of this one after a crash, SIGKILL or upgrade. Default: a private temporary directory (replicas
   * cannot be adopted; they still stop `orphanGraceMs` after the coordinator is gone).
   */
  stateDir?: string;
  /**
   * How long a replica keeps running without a coordinator, waiting for a restarted one to adopt it; then its guard
   * stops it (SIGTERM, SIGKILL after `stopTimeoutMs`). Default 30000.
   */
  orphanGraceMs?: number;
  restartBackoff?: { baseMs?: number; capMs?: number };
  /** A replica that ran this long resets its restart backoff. Default 10000. */
  stableAfterMs?: number;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
}

interface Replica {
  id: string;
  /** What this replica runs (a rollout changes the spec new replicas get; a replica keeps its own). */
  spec: LocalReplicaSpec;
  version: string;
  /** Set by `expectExit`: its exit is a stop, not a crash. */
  exitExpected: boolean;
  port: number;
  guard: GuardHandle | undefined;
  state: 'starting' | 'running' | 'stopping' | 'restarting';
  restarts: number;
  backoff: Backoff;
  startedAtMs: number;
  restartTimer: TimerHandle | undefined;
  exited: Promise<void>;
}

/** Picks a free TCP port on `host` by binding port 0 (the replica binds it a moment later). */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The `local` actuator: a process supervisor that runs N replicas of a command on this machine, each on a free
 * port, with `PORT`, `SHOAL_INSTANCE_ID`, `SHOAL_COORDINATOR_URL` and `SHOAL_COORDINATOR_TOKEN` in its environment.
 * Crashed replicas restart with backoff; victims get SIGTERM, then SIGKILL after `stopTimeoutMs`; their output goes
 * through the logger. Each replica runs under a small guard process (`replica-guard.ts`) that outlives the
 * coordinator by `orphanGraceMs`: a restarted coordinator with the same `stateDir` adopts it and its replica;
 * otherwise the guard stops the replica.
 */
export class LocalActuator implements Actuator {
  readonly type = 'local';
  private readonly opts: Required<
    Omit<
      LocalActuatorOptions,
      'cwd' | 'coordinatorUrl' | 'coordinatorToken' | 'baseEnv' | 'logger' | 'clock' | 'stateDir'
    >
  > &
    LocalActuatorOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly live = new Map<string, Replica>();
  private readonly changes = new EventEmitter<number>();
  private closed = false;
  private lastCount = 0;
  private stateDir: StateDirectory | undefined;
  private adopting: Promise<void> | undefined;
  private currentSpec: LocalReplicaSpec;

  constructor(options: LocalActuatorOptions) {
    assertString('service', options.service);
    assertString('command', options.command);
    if (options.args !== undefined && !Array.isArray(options.args)) {
      throw new InvalidArgumentError(`args must be an array of strings, got ${typeof options.args}`);
    }
    const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    assertPositiveInteger('stopTimeoutMs', stopTimeoutMs);
    const orphanGraceMs = options.orphanGraceMs ?? 30_000;
    assertPositiveInteger('orphanGraceMs', orphanGraceMs);
    if (options.stateDir !== undefined) assertString('stateDir', options.stateDir);
    this.opts = {
      ...options,
      args: options.args ?? [],
      env: options.env ?? {},
      host: options.host ?? '127.0.0.1',
      stopTimeoutMs,
      orphanGraceMs,
      restartBackoff: options.restartBackoff ?? {},
      stableAfterMs: options.stableAfterMs ?? 10_000,
      random: options.random ?? Math.random,
    };
    this.log = componentLogger(options.logger, 'local-actuator', { service: options.service });
    this.clock = options.clock ?? realClock;
    this.currentSpec = Object.freeze({
      command: options.command,
      args: [...this.opts.args],
      env: { ...this.opts.env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
  }

  /** What new replicas run: command, args, env, cwd. */
  get spec(): LocalReplicaSpec {
    return this.currentSpec;
  }

  /** The version new replicas get: a hash of `spec`. */
  get version(): string {
    return specVersion(this.currentSpec);
  }

  /**
   * Changes what replicas started from now on run (a rollout; running replicas keep theirs, and a crashed replica
   * restarts with its own). Returns the new spec's version.
   */
  setSpec(spec: LocalReplicaSpec): string {
    assertString('command', spec.command);
    this.currentSpec = Object.freeze({ ...spec, args: [...spec.args], env: { ...spec.env } });
    return this.version;
  }

  /** Starts one more replica of the current spec; resolves with its id once spawned. */
  async start(): Promise<string> {
    if (this.closed) throw new ClosedError('local actuator is closed');
    await this.adopt();
    return this.startReplica();
  }

  /**
   * Marks a replica whose exit is coming (it was told to drain and may exit by itself): that exit stops it rather
   * than counting as a crash to restart.
   */
  expectExit(id: string): void {
    const r = this.live.get(id);
    if (r) r.exitExpected = true;
  }

  async getReplicas(): Promise<number> {
    await this.adopt();
    return this.count();
  }

  replicas(): readonly ReplicaInfo[] {
    return [...this.live.values()].map((r) => ({
      id: r.id,
      state: r.state,
      version: r.version,
      address: this.opts.host,
      port: r.port,
      restarts: r.restarts,
      startedAtMs: r.startedAtMs,
      ...(r.guard ? { pid: r.guard.pid, adopted: r.guard.adopted } : {}),
      ...(r.guard?.replicaPid !== undefined ? { replicaPid: r.guard.replicaPid } : {}),
    }));
  }

  watch(listener: (replicas: number) => void): Disposable {
    return this.changes.event(listener);
  }

  async scaleTo(replicas: number, options: ScaleOptions = {}): Promise<void> {
    if (this.closed) throw new ClosedError('local actuator is closed');
    if (!Number.isInteger(replicas) || replicas < 0) {
      throw new InvalidArgumentError(`replicas must be an integer >= 0, got ${replicas}`);
    }
    await this.adopt();
    const active = [...this.live.values()].filter((r) => r.state !== 'stopping');
    if (replicas > active.length) {
      if (active.length === 0 && replicas > 1) {
        await this.startFromZero(replicas);
        return;
      }
      const started: Promise<string>[] = [];
      for (let i = active.length; i < replicas; i++) started.push(this.startReplica());
      await Promise.all(started);
    } else if (replicas < active.length) {
      const victims: Replica[] = [];
      for (const id of options.victims ?? []) {
        const r = this.live.get(id);
        if (r && r.state !== 'stopping' && victims.length < active.length - replicas) victims.push(r);
      }
      // Then the newest replicas, which have the least warm state.
      const rest = active.filter((r) => !victims.includes(r)).sort((a, b) => b.startedAtMs - a.startedAtMs);
      while (victims.length < active.length - replicas) victims.push(rest.shift() as Replica);
      await Promise.all(victims.map((r) => this.stopReplica(r)));
    }
  }

  /** Stops one replica (SIGTERM, SIGKILL after the deadline) without replacing it. */
  async stop(id: string): Promise<void> {
    await this.adopt();
    const r = this.live.get(id);
    if (r) await this.stopReplica(r);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.adopting?.catch(() => undefined);
    await Promise.all([...this.live.values()].map((r) => this.stopReplica(r)));
    if (this.stateDir && !this.stateDir.temporary) {
      await stopStrayGuards(this.stateDir.dir, this.opts.service, new Set(), this.opts.stopTimeoutMs, this.clock);
    }
    this.changes.clear();
    this.stateDir?.release();
  }

  /**
   * Closes without stopping the replicas (an upgrade or planned restart of the coordinator): each guard keeps its
   * replica running for `orphanGraceMs`, for the next coordinator with the same `stateDir` to adopt.
   */
  async detach(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.adopting?.catch(() => undefined);
    for (const r of this.live.values()) {
      this.clock.clearTimeout(r.restartTimer);
      r.guard?.detach();
    }
    this.live.clear();
    this.changes.clear();
    this.stateDir?.release();
    this.log.info('detached from the local replicas; they wait for the next coordinator');
  }

  /** Once, before anything else: opens the state directory and adopts the replicas recorded there. */
  private adopt(): Promise<void> {
    this.adopting ??= (async () => {
      this.stateDir = openStateDirectory(this.opts.stateDir, this.opts.service, this.log);
      if (this.stateDir.temporary) return;
      const adopted = await adoptGuards(this.stateDir.dir, {
        service: this.opts.service,
        stopTimeoutMs: this.opts.stopTimeoutMs,
        clock: this.clock,
        log: this.log,
        onLog: (id, stream, line) => this.logLine(id, stream, line),
      });
      for (const { record, guard } of adopted) {
        if (this.closed) {
          guard.detach();
          continue;
        }
        // A replica keeps the version it was started with; if it crashes it restarts with the current spec.
        const replica = this.newReplica(record.id, this.currentSpec, record.specVersion ?? this.version);
        Object.assign(replica, {
          port: record.port,
          guard,
          state: 'running',
          restarts: record.restarts,
          startedAtMs: record.startedAtMs,
        });
        this.live.set(record.id, replica);
        this.watchExit(replica, guard);
      }
      this.emitCount();
    })().catch((error: unknown) => {
      this.log.error(errorFields(error), 'cannot open the state directory');
      throw new ActuatorError(`cannot open the local actuator's state directory: ${(error as Error).message}`, {
        cause: error,
      });
    });
    return this.adopting;
  }

  private count(): number {
    let n = 0;
    for (const r of this.live.values()) if (r.state !== 'stopping') n++;
    return n;
  }

  private emitCount(): void {
    const n = this.count();
    if (n !== this.lastCount) {
      this.lastCount = n;
      this.changes.emit(n);
    }
  }

  /**
   * From zero to `replicas`: every replica counts at once, but the first one's guard starts alone and the others'
   * once it has started its replica. Woken from zero, the first replica to pass takes every waiting call: on a
   * small machine it should not share the CPU with `replicas - 1` guard processes starting at the same instant
   * (measured by `npm run bench:cold-start`; the others start one guard start later).
   */
  private async startFromZero(replicas: number): Promise<void> {
    const created: Replica[] = [];
    for (let i = 0; i < replicas; i++) {
      const replica = this.newReplica(`${this.opts.service}-${randomBytes(4).toString('hex')}`, this.currentSpec);
      this.live.set(replica.id, replica);
      created.push(replica);
    }
    this.emitCount();
    const [first, ...rest] = created as [Replica, ...Replica[]];
    const firstStarted = this.spawn(first);
    await firstStarted.catch(() => undefined); // its error is the caller's, below
    await Promise.all([firstStarted, ...rest.map((r) => this.spawn(r))]);
  }

  private async startReplica(): Promise<string> {
    const replica = this.newReplica(`${this.opts.service}-${randomBytes(4).toString('hex')}`, this.currentSpec);
    this.live.set(replica.id, replica);
    this.emitCount();
    await this.spawn(replica);
    return replica.id;
  }

  private newReplica(id: string, spec: LocalReplicaSpec, version = specVersion(spec)): Replica {
    return {
      id,
      spec,
      version,
      exitExpected: false,
      port: 0,
      guard: undefined,
      state: 'starting',
      restarts: 0,
      backoff: new Backoff({
        baseMs: this.opts.restartBackoff.baseMs ?? 500,
        capMs: this.opts.restartBackoff.capMs ?? 30_000,
        random: this.opts.random,
      }),
      startedAtMs: this.clock.now(),
      restartTimer: undefined,
      exited: Promise.resolve(),
    };
  }

  private async spawn(replica: Replica): Promise<void> {
    try {
      replica.port = await findFreePort(this.opts.host);
    } catch (error) {
      throw new ActuatorError(`no free port on ${this.opts.host}`, { cause: error });
    }
    if (replica.state === 'stopping' || this.closed) return;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.opts.baseEnv ?? {})) if (v !== undefined) env[k] = v;
    Object.assign(env, replica.spec.env, {
      PORT: String(replica.port),
      HOST: this.opts.host,
      SHOAL_SERVICE: this.opts.service,
      SHOAL_INSTANCE_ID: replica.id,
    });
    if (this.opts.coordinatorUrl) env.SHOAL_COORDINATOR_URL = this.opts.coordinatorUrl;
    if (this.opts.coordinatorToken) env.SHOAL_COORDINATOR_TOKEN = this.opts.coordinatorToken;
    const launching = launchGuard({
      dir: (this.stateDir as StateDirectory).dir,
      service: this.opts.service,
      id: replica.id,
      host: this.opts.host,
      port: replica.port,
      startedAtMs: this.clock.now(),
      restarts: replica.restarts,
      specVersion: replica.version,
      command: replica.spec.command,
      args: replica.spec.args,
      env,
      ...(replica.spec.cwd ? { cwd: replica.spec.cwd } : {}),
      graceMs: this.opts.orphanGraceMs,
      stopTimeoutMs: this.opts.stopTimeoutMs,
      clock: this.clock,
      onLog: (stream, line) => this.logLine(replica.id, stream, line),
    });
    // Whoever stops this replica while its guard starts waits for that guard too.
    replica.exited = launching.then(
      (guard) => guard.exited.then(() => undefined),
      () => undefined,
    );
    let guard: GuardHandle;
    try {
      guard = await launching;
    } catch (error) {
      this.log.error({ replica: replica.id, ...errorFields(error) }, 'replica failed to start');
      if (!this.isStopping(replica)) this.crashed(replica, null, null);
      else this.live.delete(replica.id);
      return;
    }
    replica.guard = guard;
    replica.startedAtMs = this.clock.now();
    this.watchExit(replica, guard);
    if (this.isStopping(replica)) {
      this.terminate(replica, guard); // stopped while it started
      return;
    }
    if (replica.state === 'starting' || replica.state === 'restarting') replica.state = 'running';
    this.log.info({ replica: replica.id, pid: guard.pid, port: replica.port }, 'replica started');
  }

  /** Stopped (or closed) meanwhile: a method, so TypeScript does not narrow `state` across an await. */
  private isStopping(replica: Replica): boolean {
    return replica.state === 'stopping' || this.closed;
  }

  private watchExit(replica: Replica, guard: GuardHandle): void {
    replica.exited = guard.exited.then(({ code, signal }) => this.onExit(replica, guard, code, signal));
  }

  private logLine(id: string, stream: 'stdout' | 'stderr', line: string): void {
    if (stream === 'stderr') this.log.warn({ replica: id, stream }, line);
    else this.log.info({ replica: id, stream }, line);
  }

  private onExit(replica: Replica, guard: GuardHandle, code: number | null, signal: NodeJS.Signals | null): void {
    if (replica.guard !== guard) return;
    replica.guard = undefined;
    if (replica.state === 'stopping' || replica.exitExpected || this.closed) {
      replica.state = 'stopping';
      this.live.delete(replica.id);
      this.log.info({ replica: replica.id, code, signal }, 'replica stopped');
      this.emitCount();
      return;
    }
    this.crashed(replica, code, signal);
  }

  /** Restarts a replica that exited on its own (or never started), with backoff, under the same id. */
  private crashed(replica: Replica, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.clock.now() - replica.startedAtMs >= this.opts.stableAfterMs) replica.backoff.reset();
    const delay = replica.backoff.next() ?? 30_000;
    replica.restarts++;
    replica.state = 'restarting';
    this.log.warn(
      { replica: replica.id, code, signal, restartInMs: delay, restarts: replica.restarts },
      'replica crashed',
    );
    replica.restartTimer = this.clock.setTimeout(() => {
      replica.restartTimer = undefined;
      if (replica.state !== 'restarting' || this.closed) return;
      this.spawn(replica).catch((error: unknown) => {
        this.log.error({ replica: replica.id, ...errorFields(error) }, 'replica restart failed');
      });
    }, delay);
    replica.restartTimer.unref();
  }

  private async stopReplica(replica: Replica): Promise<void> {
    const wasStopping = replica.state === 'stopping';
    replica.state = 'stopping';
    this.clock.clearTimeout(replica.restartTimer);
    replica.restartTimer = undefined;
    const guard = replica.guard;
    if (!guard) {
      this.live.delete(replica.id);
      this.emitCount();
      await replica.exited;
      return;
    }
    this.emitCount();
    if (!wasStopping) this.terminate(replica, guard);
    await replica.exited;
  }

  /** SIGTERM (the guard forwards it to the replica), SIGKILL to the guard's group after `stopTimeoutMs`. */
  private terminate(replica: Replica, guard: GuardHandle): void {
    this.log.info({ replica: replica.id, pid: guard.pid }, 'stopping replica (SIGTERM)');
    guard.signal('SIGTERM');
    const killTimer = this.clock.setTimeout(() => {
      this.log.warn(
        { replica: replica.id, pid: guard.pid, afterMs: this.opts.stopTimeoutMs },
        'replica ignored SIGTERM; SIGKILL',
      );
      guard.signal('SIGKILL');
    }, this.opts.stopTimeoutMs);
    killTimer.unref();
    void guard.exited.then(() => this.clock.clearTimeout(killTimer));
  }
}
