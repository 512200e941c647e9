import assert from 'node:assert/strict';
import { ManualClock, type Disposable } from '@shoal/core';
import { Registry } from 'prom-client';
import type { ReplicaInfo } from '../../src/actuators/actuator.js';
import { specVersion, isRolloutChange, type LocalReplicaSpec } from '../../src/rollout/replica-spec.js';
import { createRolloutMetrics } from '../../src/rollout/rollout-metrics.js';
import { ConsulRolloutStore, MemoryRolloutStore, type PersistedRollout } from '../../src/rollout/rollout-store.js';
import { checkRolloutSpec } from '../../src/rollout/spec-check.js';
import { RolloutError } from '../../src/rollout/rollout-error.js';
import { hasErrorCode } from '@shoal/core';
import type { ConsulKv } from '@shoal/consul';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RolloutManager, type RolloutActuator, type RolloutOptions } from '../../src/rollout/rollout.js';
import { VersionComparison } from '../../src/rollout/version-comparison.js';
import type { InstanceView } from '../../src/service-window.js';

const V1: LocalReplicaSpec = { command: 'node', args: ['server.js'], env: { VERSION: '1' } };
const V2: LocalReplicaSpec = { command: 'node', args: ['server.js'], env: { VERSION: '2' } };
const V3: LocalReplicaSpec = { command: 'node', args: ['server.js'], env: { VERSION: '3' } };

interface FakeReplica {
  id: string;
  state: ReplicaInfo['state'];
  version: string;
  restarts: number;
  startedAtMs: number;
  adopted?: boolean;
}

/** The local actuator as the rollout sees it: replicas with a version, started and stopped at once. */
class FakeLocal implements RolloutActuator {
  readonly type = 'local';
  spec: LocalReplicaSpec;
  version: string;
  reps: FakeReplica[] = [];
  private n = 0;
  constructor(
    private readonly clock: ManualClock,
    spec: LocalReplicaSpec,
  ) {
    this.spec = spec;
    this.version = specVersion(spec);
  }
  setSpec(spec: LocalReplicaSpec): string {
    this.spec = spec;
    this.version = specVersion(spec);
    return this.version;
  }
  async start(): Promise<string> {
    const id = `r${this.n++}`;
    this.reps.push({ id, state: 'running', version: this.version, restarts: 0, startedAtMs: this.clock.now() });
    return id;
  }
  async stop(id: string): Promise<void> {
    this.reps = this.reps.filter((r) => r.id !== id);
  }
  expectExit(): void {}
  async getReplicas(): Promise<number> {
    return this.reps.length;
  }
  async scaleTo(n: number): Promise<void> {
    while (this.reps.length < n) await this.start();
    while (this.reps.length > n) this.reps.pop();
  }
  watch(): Disposable {
    return { dispose() {} } as unknown as Disposable;
  }
  replicas(): readonly ReplicaInfo[] {
    return this.reps.map((r) => ({ ...r }));
  }
  async close(): Promise<void> {}
}

/** What agents of each replica report: ready some time after start, and their requests and errors. */
class Agents {
  readyAfterMs = new Map<string, number>(); // by version
  /** Replicas whose agent has not (re)connected to this coordinator: no view at all. */
  silent = new Set<string>();
  errorRatio = new Map<string, number>(); // by version
  private readonly seq = new Map<string, number>();
  constructor(
    private readonly clock: ManualClock,
    private readonly actuator: FakeLocal,
  ) {}
  views(): InstanceView[] {
    const now = this.clock.now();
    return this.actuator.reps
      .filter((r) => !this.silent.has(r.id))
      .map((r) => {
        const after = this.readyAfterMs.get(r.version) ?? 1000;
        const seq = (this.seq.get(r.id) ?? 0) + 1;
        this.seq.set(r.id, seq);
        const ratio = this.errorRatio.get(r.version) ?? 0;
        return {
          id: r.id,
          service: 'web',
          address: '127.0.0.1',
          port: 1,
          startedAtMs: r.startedAtMs,
          firstSeenAtMs: r.startedAtMs,
          ready: now - r.startedAtMs >= after,
          draining: false,
          connected: true,
          missing: false,
          lastReport: {
            seq,
            intervalMs: 500,
            ready: true,
            inFlight: 0,
            requests: 10,
            errors: Math.round(10 * ratio),
            latencyBuckets: [],
            eventLoopUtilization: 0,
            eventLoopDelayP99Ms: 0,
            cpu: 0,
            rssBytes: 0,
            heapUsedBytes: 0,
            custom: {},
            sentAtMs: now,
            droppedReports: 0,
          },
          metrics: {},
        };
      });
  }
}

