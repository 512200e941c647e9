import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
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
  /** SIGTERM → SIGKILL deadline when stopping a replica, and the guard's grace when the coordinator dies. Default 10000. */
  stopTimeoutMs?: number;
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
  child: ChildProcess | undefined;
  state: 'starting' | 'running' | 'stopping' | 'restarting';
  restarts: number;
  backoff: Backoff;
  startedAtMs: number;
  restartTimer: TimerHandle | undefined;
  exited: Promise<void>;
}

const GUARD_PATH = fileURLToPath(new URL('./replica-guard.js', import.meta.url));

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
 * through the logger. Each replica runs under a small guard process tied to the coordinator by an IPC channel, so
 * replicas exit when the coordinator dies, even by SIGKILL.
 */
export class LocalActuator implements Actuator {
  readonly type = 'local';
  private readonly opts: Required<
    Omit<LocalActuatorOptions, 'cwd' | 'coordinatorUrl' | 'coordinatorToken' | 'baseEnv' | 'logger' | 'clock'>
  > &
    LocalActuatorOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly live = new Map<string, Replica>();
  private readonly changes = new EventEmitter<number>();
  private closed = false;
  private lastCount = 0;
  private currentSpec: LocalReplicaSpec;

  constructor(options: LocalActuatorOptions) {
    assertString('service', options.service);
    assertString('command', options.command);
    if (options.args !== undefined && !Array.isArray(options.args)) {
      throw new InvalidArgumentError(`args must be an array of strings, got ${typeof options.args}`);
    }
    const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    assertPositiveInteger('stopTimeoutMs', stopTimeoutMs);
    this.opts = {
      ...options,
      args: options.args ?? [],
      env: options.env ?? {},
      host: options.host ?? '127.0.0.1',
      stopTimeoutMs,
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
      ...(r.child?.pid !== undefined ? { pid: r.child.pid } : {}),
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
    const active = [...this.live.values()].filter((r) => r.state !== 'stopping');
    if (replicas > active.length) {
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
    const r = this.live.get(id);
    if (r) await this.stopReplica(r);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.live.values()].map((r) => this.stopReplica(r)));
    this.changes.clear();
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

  private async startReplica(): Promise<string> {
    const id = `${this.opts.service}-${randomBytes(4).toString('hex')}`;
    const spec = this.currentSpec;
    const replica: Replica = {
      id,
      spec,
      version: specVersion(spec),
      exitExpected: false,
      port: 0,
      child: undefined,
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
    this.live.set(id, replica);
    this.emitCount();
    await this.spawn(replica);
    return id;
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
    const child = spawn(
      process.execPath,
      [GUARD_PATH, String(this.opts.stopTimeoutMs), replica.spec.command, ...replica.spec.args],
      {
        env,
        ...(replica.spec.cwd ? { cwd: replica.spec.cwd } : {}),
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        // Own process group, so SIGKILL reaches the guard and the replica together.
        detached: true,
      },
    );
    replica.child = child;
    replica.startedAtMs = this.clock.now();
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    this.pipeLogs(replica, child);
    replica.exited = new Promise<void>((resolve) => {
      let done = false;
      const exited = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        resolve();
        this.onExit(replica, child, code, signal);
      };
      child.once('exit', exited);
      // A process that never started (e.g. a missing cwd) gets 'error' and no 'exit': it crashed all the same.
      child.once('error', () => {
        if (child.pid === undefined) exited(child.exitCode, null);
      });
    });
    child.once('error', (error) => {
      this.log.error({ replica: replica.id, ...errorFields(error) }, 'replica failed to start');
    });
    await new Promise<void>((resolve) => {
      child.once('spawn', () => resolve());
      child.once('error', () => resolve());
    });
    if (replica.child !== child) return; // it never started: onExit already scheduled the restart
    if (replica.state === 'starting' || replica.state === 'restarting') replica.state = 'running';
    this.log.info({ replica: replica.id, pid: child.pid, port: replica.port }, 'replica started');
  }

  private pipeLogs(replica: Replica, child: ChildProcess): void {
    for (const [name, stream] of [
      ['stdout', child.stdout],
      ['stderr', child.stderr],
    ] as const) {
      if (!stream) continue;
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      lines.on('line', (line) => {
        const text = line.length > 8192 ? `${line.slice(0, 8192)}…` : line;
        if (name === 'stderr') this.log.warn({ replica: replica.id, stream: name }, text);
        else this.log.info({ replica: replica.id, stream: name }, text);
      });
      lines.on('error', () => {});
    }
  }

  private onExit(replica: Replica, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (replica.child !== child) return;
    replica.child = undefined;
    if (replica.state === 'stopping' || replica.exitExpected || this.closed) {
      replica.state = 'stopping';
      this.live.delete(replica.id);
      this.log.info({ replica: replica.id, code, signal }, 'replica stopped');
      this.emitCount();
      return;
    }
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
    const child = replica.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      if (!child) this.live.delete(replica.id);
      this.emitCount();
      await replica.exited;
      return;
    }
    this.emitCount();
    if (!wasStopping) {
      this.log.info({ replica: replica.id, pid: child.pid }, 'stopping replica (SIGTERM)');
      signalGroup(child, 'SIGTERM');
    }
    const killTimer = this.clock.setTimeout(() => {
      this.log.warn(
        { replica: replica.id, pid: child.pid, afterMs: this.opts.stopTimeoutMs },
        'replica ignored SIGTERM; SIGKILL',
      );
      signalGroup(child, 'SIGKILL');
    }, this.opts.stopTimeoutMs);
    killTimer.unref();
    await replica.exited;
    this.clock.clearTimeout(killTimer);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // The guard forwards SIGTERM to the replica; SIGKILL goes to the whole group (the guard cannot forward it).
    if (signal === 'SIGKILL') process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    // already gone
  }
}
