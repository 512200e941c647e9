/**
 * The coordinator's side of a replica guard (see `replica-guard.ts`): `launchGuard` starts a new one and connects
 * to it; `adoptGuard` connects to one a previous coordinator started, after checking that its pid still belongs to
 * the process the record names (pid + start time) and that it knows the record's token. Either way the result is
 * a `GuardHandle`: the guard's pid (also its process group, which holds the replica), a way to signal it, the
 * replica's output, and a promise of its exit.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ActuatorError, type Clock } from '@shoal/core';
import { checkProof, newNonce, proof, readLines, sendLine } from './guard-protocol.js';
import { MAX_SOCKET_PATH_BYTES, isSameProcess, removeGuardFiles, type GuardRecord } from './replica-state.js';

const GUARD_PATH = fileURLToPath(new URL('./replica-guard.js', import.meta.url));

export interface GuardExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface GuardEvents {
  onLog(stream: 'stdout' | 'stderr', line: string): void;
}

export interface LaunchOptions extends GuardEvents {
  dir: string;
  service: string;
  id: string;
  host: string;
  port: number;
  startedAtMs: number;
  restarts: number;
  specVersion?: string;
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  cwd?: string;
  graceMs: number;
  stopTimeoutMs: number;
  /** How long a new guard may take to listen and answer. Default 10000. */
  connectTimeoutMs?: number;
  clock: Clock;
}

/** The socket path of a new guard in `dir`; throws when `dir` is too long for a Unix socket path. */
export function guardSocketPath(dir: string): string {
  const path = join(dir, `g-${randomBytes(4).toString('hex')}.sock`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new ActuatorError(
      `stateDir ${JSON.stringify(dir)} is too long: a guard's Unix socket path must fit in ${MAX_SOCKET_PATH_BYTES} bytes`,
    );
  }
  return path;
}

export class GuardHandle {
  replicaPid: number | undefined;
  /** Resolves once the guard has exited (and the rest of its process group was told to stop). */
  readonly exited: Promise<GuardExit>;
  private resolveExit!: (exit: GuardExit) => void;
  private lastExit: GuardExit | undefined;
  private socket: Socket | undefined;
  private welcome: ((m: Record<string, unknown>) => void) | undefined;
  private detached = false;
  private finished = false;

  constructor(
    readonly pid: number,
    private readonly startTime: string | undefined,
    readonly adopted: boolean,
    private readonly files: Pick<GuardRecord, 'id' | 'socket'> & { dir: string },
    private readonly stopTimeoutMs: number,
    private readonly clock: Clock,
  ) {
    this.exited = new Promise<GuardExit>((resolve) => (this.resolveExit = resolve));
  }

  /** SIGTERM goes to the guard (which forwards it to the replica); SIGKILL to the whole process group. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (this.finished || !this.stillOurs()) return;
    try {
      if (signal === 'SIGKILL') process.kill(-this.pid, signal);
      else process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** Drops the connection without stopping anything: the guard waits its grace period for the next coordinator. */
  detach(): void {
    this.detached = true;
    this.socket?.destroy();
    this.socket = undefined;
  }

  /** Reads what the guard says on `socket`; `hello()` then proves who we are and checks who it is. */
  attach(socket: Socket, events: GuardEvents): void {
    this.socket = socket;
    socket.on('error', () => {});
    readLines(socket, (m) => {
      if (m.t === 'welcome') {
        this.welcome?.(m);
      } else if (m.t === 'log' && (m.stream === 'stdout' || m.stream === 'stderr') && typeof m.line === 'string') {
        events.onLog(m.stream, m.line);
      } else if (m.t === 'started' && typeof m.replicaPid === 'number') {
        this.replicaPid = m.replicaPid;
      } else if (m.t === 'exit') {
        this.lastExit = {
          code: typeof m.code === 'number' ? m.code : null,
          signal: typeof m.signal === 'string' ? (m.signal as NodeJS.Signals) : null,
        };
      }
    });
    socket.on('close', () => {
      if (this.adopted && !this.detached) void this.waitGone();
    });
  }

