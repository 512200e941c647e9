/**
 * NOT IN THE SUITE YET (coordinator SIGKILLed mid scale-up): this scenario does not show 0 failed calls on the shared 2-core development machine
 * (figures in docs/reliability.md, "Not yet at 0"). It is kept here, type-checked but not run by `npm test` (the
 * suite runs `*.test.ts`), so it can be run and fixed: `SHOAL_TEST=test/chaos/pending/coordinator-restart.ts npx mocha`. Move it
 * to `test/chaos/coordinator-restart.test.ts` once it passes.
 */
/**
 * Chaos: the coordinator (the real `shoal-coordinator` program) is SIGKILLed in the middle of a scale-up (2 → 4
 * replicas of each service, its guards just starting) and restarted with the same config and `stateDir`, under
 * steady idempotent traffic through `consul:///chaosgrpc` (gRPC) and `@shoal/http` with the documented settings.
 * The replicas serve on while no coordinator runs; the restarted one adopts them (same processes) and finishes the
 * scale-up. Every failed call is counted (goal 0) and no process may be left behind, orphans included.
 * Figures: docs/reliability.md (`SHOAL_TEST=test/chaos/pending/coordinator-restart.ts npx mocha`).
 */
import assert from 'node:assert/strict';
import { isAlive, waitFor } from '../../kit/index.js';
import { ChaosCluster } from '../support/cluster.js';
import { canScanProcesses, markedProcesses } from '../support/processes.js';
import { Traffic } from '../support/traffic.js';

/** How long no coordinator runs: long enough to show the replicas serve without one. */
const DEAD_MS = 3000;

describe('chaos: the coordinator is SIGKILLed mid scale-up and restarted', function () {
  this.timeout(180_000);
  let cluster: ChaosCluster | undefined;

  before(function () {
    if (!canScanProcesses) this.skip(); // the leftover check reads /proc
  });
  afterEach(async () => {
    const left = (await cluster?.close()) ?? [];
    cluster = undefined;
    assert.deepEqual(left, [], 'no process is left behind');
  });

  it('loses no call: the replicas keep serving, the restarted coordinator adopts them and finishes the scale-up', async () => {
    cluster = new ChaosCluster({ replicas: 2, stateDir: true });
    await cluster.startConsul();
    await cluster.startProgram();
    await cluster.waitForPassing(2);
    const clients = cluster.openClients();
    const traffic = new Traffic({ grpc: clients.grpc, http: clients.http });
    traffic.start();
    try {
      await waitFor(() => traffic.answeredBy('grpc').size >= 1 && traffic.answeredBy('http').size >= 1, {
        what: 'both services answering',
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      await Traffic.pause(1000);
      traffic.reset();
      await Traffic.pause(2000);
      const serving = cluster.replicaProcesses().map((p) => p.pid);
      assert.equal(serving.length, 4, 'two replicas of each service');
      const baseline = markedProcesses(cluster.mark).length;

      traffic.phase = 'during';
      const scaleAt = performance.now();
      await cluster.setReplicas(4);
      // The scale-up has begun once a new guard runs: kill the coordinator right then.
      await waitFor(() => markedProcesses(cluster!.mark).length > baseline, {
        what: 'the scale-up to start a guard',
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      const killedAt = performance.now();
      await cluster.killProgram();
      const startedBeforeKill = markedProcesses(cluster.mark).length - baseline + 1; // + the program itself
      await Traffic.pause(DEAD_MS);
      assert.deepEqual(
        serving.filter((pid) => !isAlive(pid)),
        [],
        'the replicas outlive their coordinator',
      );

      const restartedAt = performance.now();
      await cluster.startProgram();
      await cluster.waitForPassing(4, 60_000);
      const completedMs = Math.round(performance.now() - restartedAt);
      assert.deepEqual(
        serving.filter((pid) => !isAlive(pid)),
        [],
        'the restarted coordinator adopted the same replica processes',
      );
      await waitFor(() => cluster!.replicaProcesses().length === 8, {
        what: 'exactly four replicas of each service (none orphaned, none twice)',
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      traffic.phase = 'after';
      await Traffic.pause(3000);
      await traffic.stop();

      const result = traffic.print('coordinator-restart', {
        killedAfterScaleStepMs: Math.round(killedAt - scaleAt),
        processesStartedBeforeKill: startedBeforeKill,
        coordinatorDeadMs: DEAD_MS,
        restartToFourPassingMs: completedMs,
        recoveryMs: traffic.recoveryMs(scaleAt, 250),
        failedBySecond: traffic.failuresBySecond(scaleAt),
      });
      const figures = traffic.figures();
      assert.ok(figures.grpc!.calls > 100 && figures.http!.calls > 100, JSON.stringify(result));
      assert.equal(figures.grpc!.failed, 0, JSON.stringify(figures.grpc));
      assert.equal(figures.http!.failed, 0, JSON.stringify(figures.http));
    } finally {
      await traffic.stop();
    }
  });
});
