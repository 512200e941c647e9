/**
 * The tiny parent of every local replica: `node replica-guard.js <command> [args...]`, configured by the
 * `SHOAL_GUARD` environment variable (JSON, removed from the replica's environment).
 *
 * In this order, so that no instant leaves a replica nobody will stop:
 * 1. It listens on a Unix socket in the state directory and writes its record there (pid + start time, socket,
 *    a token), then prints `ready`.
 * 2. It waits for a coordinator to connect and prove it knows the token. Only then does it start the replica (in
 *    the guard's own process group, so a coordinator can stop both with one signal). If none comes within the
 *    grace period, it exits without ever starting it.
 * 3. While it runs, the replica's output goes over the socket (the last 200 lines are kept while no coordinator is
 *    connected). When the connection closes — the coordinator exited, crashed or was SIGKILLed — the guard waits
 *    the grace period for a coordinator (the restarted one) to connect again and adopt it; if none does, it sends
 *    SIGTERM to the replica, SIGKILL after the stop timeout, and exits.
 * SIGTERM/SIGINT are forwarded to the replica; the guard exits with the replica's exit code and removes its record.
 * A guard killed with SIGKILL cannot clean up: its coordinator (or the next one, from the record) stops the replica
 * through the process group.
 *
 * This file is a program (not library code): it reads its own argv and environment.
 */
/* eslint-disable no-restricted-properties -- a program: its configuration comes in its environment */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import {
  MAX_LOG_LINE_CHARS,
  checkProof,
  proof,
  readLines,
  sendLine,
  type ExitMessage,
  type LogMessage,
} from './guard-protocol.js';
import { processStartTime, removeGuardFiles, writeGuardRecord, type GuardRecord } from './replica-state.js';

interface GuardConfig {
  service: string;
  id: string;
  host: string;
  port: number;
  socket: string;
  token: string;
  startedAtMs: number;
  restarts: number;
  specVersion?: string;
  graceMs: number;
  stopTimeoutMs: number;
}

const [command, ...args] = process.argv.slice(2);
let config: GuardConfig;
try {
  config = JSON.parse(process.env.SHOAL_GUARD ?? '') as GuardConfig;
  if (!command || typeof config.socket !== 'string' || !(config.graceMs >= 0) || !(config.stopTimeoutMs > 0)) {
    throw new Error('incomplete');
  }
} catch {
  process.stderr.write('usage: SHOAL_GUARD=<json> replica-guard <command> [args...]\n');
  process.exit(64);
}
const replicaEnv = { ...process.env };
delete replicaEnv.SHOAL_GUARD;
const dir = dirname(config.socket);

// The coordinator reads our stdout/stderr only until `ready`; once it is gone, writes fail with EPIPE. That must
// not kill the guard before it has stopped the replica.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

let record: GuardRecord = {
  version: 1,
  service: config.service,
  id: config.id,
  host: config.host,
  port: config.port,
  socket: config.socket,
  token: config.token,
  guardPid: process.pid,
  guardStartTime: processStartTime(process.pid) ?? 'unknown',
  startedAtMs: config.startedAtMs,
  restarts: config.restarts,
  ...(typeof config.specVersion === 'string' ? { specVersion: config.specVersion } : {}),
};
let child: ChildProcess | undefined;
let coordinator: Socket | undefined;
let graceTimer: NodeJS.Timeout | undefined;
let stopping = false;
let exiting = false;
const backlog: LogMessage[] = [];

function exit(code: number): void {
  if (exiting) return;
  exiting = true;
  removeGuardFiles(dir, record);
  const done = () => process.exit(code);
  setTimeout(done, 1000).unref();
  if (coordinator && !coordinator.destroyed) coordinator.end(done);
  else done();
}

function send(message: LogMessage | ExitMessage | object): void {
  if (!sendLine(coordinator, message) && (message as LogMessage).t === 'log') {
    backlog.push(message as LogMessage);
    if (backlog.length > 200) backlog.shift();
  }
}

function log(line: string): void {
  send({ t: 'log', stream: 'stderr', line: `replica-guard: ${line}` });
}

