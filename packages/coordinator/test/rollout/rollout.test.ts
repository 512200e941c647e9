import assert from 'node:assert/strict';
import { ManualClock, type Disposable } from '@shoal/core';
import { Registry } from 'prom-client';
import type { ReplicaInfo } from '../../src/actuators/actuator.js';
import { specVersion, isRolloutChange, type LocalReplicaSpec } from '../../src/rollout/replica-spec.js';
import { createRolloutMetrics } from '../../src/rollout/rollout-metrics.js';
import { MemoryRolloutStore } from '../../src/rollout/rollout-store.js';
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
  errorRatio = new Map<string, number>(); // by version
  private readonly seq = new Map<string, number>();
  constructor(
    private readonly clock: ManualClock,
    private readonly actuator: FakeLocal,
  ) {}
  views(): InstanceView[] {
    const now = this.clock.now();
    return this.actuator.reps.map((r) => {
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

  function build(options: Partial<RolloutOptions> = OPTIONS, id = 'c1'): RolloutManager {
    return new RolloutManager({
      service: 'web',
      actuator,
      options,
      instances: () => agents.views(),
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
    few.add('new', { requests: 10, errors: 5, latencyBuckets: [] });
    assert.equal(few.verdict().worse, false, 'fewer than minRequests on the new side: no verdict');
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
    manager.pause();
    await clock.advanceAsync(5000, 250);
    assert.equal(drained.length, 0);
    assert.equal(manager.status().paused, true);
    manager.resume();
    await clock.advanceAsync(4000, 250); // a new replica starts, is ready after 1 s, bakes 2 s
    assert.ok(drained.length >= 1);
    await manager.undo();
    assert.equal(manager.status().state, 'rolling-back');
    assert.equal(manager.status().rollbackCause, 'manual');
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