  /** Says hello with a proof of `token` and checks the guard's answer (its proof, pid and id). */
  hello(token: string, timeoutMs: number): Promise<{ replicaPid?: number }> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new ActuatorError('guard is not connected'));
    const nonce = newNonce();
    return new Promise((resolve, reject) => {
      const fail = (message: string) => {
        this.clock.clearTimeout(timer);
        this.welcome = undefined;
        socket.off('close', onClose);
        socket.destroy();
        reject(new ActuatorError(`guard ${this.files.id}: ${message}`));
      };
      const onClose = () => fail('closed the connection before answering');
      const timer = this.clock.setTimeout(() => fail(`did not answer within ${timeoutMs} ms`), timeoutMs);
      timer.unref();
      socket.once('close', onClose);
      this.welcome = (m) => {
        if (!checkProof(token, 'g', nonce, m.proof)) return fail('failed to prove its identity');
        if (m.guardPid !== this.pid || m.id !== this.files.id) return fail('answered as another process');
        this.clock.clearTimeout(timer);
        this.welcome = undefined;
        socket.off('close', onClose);
        resolve(typeof m.replicaPid === 'number' ? { replicaPid: m.replicaPid } : {});
      };
      sendLine(socket, { t: 'hello', nonce, proof: proof(token, 'c', nonce) });
    });
  }

  /** The guard process ended (its `exit` event, or an adopted guard's pid gone). */
  finish(exit: GuardExit): void {
    if (this.finished || this.detached) return;
    this.finished = true;
    // A guard that did not exit on its own terms (SIGKILL, a crash) may leave its replica behind in its group.
    if (exit.signal !== null || exit.code === 137) this.sweepGroup();
    removeGuardFiles(this.files.dir, this.files);
    // What the guard wrote before it died may still be unread: read the socket to its end (bounded) first.
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.destroyed) {
      this.resolveExit(this.lastExit ?? exit);
      return;
    }
    const timer = this.clock.setTimeout(() => socket.destroy(), 1000);
    timer.unref();
    socket.once('close', () => {
      this.clock.clearTimeout(timer);
      this.resolveExit(this.lastExit ?? exit);
    });
  }

  private stillOurs(): boolean {
    return this.startTime === undefined || isSameProcess(this.pid, this.startTime);
  }

  private sweepGroup(): void {
    const group = -this.pid;
    try {
      process.kill(group, 'SIGTERM');
    } catch {
      return; // nothing left in the group
    }
    const timer = this.clock.setTimeout(() => {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        // gone
      }
    }, this.stopTimeoutMs);
    timer.unref();
  }

  private async waitGone(): Promise<void> {
    while (isSameProcess(this.pid, this.startTime)) {
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 50).unref());
    }
    this.finish(this.lastExit ?? { code: null, signal: 'SIGKILL' });
  }
}

function connectSocket(path: string, timeoutMs: number, clock: Clock): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const timer = clock.setTimeout(() => {
      socket.destroy();
      reject(new ActuatorError(`guard socket ${path} did not accept within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      clock.clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clock.clearTimeout(timer);
      reject(new ActuatorError(`cannot connect to guard socket ${path}: ${error.message}`, { cause: error }));
    });
  });
}

/** Starts a new guard (which starts the replica once this coordinator has connected). */
export async function launchGuard(options: LaunchOptions): Promise<GuardHandle> {
  const socketPath = guardSocketPath(options.dir);
  const token = randomBytes(24).toString('hex');
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const child = spawn(process.execPath, [GUARD_PATH, options.command, ...options.args], {
    env: {
      ...options.env,
      SHOAL_GUARD: JSON.stringify({
        service: options.service,
        id: options.id,
        host: options.host,
        port: options.port,
        socket: socketPath,
        token,
        startedAtMs: options.startedAtMs,
        restarts: options.restarts,
        ...(options.specVersion !== undefined ? { specVersion: options.specVersion } : {}),
        graceMs: options.graceMs,
        stopTimeoutMs: options.stopTimeoutMs,
      }),
    },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group (and session), so one signal reaches the guard and the replica together, and the
    // replica outlives this coordinator while the guard waits for the next one.
    detached: true,
  });
  child.unref();
  const pid = child.pid;
  const handle = new GuardHandle(
    pid ?? -1,
    undefined,
    false,
    { id: options.id, socket: socketPath, dir: options.dir },
    options.stopTimeoutMs,
    options.clock,
  );
  let early = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (early.length < 2000) early += chunk;
  });
  child.once('exit', (code, signal) => {
    child.stdout?.destroy();
    child.stderr?.destroy();
    handle.finish({ code, signal });
  });
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('ready\n')) resolve();
    });
    child.once('error', (error) =>
      reject(new ActuatorError(`cannot start the replica guard: ${error.message}`, { cause: error })),
    );
    child.once('exit', (code, signal) =>
      reject(
        new ActuatorError(
          `the replica guard exited before it was ready (${signal ?? `exit code ${code}`})${early ? `: ${early.trim()}` : ''}`,
        ),
      ),
    );
    const timer = options.clock.setTimeout(
      () => reject(new ActuatorError(`the replica guard was not ready within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
  });
  try {
    await ready;
    handle.attach(await connectSocket(socketPath, timeoutMs, options.clock), options);
    await handle.hello(token, timeoutMs);
  } catch (error) {
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    throw error;
  }
  return handle;
}

/**
 * Adopts the guard a record describes, if it is still that process and proves it knows the record's token.
 * Returns undefined when it is gone; then a replica it left behind (same pid and start time) is stopped and the
 * record removed.
 */
export async function adoptGuard(
  dir: string,
  record: GuardRecord,
  events: GuardEvents,
  stopTimeoutMs: number,
  clock: Clock,
): Promise<GuardHandle | undefined> {
  const paths = { id: record.id, socket: record.socket, dir };
  if (!isSameProcess(record.guardPid, record.guardStartTime)) {
    if (isSameProcess(record.replicaPid, record.replicaStartTime)) {
      // The guard died without its replica: stop it through the group it still belongs to.
      new GuardHandle(record.guardPid, undefined, true, paths, stopTimeoutMs, clock).finish({
        code: null,
        signal: 'SIGKILL',
      });
    }
    removeGuardFiles(dir, record);
    return undefined;
  }
  const handle = new GuardHandle(record.guardPid, record.guardStartTime, true, paths, stopTimeoutMs, clock);
  handle.attach(await connectSocket(record.socket, 5000, clock), events);
  let welcome: { replicaPid?: number };
  try {
    welcome = await handle.hello(record.token, 5000);
  } catch (error) {
    handle.detach(); // left alone, it stops its replica when its grace period ends
    throw error;
  }
  handle.replicaPid = welcome.replicaPid ?? record.replicaPid;
  return handle;
}