/** SIGTERM to the replica, SIGKILL after the stop timeout; exits when it has exited. */
function stopReplica(reason: string): void {
  if (stopping) return;
  stopping = true;
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    exit(0);
    return;
  }
  log(`${reason}: stopping the replica`);
  child.kill('SIGTERM');
  setTimeout(() => {
    exiting = true;
    removeGuardFiles(dir, record);
    sendLine(coordinator, { t: 'exit', code: null, signal: 'SIGKILL' });
    try {
      process.kill(-process.pid, 'SIGKILL'); // the replica and anything it started, the guard included
    } catch {
      child?.kill('SIGKILL');
      process.exit(137);
    }
  }, config.stopTimeoutMs).unref();
}

function startGrace(reason: string): void {
  clearTimeout(graceTimer);
  graceTimer = setTimeout(() => stopReplica(reason), config.graceMs);
}

function startReplica(): void {
  let started: ChildProcess;
  try {
    started = spawn(command as string, args, { env: replicaEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    log(`cannot start ${command}: ${(error as Error).message}`);
    exit(127);
    return;
  }
  child = started;
  if (started.pid !== undefined) {
    record = { ...record, replicaPid: started.pid, replicaStartTime: processStartTime(started.pid) ?? 'unknown' };
    writeGuardRecord(dir, record);
    send({ t: 'started', replicaPid: started.pid, replicaStartTime: record.replicaStartTime });
  }
  for (const [name, stream] of [
    ['stdout', started.stdout],
    ['stderr', started.stderr],
  ] as const) {
    if (!stream) continue;
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    lines.on('line', (line) => {
      const text = line.length > MAX_LOG_LINE_CHARS ? `${line.slice(0, MAX_LOG_LINE_CHARS)}…` : line;
      send({ t: 'log', stream: name, line: text });
    });
    lines.on('error', () => {});
  }
  started.on('error', (error) => {
    if (started.pid === undefined) {
      log(`cannot start ${command}: ${error.message}`);
      send({ t: 'exit', code: 127, signal: null });
      exit(127);
    }
  });
  started.on('exit', (code, signal) => {
    send({ t: 'exit', code, signal });
    exit(code ?? (signal === 'SIGTERM' ? 143 : signal === 'SIGKILL' ? 137 : 1));
  });
}

function onConnection(socket: Socket): void {
  let authenticated = false;
  const helloTimer = setTimeout(() => socket.destroy(), 5000);
  socket.on('error', () => {});
  readLines(socket, (message) => {
    if (authenticated || message.t !== 'hello' || typeof message.nonce !== 'string') return;
    if (!checkProof(config.token, 'c', message.nonce, message.proof)) {
      socket.destroy();
      return;
    }
    authenticated = true;
    clearTimeout(helloTimer);
    clearTimeout(graceTimer);
    if (coordinator && coordinator !== socket) coordinator.destroy(); // a newer coordinator takes over
    coordinator = socket;
    sendLine(socket, {
      t: 'welcome',
      proof: proof(config.token, 'g', message.nonce),
      id: config.id,
      guardPid: process.pid,
      ...(record.replicaPid !== undefined
        ? { replicaPid: record.replicaPid, replicaStartTime: record.replicaStartTime }
        : {}),
    });
    for (const line of backlog.splice(0)) sendLine(socket, line);
    if (!child && !stopping) startReplica();
  });
  socket.on('close', () => {
    clearTimeout(helloTimer);
    if (coordinator !== socket) return;
    coordinator = undefined;
    if (!stopping) startGrace('no coordinator came back within the grace period');
  });
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (!child) {
      stopping = true;
      exit(sig === 'SIGTERM' ? 143 : 130);
    } else if (child.exitCode === null && child.signalCode === null) {
      child.kill(sig);
    }
  });
}

const server = createServer(onConnection);
server.on('error', (error) => {
  process.stderr.write(`replica-guard: cannot listen on ${config.socket}: ${error.message}\n`);
  removeGuardFiles(dir, record);
  process.exit(70);
});
rmSync(config.socket, { force: true });
server.listen(config.socket, () => {
  try {
    chmodSync(config.socket, 0o600);
    writeGuardRecord(dir, record);
  } catch (error) {
    process.stderr.write(`replica-guard: cannot write its record in ${dir}: ${(error as Error).message}\n`);
    removeGuardFiles(dir, record);
    process.exit(70);
  }
  // Until a coordinator proves itself, there is no replica to stop: the grace just ends the guard.
  startGrace('no coordinator connected');
  process.stdout.write('ready\n');
});
