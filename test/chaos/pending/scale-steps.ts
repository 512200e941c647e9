/**
 * NOT IN THE SUITE YET (scale 1 → 8 → 1): this scenario does not show 0 failed calls on the shared 2-core development machine
 * (figures in docs/reliability.md, "Not yet at 0"). It is kept here, type-checked but not run by `npm test` (the
 * suite runs `*.test.ts`), so it can be run and fixed: `SHOAL_TEST=test/chaos/pending/scale-steps.ts npx mocha`. Move it
 * to `test/chaos/scale-steps.test.ts` once it passes.
 */
/**
 * Chaos: scale 1 → 8 → 1 under steady idempotent traffic through `consul:///chaosgrpc` (gRPC) and `@shoal/http`
 * with the documented settings. The steps are an operator's (new bounds, reloaded as SIGHUP does); the coordinator's
 * local actuator starts seven replicas of each service, then drains and stops seven (config file + SIGHUP). Every failed call is counted
 * (goal 0) and no process may be left behind. Figures: docs/reliability.md
 * (`SHOAL_TEST=test/chaos/pending/scale-steps.ts npx mocha`).
 */
import assert from 'node:assert/strict';
import { waitFor } from '../../kit/index.js';
import { ChaosCluster } from '../support/cluster.js';
import { canScanProcesses } from '../support/processes.js';
import { Traffic } from '../support/traffic.js';

describe('chaos: scale 1 → 8 → 1 under load', function () {
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

  it('loses no call while each service goes from 1 to 8 replicas and back', async () => {
    cluster = new ChaosCluster({ replicas: 1 });
    await cluster.startConsul();
    await cluster.startProgram();
    await cluster.waitForPassing(1);
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

      traffic.phase = 'during';
      const upAt = performance.now();
      await cluster.setReplicas(8);
      await cluster.waitForPassing(8, 120_000);
      const upMs = Math.round(performance.now() - upAt);
      // The new replicas take traffic before the step down.
      await waitFor(() => traffic.answeredBy('grpc', upAt).size >= 8 && traffic.answeredBy('http', upAt).size >= 8, {
        what: 'all eight replicas of each service answering',
        timeoutMs: 30_000,
        intervalMs: 100,
      });

      const downAt = performance.now();
      await cluster.setReplicas(1);
      await waitFor(async () => cluster!.replicaProcesses().length === 2 && (await cluster!.passing()).grpc === 1, {
        what: 'one replica of each service left',
        timeoutMs: 60_000,
        intervalMs: 200,
        retryErrors: true,
      });
      await cluster.waitForPassing(1);
      const downMs = Math.round(performance.now() - downAt);
      traffic.phase = 'after';
      await Traffic.pause(3000);
      await traffic.stop();

      const result = traffic.print('scale-steps', {
        scaleUpToPassingMs: upMs,
        scaleDownToOneMs: downMs,
        scaleDownStepAtMs: Math.round(downAt - upAt),
        recoveryMs: traffic.recoveryMs(upAt, 250),
        failedBySecond: traffic.failuresBySecond(upAt),
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
