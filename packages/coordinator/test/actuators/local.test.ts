import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { realClock, type Clock, type TimerHandle } from '@shoal/core';
import { LocalActuator } from '@shoal/coordinator';
import { recordingLogger, type LogRecord } from '../support/recording-logger.js';
import { isAlive, waitFor } from '../../../../test/kit/index.js';

const REPLICA = fileURLToPath(new URL('../fixtures/replica.mjs', import.meta.url));

/** The real clock, except that timers of exactly `gatedMs` wait for `release()` (which fires them, and counts them). */
function gatedClock(gatedMs: number): { clock: Clock; release: () => number } {
  const held = new Set<TimerHandle & { fn: () => void }>();
  const clock: Clock = {
    now: () => realClock.now(),
    monotonic: () => realClock.monotonic(),
    setTimeout: (fn, ms) => {
      if (ms !== gatedMs) return realClock.setTimeout(fn, ms);
      const timer = { fn, unref: () => timer, ref: () => timer };
      held.add(timer);
      return timer;
    },
    clearTimeout: (handle) => {
      if (!held.delete(handle as TimerHandle & { fn: () => void })) realClock.clearTimeout(handle);
    },
  };
  const release = (): number => {
    const due = [...held];
    held.clear();
    for (const timer of due) timer.fn();
    return due.length;
  };
  return { clock, release };
}
const SUPERVISOR = fileURLToPath(new URL('../fixtures/supervisor.mjs', import.meta.url));

interface Hello {
  pid: number;
  port: string;
  id: string;
  url?: string;
  token?: string;
  extra?: string;
}

function hellos(records: LogRecord[]): Hello[] {
  return records.filter((r) => r.msg.startsWith('{"pid"')).map((r) => JSON.parse(r.msg) as Hello);
}

