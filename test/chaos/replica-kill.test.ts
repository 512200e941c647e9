/**
 * Chaos: a replica crashes (SIGKILL: no drain, no deregistration) under steady idempotent traffic through
 * `consul:///chaosgrpc` (gRPC) and `@shoal/http` with the documented settings, one replica of each service out of
 * three. Consul still lists the dead replica until its TTL check (3 s here) lapses, so the clients meet refused
 * connections first; the coordinator's local actuator starts a replacement. Every failed call is counted (goal 0)
 * and no process may be left behind. Figures: docs/reliability.md
 * (`SHOAL_TEST=test/chaos/replica-kill.test.ts npx mocha`).
 */
import assert from 'node:assert/strict';
import { waitFor } from '../kit/index.js';
import { ChaosCluster } from './support/cluster.js';
import { canScanProcesses } from './support/processes.js';
import { Traffic } from './support/traffic.js';

describe('chaos: a replica is SIGKILLed', function () {
  this.timeout(120_000);
  let cluster: ChaosCluster | undefined;

  before(function () {
    if (!canScanProcesses) this.skip(); // the leftover check reads /proc
  });
  afterEach(async () => {
    const left = (await cluster?.close()) ?? [];
    cluster = undefined;
    assert.deepEqual(left, [], 'no process is left behind');
  });

  it('loses no call while one of three replicas of each service dies and is replaced', async () => {
    cluster = new ChaosCluster({ replicas: 3 });
    await cluster.startConsul();
    await cluster.startProgram();
    await cluster.waitForPassing(3);
    const clients = cluster.openClients();
    const traffic = new Traffic({ grpc: clients.grpc, http: clients.http });
    traffic.start();
    try {
      await waitFor(() => traffic.answeredBy('grpc').size >= 3 && traffic.answeredBy('http').size >= 3, {
        what: 'every replica answering',
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      traffic.reset();
      await Traffic.pause(2000);

      // One replica of each service; the actuator's guard sees it die and starts a replacement.
      const replicas = cluster.replicaProcesses();
      const victims = ['grpc', 'http'].map((mode) => replicas.find((r) => r.mode === mode)!.pid);
      traffic.phase = 'during';
      const killedAt = performance.now();
      for (const pid of victims) process.kill(pid, 'SIGKILL');
      await waitFor(
        async () => {
          const now = cluster!.replicaProcesses();
          const p = await cluster!.passing();
          return now.length === 6 && !now.some((r) => victims.includes(r.pid)) && p.grpc === 3 && p.http === 3;
        },
        { what: 'both victims replaced and passing in Consul', timeoutMs: 60_000, intervalMs: 200, retryErrors: true },
      );
      const replacedMs = Math.round(performance.now() - killedAt);
      traffic.phase = 'after';
      await Traffic.pause(3000);
      await traffic.stop();

      const result = traffic.print('replica-kill', {
        replacedAndPassingMs: replacedMs,
        recoveryMs: traffic.recoveryMs(killedAt, 250),
        failedBySecond: traffic.failuresBySecond(killedAt),
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
