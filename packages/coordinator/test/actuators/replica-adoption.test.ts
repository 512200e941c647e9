import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LocalActuator } from '@shoal/coordinator';
import { recordingLogger } from '../support/recording-logger.js';
import {
  MARK_VARIABLE,
  canScanProcesses,
  killMarked,
  markedProcesses,
  newMark,
} from '../../../../test/chaos/support/processes.js';
import { isAlive, waitFor } from '../../../../test/kit/index.js';

const REPLICA = fileURLToPath(new URL('../fixtures/replica.mjs', import.meta.url));
const SUPERVISOR = fileURLToPath(new URL('../fixtures/supervisor.mjs', import.meta.url));

interface Started {
  ids: string[];
  guardPids: number[];
  replicaPids: number[];
}

/** Starts the coordinator-like supervisor fixture; resolves at its "scaling" line. */
function startSupervisor(
  mark: string,
  stateDir: string,
  opts: { count?: number; graceMs?: number; ignoreSigterm?: boolean } = {},
): { child: ChildProcess; scaling: Promise<void>; started: Promise<Started> } {
  const child = spawn(
    process.execPath,
    [
      SUPERVISOR,
      REPLICA,
      opts.ignoreSigterm ? '1' : '0',
      String(opts.count ?? 2),
      stateDir,
      String(opts.graceMs ?? 20_000),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, [MARK_VARIABLE]: mark } },
  );
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`supervisor exited (${signal ?? code})`))),
  );
  exited.catch(() => undefined);
  const scaling = new Promise<void>((resolve) => lines.on('line', (l) => l === 'scaling' && resolve()));
  const started = new Promise<Started>((resolve) =>
    lines.on('line', (l) => l.startsWith('{') && resolve(JSON.parse(l) as Started)),
  );
  const result = { child, scaling: Promise.race([scaling, exited]), started: Promise.race([started, exited]) };
  // A test that kills the supervisor early never awaits `started`.
  result.scaling.catch(() => undefined);
  result.started.catch(() => undefined);
  return result;
}

