/**
 * Chaos: the coordinator (the real `shoal-coordinator` program) is SIGKILLed in the middle of a scale-up (2 → 4
 * replicas of each service, right after its first new guard wrote its record) and restarted with the same config
 * and `stateDir`, under steady idempotent traffic through `consul:///chaosgrpc` (gRPC) and `@shoal/http` with the
 * documented settings. The replicas serve on while no coordinator runs; the restarted one adopts them (same
 * processes, and the guards the dead one was starting) and finishes the scale-up. Every failed call is counted
 * (goal 0) and no process may be left behind, orphans included.
 * Figures: docs/reliability.md (`SHOAL_TEST=test/chaos/coordinator-restart.test.ts npx mocha`).
 */
import assert from 'node:assert/strict';
import { isAlive, waitFor } from '../kit/index.js';
import { markedProcesses } from './support/processes.js';
import { steadyTraffic, useChaosCluster, verdict } from './support/scenario.js';
import { Traffic } from './support/traffic.js';

/** How long no coordinator runs: long enough to show the replicas serve without one. */
const DEAD_MS = 3000;

describe('chaos: the coordinator is SIGKILLed mid scale-up and restarted', function () {
  this.timeout(120_000);
  const chaos = useChaosCluster();

  it('loses no call: the replicas keep serving, the restarted coordinator adopts them and finishes the scale-up', async () => {
    const cluster = await chaos.start({ replicas: 2, stateDir: true });
    const traffic = await steadyTraffic(cluster, 2);
    try {
      const serving = cluster.replicaProcesses().map((p) => p.pid);
      assert.equal(serving.length, 4, 'two replicas of each service');
      const guards = cluster.guardRecords().length;
      const processes = markedProcesses(cluster.mark).length;

      traffic.phase = 'during';
      const scaleAt = traffic.event('scale step 2 -> 4 (config + SIGHUP)');
      await cluster.setReplicas(4);
      // The scale-up has begun once a new guard has written its record (a readdir, cheap enough to poll fast).
      await waitFor(() => cluster.guardRecords().length > guards, {
        what: 'the scale-up to start a guard',
        timeoutMs: 30_000,
        intervalMs: 10,
      });
      const killedAt = traffic.event('coordinator SIGKILL');
      await cluster.killProgram();
      const startedBeforeKill = markedProcesses(cluster.mark).length - processes + 1; // + the program itself
      await Traffic.pause(DEAD_MS);
      assert.deepEqual(
        serving.filter((pid) => !isAlive(pid)),
        [],
        'the replicas outlive their coordinator',
      );

      const restartedAt = traffic.event('coordinator restarted');
      await cluster.startProgram();
      await cluster.waitForPassing(4, 60_000);
      const completedMs = Math.round(performance.now() - restartedAt);
      assert.deepEqual(
        serving.filter((pid) => !isAlive(pid)),
        [],
        'the restarted coordinator adopted the same replica processes',
      );
      await waitFor(() => cluster.replicaProcesses().length === 8, {
        what: 'exactly four replicas of each service (none orphaned, none twice)',
        timeoutMs: 30_000,
        intervalMs: 200,
      });
      await verdict('coordinator-restart', cluster, traffic, scaleAt, {
        killedAfterScaleStepMs: Math.round(killedAt - scaleAt),
        processesStartedBeforeKill: startedBeforeKill,
        coordinatorDeadMs: DEAD_MS,
        restartToFourPassingMs: completedMs,
      });
    } finally {
      await traffic.stop();
    }
  });
});