describe('RolloutManager', () => {
  let clock: ManualClock;
  let actuator: FakeLocal;
  let agents: Agents;
  let store: MemoryRolloutStore;
  let manager: RolloutManager;
  let drained: string[];
  const OPTIONS: Partial<RolloutOptions> = { bakeMs: 2000, readyTimeoutMs: 10_000, requireConsulPassing: false };

  function build(
    options: Partial<RolloutOptions> = OPTIONS,
    id = 'c1',
    consulPassing?: () => ReadonlySet<string>,
  ): RolloutManager {
    return new RolloutManager({
      service: 'web',
      actuator,
      options,
      instances: () => agents.views(),
      ...(consulPassing ? { consulPassing } : {}),
      drain: async (replica) => {
        drained.push(replica);
        return 'drained';
      },
      store,
      metrics: createRolloutMetrics(new Registry()),
      id,
      clock,
    });
  }

  beforeEach(async () => {
    clock = new ManualClock(1_000_000);
    actuator = new FakeLocal(clock, V1);
    agents = new Agents(clock, actuator);
    store = new MemoryRolloutStore();
    drained = [];
    await actuator.scaleTo(4);
    clock.advance(5000); // the v1 replicas are ready
    manager = build();
  });

  afterEach(async () => {
    await manager.close();
  });

  /** Advances in steps, checking after each that enough replicas answer and the surge stays within bounds. */
  async function runUntil(done: () => boolean, maxMs = 120_000, minReady = 4): Promise<number> {
    let lowest = Infinity;
    for (let t = 0; t < maxMs && !done(); t += 250) {
      await clock.advanceAsync(250, 250);
      const ready = agents.views().filter((v) => v.ready).length;
      lowest = Math.min(lowest, ready);
      assert.ok(
        actuator.reps.length <= 4 + 1 + 1,
        `at most maxSurge above the count (+1 draining), got ${actuator.reps.length}`,
      );
    }
    assert.ok(done(), 'the rollout finished in time');
    assert.ok(lowest >= minReady, `never fewer than ${minReady} ready, lowest ${lowest}`);
    return lowest;
  }

  it('rolls v1 → v2 one surge replica at a time, draining old replicas only once new ones are ready', async () => {
    await manager.begin(V2);
    assert.equal(manager.status().state, 'rolling-out');
    assert.equal(await manager.getReplicas(), 4, 'the control loop sees the count, not the surge');
    await clock.advanceAsync(500, 250);
    assert.equal(actuator.reps.length, 5, 'one surge replica');
    assert.equal(drained.length, 0, 'no old replica goes before a new one is ready');
    await runUntil(() => manager.status().state === 'completed');
    const v2 = specVersion(V2);
    assert.deepEqual(
      actuator.reps.map((r) => r.version),
      [v2, v2, v2, v2],
    );
    assert.equal(drained.length, 4, 'each old replica got the drain directive');
    const status = manager.status();
    assert.equal(status.to?.configHash, v2);
    assert.match(status.reason ?? '', /completed/);
    assert.equal((await store.load('web'))?.state, 'completed');
  });

  it('waits the bake period with one new replica beside the old ones before any old one goes', async () => {
    await manager.begin(V2);
    await clock.advanceAsync(1500, 250); // the first v2 replica is ready
    await clock.advanceAsync(1000, 250); // inside the 2 s bake
    assert.equal(drained.length, 0);
    assert.match(manager.status().reason ?? '', /baking/);
    await clock.advanceAsync(1500, 250);
    assert.ok(drained.length >= 1, 'after the bake, old replicas go');
  });

  it('applies a scale-up during the rollout to the new version', async () => {
    await manager.begin(V2);
    await clock.advanceAsync(3000, 250);
    await manager.scaleTo(6);
    assert.equal(await manager.getReplicas(), 6);
    for (let t = 0; t < 120_000 && manager.status().state !== 'completed'; t += 250) await clock.advanceAsync(250, 250);
    assert.equal(manager.status().state, 'completed');
    assert.equal(actuator.reps.length, 6);
    assert.ok(actuator.reps.every((r) => r.version === specVersion(V2)));
  });

  it('rolls back a version whose replicas fail half their calls, and says why', async () => {
    agents.errorRatio.set(specVersion(V3), 0.5);
    await manager.begin(V3);
    await runUntil(() => manager.status().state === 'rolled-back');
    const status = manager.status();
    assert.equal(status.rollbackCause, 'errors');
    assert.match(status.reason ?? '', /error ratio 50\.0%/);
    assert.equal(actuator.reps.length, 4);
    assert.ok(
      actuator.reps.every((r) => r.version === specVersion(V1)),
      'back on v1',
    );
    assert.equal(actuator.spec, V1, 'new replicas (restarts, scale-ups) run v1 again');
    assert.equal((await store.load('web'))?.state, 'rolled-back');
  });

  it('does not roll back on noise (an error or two among many calls)', async () => {
    const comparison = new VersionComparison();
    for (let i = 0; i < 30; i++) comparison.add('old', { requests: 20, errors: 0, latencyBuckets: [] });
    comparison.add('new', { requests: 60, errors: 2, latencyBuckets: [] });
    assert.equal(comparison.verdict().worse, false, '2/60 against 0/600 is under 5 points');
    const few = new VersionComparison();
    few.add('old', { requests: 200, errors: 0, latencyBuckets: [] });
    few.add('new', { requests: 3, errors: 2, latencyBuckets: [] });
    assert.equal(few.verdict().worse, false, 'two errors never roll back, however few the calls');
  });

  it('rolls back a version that never becomes ready within readyTimeoutMs', async () => {
    agents.readyAfterMs.set(specVersion(V3), Infinity);
    await manager.begin(V3);
    await clock.advanceAsync(9000, 250);
    assert.equal(manager.status().state, 'rolling-out', 'still inside the deadline');
    await runUntil(() => manager.status().state === 'rolled-back', 20_000);
    assert.equal(manager.status().rollbackCause, 'not_ready');
    assert.ok(actuator.reps.every((r) => r.version === specVersion(V1)));
    assert.equal(drained.length, 0, 'no v1 replica was touched');
  });

  it('rolls back a crash-looping version', async () => {
    await manager.begin(V3);
    await clock.advanceAsync(500, 250);
    const bad = actuator.reps.find((r) => r.version === specVersion(V3))!;
    bad.state = 'restarting';
    bad.restarts = 3;
    await clock.advanceAsync(500, 250);
    assert.equal(manager.status().state, 'rolling-back');
    assert.equal(manager.status().rollbackCause, 'crash_loop');
  });

  it('pauses (no old replica goes), resumes, and undoes on request', async () => {
    await manager.begin(V2);
    assert.match(manager.pause().reason ?? '', /^paused: /, 'paused at once, not at the next step');
    await clock.advanceAsync(5000, 250);
    assert.equal(drained.length, 0);
    assert.equal(manager.status().paused, true);
    assert.equal(manager.resume().reason, 'resumed');
    await clock.advanceAsync(4000, 250); // a new replica starts, is ready after 1 s, bakes 2 s
    assert.ok(drained.length >= 1);
    assert.doesNotMatch(manager.status().reason ?? '', /paused|resumed/);
    await manager.undo();
    assert.equal(manager.status().state, 'rolling-back');
    assert.equal(manager.status().rollbackCause, 'manual');
    // A paused and resumed rollback says why it rolls back again, not "paused" or "resumed".
    manager.pause();
    await clock.advanceAsync(1000, 250);
    manager.resume();
    await clock.advanceAsync(500, 250);
    assert.match(manager.status().reason ?? '', /^rolling back .*: undo requested$/);
    await runUntil(() => manager.status().state === 'rolled-back', 60_000, 3);
    assert.ok(actuator.reps.every((r) => r.version === specVersion(V1)));
    await assert.rejects(manager.undo(), /nothing to undo/);
    assert.throws(() => manager.pause(), /no rollout in progress/);
  });

  it('a new coordinator resumes a persisted rollout to the configured version, and finishes it', async () => {
    await manager.begin(V2);
    await clock.advanceAsync(4000, 250);
    await manager.close();
    // The old coordinator is gone; its replicas survived (adopted), its config names v2.
    actuator.setSpec(V2);
    manager = build(OPTIONS, 'c2');
    await manager.restore();
    assert.equal(manager.status().state, 'rolling-out');
    assert.match(manager.status().events.at(-1)?.message ?? '', /resumed after a coordinator restart/);
    await runUntil(() => manager.status().state === 'completed');
    assert.ok(actuator.reps.every((r) => r.version === specVersion(V2)));
    assert.equal(actuator.reps.length, 4);
  });

  it('after a restart, keeps the good version of a rolled-back rollout and says the config still names the bad one', async () => {
    agents.errorRatio.set(specVersion(V3), 0.5);
    await manager.begin(V3);
    await runUntil(() => manager.status().state === 'rolled-back');
    await manager.close();
    actuator.setSpec(V3); // the config file still says v3
    manager = build(OPTIONS, 'c2');
    await manager.restore();
    assert.equal(manager.status().state, 'rolled-back');
    assert.equal(actuator.version, specVersion(V1), 'new replicas run v1');
    assert.match(manager.status().reason ?? '', /config still names the rolled-back version/);
  });

  it('refuses pause, resume and undo that do not fit the state, with a code and the service named', async () => {
    const refused = (fn: () => unknown, code: string, message: RegExp) => {
      try {
        fn();
      } catch (error) {
        assert.ok(error instanceof RolloutError && hasErrorCode(error, code), String(error));
        assert.match((error as Error).message, message);
        return;
      }
      assert.fail(`expected ${code}`);
    };
    refused(() => manager.pause(), 'SHOAL_ERR_ROLLOUT_NOT_IN_PROGRESS', /^web: cannot pause: no rollout in progress/);
    refused(() => manager.resume(), 'SHOAL_ERR_ROLLOUT_NOT_IN_PROGRESS', /^web: cannot resume: no rollout/);
    await assert.rejects(manager.undo(), (e: unknown) => {
      assert.ok(hasErrorCode(e, 'SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO'));
      assert.match((e as Error).message, /^web: nothing to undo: no rollout has completed/);
      return true;
    });
    await manager.begin(V2);
    await clock.advanceAsync(2000, 250);
    await manager.undo();
    await assert.rejects(manager.undo(), (e: unknown) => {
      assert.ok(hasErrorCode(e, 'SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO'));
      assert.match((e as Error).message, /a rollback to [0-9a-f]{12} is already in progress/);
      return true;
    });
    manager.refused(new RolloutError('SHOAL_ERR_ROLLOUT_INVALID', 'bad command'));
    assert.match(
      manager.status().events.at(-1)?.message ?? '',
      /config change refused \(SHOAL_ERR_ROLLOUT_INVALID\): bad command/,
    );
  });

  async function crashMidway(): Promise<void> {
    await manager.begin(V2);
    await clock.advanceAsync(4000, 250); // one v2 ready beside the v1 ones
    assert.ok(new Set(actuator.reps.map((r) => r.version)).size === 2, 'a mix of versions');
    await manager.close();
    actuator.setSpec(V2); // the config names v2; the replicas survived
  }

  it('with no record, says it found a mix and rolls every replica to the configured version at the decided count', async () => {
    await crashMidway();
    store = new MemoryRolloutStore(); // the record is gone
    const events: string[] = [];
    manager = new RolloutManager({
      service: 'web',
      actuator,
      options: OPTIONS,
      instances: () => agents.views(),
      drain: async (replica) => {
        drained.push(replica);
        return 'drained';
      },
      store,
      metrics: createRolloutMetrics(new Registry()),
      id: 'c2',
      clock,
      onEvent: (m) => events.push(m),
    });
    manager.assumeReplicas(4); // the control loop's persisted count (the surge replica is not part of it)
    await manager.restore();
    const st = manager.status();
    assert.equal(st.state, 'rolling-out');
    assert.match(
      st.warning ?? '',
      /mixed versions after a coordinator restart: found \d × [0-9a-f]{12}, \d × [0-9a-f]{12} and no rollout record was found/,
    );
    assert.ok(
      events.some((e) => /mixed versions/.test(e)),
      'the decision log hears of it',
    );
    await runUntil(() => manager.status().state === 'completed', 60_000, 3);
    assert.deepEqual(
      actuator.reps.map((r) => r.version),
      Array(4).fill(specVersion(V2)),
    );
    assert.match(manager.status().reason ?? '', /converged every replica to/);
    await assert.rejects(manager.undo(), (e: unknown) => hasErrorCode(e, 'SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO'));
  });

  it('with an unreadable record, says so and converges; a record about other versions is history and converges too', async () => {
    await crashMidway();
    const unreadable = {
      load: async () => {
        throw new RolloutError('SHOAL_ERR_ROLLOUT_RECORD', 'Consul key x: not JSON');
      },
      save: async () => {},
    };
    store = unreadable as unknown as MemoryRolloutStore;
    manager = build(OPTIONS, 'c2');
    await manager.restore();
    assert.match(manager.status().warning ?? '', /the rollout record is unreadable \(Consul key x: not JSON\)/);
    // The control loop's count arrives after the convergence began (it found every live replica, surge included).
    manager.assumeReplicas(4);
    assert.equal(manager.status().replicas.desired, 4);
    await runUntil(() => manager.status().state === 'completed', 60_000, 3);
    assert.ok(actuator.reps.every((r) => r.version === specVersion(V2)));

    // The config is set back to v1 while a v2 rollout record is persisted and v2 replicas run.
    store = new MemoryRolloutStore();
    await manager.close();
    manager = build(OPTIONS, 'c3');
    await manager.begin(V3);
    await clock.advanceAsync(4000, 250);
    await manager.close();
    actuator.setSpec(V1);
    manager = build(OPTIONS, 'c4');
    manager.assumeReplicas(4);
    await manager.restore();
    assert.match(manager.status().warning ?? '', /the persisted rolling-out rollout .* does not explain them/);
    await runUntil(() => manager.status().state === 'completed', 60_000, 3);
    assert.ok(actuator.reps.every((r) => r.version === specVersion(V1)));
    // The record's specs are known: undo goes back to the one the replicas ran before (v2, the rollout's from).
    await manager.undo();
    assert.equal(manager.status().to?.configHash, specVersion(V2));
  });

  it('does not roll back an adopted replica that passes in Consul while its agent has not found the new coordinator', async () => {
    await crashMidway();
    const adoptedNew = actuator.reps.filter((r) => r.version === specVersion(V2));
    for (const r of actuator.reps) r.adopted = true;
    for (const r of adoptedNew) agents.silent.add(r.id);
    const passing = () => new Set(actuator.reps.map((r) => r.id));
    manager = build({ ...OPTIONS, requireConsulPassing: true }, 'c2', passing);
    await manager.restore();
    await clock.advanceAsync(OPTIONS.readyTimeoutMs! + 5000, 250);
    assert.equal(manager.status().state, 'rolling-out', manager.status().reason);
    agents.silent.clear(); // the agents reconnect
    await runUntil(() => manager.status().state === 'completed', 60_000, 3);
    assert.equal(manager.status().rollbackCause, undefined);
  });

  it('ConsulRolloutStore refuses an unreadable record with SHOAL_ERR_ROLLOUT_RECORD, never quoting it', async () => {
    let value: string | undefined;
    const kv = { get: async () => (value === undefined ? undefined : { Value: value }), set: async () => true };
    const consulStore = new ConsulRolloutStore(kv as unknown as ConsulKv, 'p/');
    assert.equal(await consulStore.load('web'), undefined);
    for (const bad of [
      '{"service":',
      '[]',
      JSON.stringify({ service: 'web', state: 'x' }),
      JSON.stringify({ service: 'other' }),
    ]) {
      value = bad;
      await assert.rejects(consulStore.load('web'), (e: unknown) => {
        assert.ok(hasErrorCode(e, 'SHOAL_ERR_ROLLOUT_RECORD'), String(e));
        assert.match((e as Error).message, /^Consul key p\/web\/rollout: /);
        return true;
      });
    }
    const good: PersistedRollout = {
      service: 'web',
      state: 'completed',
      paused: false,
      fromSpec: V1,
      toSpec: { ...V2, env: { SECRET: 'hunter2hunter2' } },
      fromVersion: 'v1',
      toVersion: 'v2',
      startedAtMs: 1,
      updatedAtMs: 2,
      by: 'c1',
    };
    value = JSON.stringify({ ...good, toSpec: { ...good.toSpec, args: [1] } });
    await assert.rejects(consulStore.load('web'), (e: unknown) => !(e as Error).message.includes('hunter2'));
    value = JSON.stringify(good);
    assert.deepEqual(await consulStore.load('web'), good);
  });

  it('checkRolloutSpec refuses a new version that cannot start, naming the field and value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-spec-'));
    try {
      const script = join(dir, 'run.sh');
      writeFileSync(script, '#!/bin/sh\n');
      chmodSync(script, 0o644);
      const env = { PATH: '/usr/bin:/bin' };
      const invalid = async (spec: LocalReplicaSpec, message: RegExp) =>
        assert.rejects(checkRolloutSpec('web', spec, env), (e: unknown) => {
          assert.ok(hasErrorCode(e, 'SHOAL_ERR_ROLLOUT_INVALID'), String(e));
          assert.match((e as Error).message, message);
          return true;
        });
      await invalid(
        { ...V1, command: join(dir, 'nope') },
        /^service "web": cannot roll out the new version: actuator.command ".*nope" is not an executable file$/,
      );
      await invalid({ ...V1, command: script }, /run.sh" is not an executable file/);
      await invalid(
        { ...V1, command: './run.sh', cwd: dir },
        /"\.\/run\.sh" is not an executable file \(resolved against ".*"\)/,
      );
      await invalid(
        { ...V1, command: 'no-such-command-shoal' },
        /"no-such-command-shoal" is not an executable found on the replicas' PATH/,
      );
      await invalid({ ...V1, cwd: join(dir, 'missing') }, /actuator.cwd ".*missing" is not a directory/);
      chmodSync(script, 0o755);
      await checkRolloutSpec('web', { ...V1, command: './run.sh', cwd: dir }, env);
      await checkRolloutSpec('web', { ...V1, command: process.execPath }, env);
      await checkRolloutSpec('web', { ...V1, command: 'sh' }, env);
      await checkRolloutSpec('web', { ...V1, command: 'anything' }); // no PATH known: not checked
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('recognises which config changes are rollouts', () => {
    const base = { type: 'local', command: 'node', args: ['a.js'], env: {}, host: '127.0.0.1', stopTimeoutMs: 1000 };
    assert.equal(isRolloutChange(base, { ...base, args: ['b.js'] }), true);
    assert.equal(isRolloutChange(base, { ...base, env: { X: '1' } }), true);
    assert.equal(isRolloutChange(base, { ...base, cwd: '/srv' }), true);
    assert.equal(isRolloutChange(base, { ...base, args: ['b.js'], stopTimeoutMs: 5 }), false, 'also other fields');
    assert.equal(isRolloutChange(base, { ...base }), false, 'no change');
    assert.equal(isRolloutChange(base, { ...base, type: 'command' }), false);
  });
});