describe('LocalActuator', () => {
  let actuator: LocalActuator | undefined;
  let parent: ChildProcess | undefined;
  const leftover: number[] = [];

  afterEach(async () => {
    await actuator?.close();
    actuator = undefined;
    if (parent && parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
    parent = undefined;
    for (const pid of leftover.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });

  it('runs N replicas with PORT, SHOAL_INSTANCE_ID, coordinator URL and token, and pipes their output', async () => {
    const log = recordingLogger();
    actuator = new LocalActuator({
      service: 'web',
      command: process.execPath,
      args: [REPLICA],
      env: { EXTRA: 'yes' },
      coordinatorUrl: 'http://127.0.0.1:9',
      coordinatorToken: 'secret-token-0123456789',
      logger: log,
    });
    const counts: number[] = [];
    actuator.watch((n) => counts.push(n));
    await actuator.scaleTo(3);
    assert.equal(await actuator.getReplicas(), 3);
    const seen = await waitFor(() => (hellos(log.records).length === 3 ? hellos(log.records) : undefined));
    const ids = actuator.replicas().map((r) => r.id);
    assert.deepEqual(new Set(seen.map((h) => h.id)), new Set(ids));
    assert.equal(new Set(seen.map((h) => h.port)).size, 3, 'each replica has its own port');
    for (const h of seen) {
      assert.ok(Number(h.port) > 0);
      assert.equal(h.url, 'http://127.0.0.1:9');
      assert.equal(h.token, 'secret-token-0123456789');
      assert.equal(h.extra, 'yes');
    }
    const line = log.records.find((r) => r.msg.startsWith('{"pid"'));
    assert.equal(line?.fields.component, 'local-actuator');
    assert.ok(ids.includes(line?.fields.replica as string));
    // From zero all three count at once (one change), though the first one's guard starts before the others'.
    assert.deepEqual(counts, [3]);
  });

  it('stops the chosen victims with SIGTERM on scale-down', async () => {
    const log = recordingLogger();
    actuator = new LocalActuator({ service: 'web', command: process.execPath, args: [REPLICA], logger: log });
    await actuator.scaleTo(3);
    await waitFor(() => hellos(log.records).length === 3);
    const victim = actuator.replicas()[0]!.id;
    await actuator.scaleTo(2, { victims: [victim] });
    assert.equal(await actuator.getReplicas(), 2);
    assert.ok(!actuator.replicas().some((r) => r.id === victim));
    // The replica's exit can be seen before the last line it wrote reaches the log (the guard's 'exit' event and
    // its stdout pipe's data are not ordered), so wait for the line rather than expect it already there.
    await waitFor(() => log.records.some((r) => r.msg === 'got SIGTERM' && r.fields.replica === victim), {
      timeoutMs: 10_000,
      what: 'the victim to log that it got SIGTERM',
    });
    const pid = hellos(log.records).find((h) => h.id === victim)!.pid;
    assert.equal(isAlive(pid), false);
  });

  it('SIGKILLs a replica that ignores SIGTERM after stopTimeoutMs', async () => {
    // The stop timeout passes when the test says so (after the replica has logged that it ignores SIGTERM): on a
    // loaded machine a real 300 ms could pass before the replica ran its handler, and the SIGKILL to the guard's
    // group would lose the line still in the pipe.
    const STOP_MS = 4321;
    const gate = gatedClock(STOP_MS);
    const log = recordingLogger();
    actuator = new LocalActuator({
      service: 'web',
      command: process.execPath,
      args: [REPLICA],
      env: { IGNORE_SIGTERM: '1' },
      stopTimeoutMs: STOP_MS,
      clock: gate.clock,
      logger: log,
    });
    await actuator.scaleTo(1);
    const [hello] = await waitFor(() => (hellos(log.records).length === 1 ? hellos(log.records) : undefined));
    leftover.push(hello!.pid);
    const stopping = actuator.scaleTo(0);
    await waitFor(() => log.records.some((r) => r.msg === 'ignoring SIGTERM'), {
      timeoutMs: 10_000,
      what: 'the replica to log that it ignores SIGTERM',
    });
    assert.equal(isAlive(hello!.pid), true, 'the replica ignored SIGTERM');
    assert.ok(!log.records.some((r) => r.msg.includes('SIGKILL')), 'no SIGKILL before the stop timeout');
    assert.ok(gate.release() >= 1, 'the stop timeout was armed');
    await stopping;
    assert.ok(log.records.some((r) => r.msg.includes('SIGKILL')));
    await waitFor(() => !isAlive(hello!.pid), { timeoutMs: 5000, what: 'the replica to be killed' });
  });

  it('restarts a crashed replica with backoff, keeping its instance id', async () => {
    const log = recordingLogger();
    actuator = new LocalActuator({
      service: 'web',
      command: process.execPath,
      args: [REPLICA],
      restartBackoff: { baseMs: 50, capMs: 100 },
      logger: log,
    });
    await actuator.scaleTo(1);
    const [first] = await waitFor(() => (hellos(log.records).length === 1 ? hellos(log.records) : undefined));
    process.kill(first!.pid, 'SIGKILL');
    const second = await waitFor(() => hellos(log.records)[1], { timeoutMs: 10_000, what: 'the restart' });
    assert.equal(second.id, first!.id);
    assert.notEqual(second.pid, first!.pid);
    assert.equal(actuator.replicas()[0]?.restarts, 1);
    assert.ok(log.records.some((r) => r.msg === 'replica crashed' && typeof r.fields.restartInMs === 'number'));
  });

  it('leaves no orphan when the coordinator is SIGKILLed', async () => {
    parent = spawn(process.execPath, [SUPERVISOR, REPLICA, '1', '2', '', '500'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: parent.stdout! });
    const started = await new Promise<{ replicaPids: number[]; guardPids: number[] }>((resolve, reject) => {
      lines.on('line', (l) => {
        if (l.startsWith('{')) resolve(JSON.parse(l) as { replicaPids: number[]; guardPids: number[] });
      });
      parent!.once('exit', (code) => reject(new Error(`supervisor exited early (${code})`)));
    });
    const all = [...started.replicaPids, ...started.guardPids];
    leftover.push(...all);
    assert.equal(all.length, 4);
    assert.ok(all.every(isAlive));
    parent.kill('SIGKILL');
    // No coordinator comes back within orphanGraceMs (500 ms); the replicas ignore SIGTERM, so this also proves the
    // guard's SIGKILL after stopTimeoutMs (500 ms).
    await waitFor(() => all.every((pid) => !isAlive(pid)), {
      timeoutMs: 10_000,
      what: 'every replica and guard to exit',
    });
  });

  it('validates its options', () => {
    assert.throws(() => new LocalActuator({ service: 'x', command: '' }), /command/);
    assert.throws(
      () => new LocalActuator({ service: 'x', command: 'node', stopTimeoutMs: -5 }),
      /stopTimeoutMs must be a positive integer, got -5/,
    );
  });

  it('treats a replica that cannot be spawned (missing cwd) as crashed: retries it with backoff and still closes', async () => {
    const log = recordingLogger();
    actuator = new LocalActuator({
      service: 'web',
      command: process.execPath,
      args: [REPLICA],
      cwd: '/nonexistent/shoal-test-dir',
      restartBackoff: { baseMs: 20, capMs: 20 },
      logger: log,
    });
    await actuator.scaleTo(1);
    await waitFor(() => log.records.filter((r) => r.msg === 'replica crashed').length >= 2, {
      timeoutMs: 5000,
      what: 'the failed spawn to count as a crash, and the restart to be tried',
    });
    const closing = actuator.close();
    const outcome = await Promise.race([closing.then(() => 'closed'), new Promise((r) => setTimeout(r, 3000, 'hung'))]);
    assert.equal(outcome, 'closed', 'close() waited forever for a process that never started');
    actuator = undefined;
  });
});