/** SIGKILLs the supervisor and resolves once it is gone (a restarted coordinator starts after the old one died). */
async function kill(child: ChildProcess): Promise<void> {
  const gone = new Promise<void>((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );
  child.kill('SIGKILL');
  await gone;
}

/** The replicas among the marked processes (a guard's command line ends with the replica's too). */
function replicaProcesses(mark: string) {
  return markedProcesses(mark).filter((p) => p.command.endsWith('replica.mjs') && !p.command.includes('replica-guard'));
}

function newActuator(stateDir: string, mark: string, log = recordingLogger()): LocalActuator {
  return new LocalActuator({
    service: 'orphans',
    command: process.execPath,
    args: [REPLICA],
    baseEnv: { [MARK_VARIABLE]: mark },
    stopTimeoutMs: 500,
    orphanGraceMs: 20_000,
    stateDir,
    logger: log,
  });
}

describe('LocalActuator: adopting the replicas of a previous coordinator', function () {
  this.timeout(120_000);
  let stateDir: string;
  let mark: string;
  const actuators: LocalActuator[] = [];
  const children: ChildProcess[] = [];

  beforeEach(function () {
    if (!canScanProcesses) this.skip(); // the leftover check reads /proc
    stateDir = mkdtempSync(join(tmpdir(), 'shoal-adopt-'));
    mark = newMark();
  });
  afterEach(async () => {
    await Promise.all(actuators.splice(0).map((a) => a.close()));
    await Promise.all(children.splice(0).map((c) => kill(c)));
    const left = killMarked(mark);
    rmSync(stateDir, { recursive: true, force: true });
    assert.equal(left, 0, `${left} process(es) were left behind`);
  });

  it('adopts the running replicas of a SIGKILLed coordinator (same pids), stops them on scale-down and close()', async () => {
    const sup = startSupervisor(mark, stateDir, { count: 2 });
    children.push(sup.child);
    const before = await sup.started;
    await kill(sup.child);

    const log = recordingLogger();
    const next = newActuator(stateDir, mark, log);
    actuators.push(next);
    assert.equal(await next.getReplicas(), 2);
    const adopted = next.replicas();
    assert.deepEqual(new Set(adopted.map((r) => r.id)), new Set(before.ids));
    assert.deepEqual(new Set(adopted.map((r) => r.replicaPid)), new Set(before.replicaPids), 'the same processes');
    assert.ok(adopted.every((r) => r.adopted === true && r.state === 'running' && (r.port ?? 0) > 0));
    assert.ok(before.replicaPids.every(isAlive));

    // Its output now reaches the new coordinator's log, and scale-down stops the adopted victim.
    const victim = adopted[0]!;
    await next.scaleTo(1, { victims: [victim.id] });
    await waitFor(() => log.records.some((r) => r.msg === 'got SIGTERM' && r.fields.replica === victim.id), {
      timeoutMs: 10_000,
      what: "the victim's output in the new coordinator's log",
    });
    await waitFor(() => !isAlive(victim.replicaPid!), { timeoutMs: 10_000, what: 'the victim to exit' });
    assert.equal(await next.getReplicas(), 1);

    await next.close();
    await waitFor(() => markedProcesses(mark).length === 0, {
      timeoutMs: 10_000,
      what: 'every process to exit after close()',
    });
    assert.deepEqual(
      readdirSync(join(stateDir, 'orphans')).filter((f) => f !== 'owner.json'),
      [],
      'no record left after close()',
    );
  });

  it('stops replicas whose coordinator does not come back within orphanGraceMs, even when they ignore SIGTERM', async () => {
    const sup = startSupervisor(mark, stateDir, { count: 2, graceMs: 300, ignoreSigterm: true });
    children.push(sup.child);
    const before = await sup.started;
    await kill(sup.child);
    assert.ok([...before.replicaPids, ...before.guardPids].every(isAlive), 'the replicas outlive the coordinator');
    // 300 ms grace + 500 ms SIGTERM → SIGKILL, on a loaded machine.
    await waitFor(() => markedProcesses(mark).length === 0, { timeoutMs: 20_000, what: 'the orphans to stop' });
  });

  it('never adopts nor signals a process whose pid was reused (start time differs) or that cannot prove the token', async () => {
    const dir = join(stateDir, 'orphans');
    const bystander = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
      env: { ...process.env, [MARK_VARIABLE]: mark },
    });
    children.push(bystander);
    await waitFor(() => isAlive(bystander.pid!), { timeoutMs: 5000, what: 'the bystander' });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const base = {
      version: 1,
      service: 'orphans',
      host: '127.0.0.1',
      port: 1,
      token: 'x'.repeat(48),
      startedAtMs: Date.now(),
      restarts: 0,
    };
    // A record whose pid is the bystander's but with another start time: the pid was reused.
    writeFileSync(
      join(dir, 'orphans-reused.json'),
      JSON.stringify({
        ...base,
        id: 'orphans-reused',
        socket: join(dir, 'g-reused.sock'),
        guardPid: bystander.pid,
        guardStartTime: '1',
        replicaPid: bystander.pid,
        replicaStartTime: '1',
      }),
    );
    // A record naming the bystander exactly (pid and start time), but the bystander is no guard: it cannot answer
    // on the record's socket, let alone prove the token.
    const stat = readFileSync(`/proc/${bystander.pid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(
      join(dir, 'orphans-impostor.json'),
      JSON.stringify({
        ...base,
        id: 'orphans-impostor',
        socket: join(dir, 'g-impostor.sock'),
        guardPid: bystander.pid,
        guardStartTime: startTime,
      }),
    );
    const log = recordingLogger();
    const next = newActuator(stateDir, mark, log);
    actuators.push(next);
    assert.equal(await next.getReplicas(), 0);
    assert.ok(isAlive(bystander.pid!), 'the bystander was not signalled');
    assert.ok(
      log.records.some(
        (r) => r.msg === 'not adopting a replica that did not verify' && r.fields.replica === 'orphans-impostor',
      ),
    );
    assert.ok(!readdirSync(dir).includes('orphans-reused.json'), 'the stale record was removed');
  });

  for (const where of ['coordinator', 'guard'] as const) {
    it(`leaves no process behind when the ${where} is SIGKILLed at any instant of a scale-up, and a restarted coordinator ends with exactly the replicas it wants`, async () => {
      // Instants from the supervisor's "scaling" line: before the guards exist, while they start, before and
      // after they start their replicas.
      const instants = [0, 15, 40, 80, 160, 320, 640];
      for (const delayMs of instants) {
        const sup = startSupervisor(mark, stateDir, { count: 3, graceMs: 20_000 });
        children.push(sup.child);
        await sup.scaling;
        await new Promise((r) => setTimeout(r, delayMs));
        if (where === 'guard') {
          // A guard dies first (whichever exists by now); the coordinator lives on a moment, then dies too.
          const guards = markedProcesses(mark).filter((p) => p.command.includes('replica-guard'));
          for (const g of guards.slice(0, 1)) process.kill(g.pid, 'SIGKILL');
          await new Promise((r) => setTimeout(r, 50));
        }
        await kill(sup.child);
        const next = newActuator(stateDir, mark);
        await next.scaleTo(3);
        // Replicas of guards still starting may appear a moment later: wait for the count to settle at 3.
        await waitFor(() => replicaProcesses(mark).length === 3, {
          timeoutMs: 15_000,
          what: `exactly 3 replicas after a kill at +${delayMs} ms`,
        });
        assert.equal(await next.getReplicas(), 3);
        await next.close();
        await waitFor(() => markedProcesses(mark).length === 0, {
          timeoutMs: 15_000,
          what: `no process left after close() (kill at +${delayMs} ms)`,
        });
      }
    });
  }
});
