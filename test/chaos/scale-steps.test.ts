/**
 * Chaos: scale 1 → 5 → 1 under steady idempotent traffic through `consul:///chaosgrpc` (gRPC) and `@shoal/http`
 * with the documented settings. The steps are an operator's (new bounds in the config file, reloaded on SIGHUP); the
 * coordinator's local actuator starts four replicas of each service, then drains and stops four. Every failed call
 * is counted (goal 0) and no process may be left behind. Figures: docs/reliability.md
 * (`SHOAL_TEST=test/chaos/scale-steps.test.ts npx mocha`).
 *
 * Why 5 and not the 8: each new replica is two node processes (its guard and itself), so 1 → 8 starts 28
 * processes on the 2-core machine while the clients, Consul and the coordinator share it; their start-up alone
 * takes the cores for tens of seconds, which makes the scenario long and measures the machine, not Shoal. 1 → 5
 * starts 16 and exercises the same paths (registration, slow start, drain of several victims at once).
 * `SHOAL_CHAOS_SCALE_PEAK=8` runs the 1 → 8 → 1 (figures in docs/reliability.md).
 */
import { waitFor } from '../kit/index.js';
import { steadyTraffic, useChaosCluster, verdict } from './support/scenario.js';

const PEAK = Number(process.env.SHOAL_CHAOS_SCALE_PEAK ?? 5);

describe(`chaos: scale 1 → ${PEAK} → 1 under load`, function () {
  this.timeout(150_000);
  const chaos = useChaosCluster();

  it(`loses no call while each service goes from 1 to ${PEAK} replicas and back`, async () => {
    const cluster = await chaos.start({ replicas: 1 });
    const traffic = await steadyTraffic(cluster, 1);
    try {
      traffic.phase = 'during';
      const upAt = traffic.event(`scale step 1 -> ${PEAK}`);
      await cluster.setReplicas(PEAK);
      await cluster.waitForPassing(PEAK, 90_000);
      const upMs = Math.round(performance.now() - upAt);
      // The new replicas take traffic before the step down.
      await waitFor(
        () => traffic.answeredBy('grpc', upAt).size >= PEAK && traffic.answeredBy('http', upAt).size >= PEAK,
        { what: `all ${PEAK} replicas of each service answering`, timeoutMs: 30_000, intervalMs: 100 },
      );

      const downAt = traffic.event(`scale step ${PEAK} -> 1`);
      await cluster.setReplicas(1);
      await waitFor(async () => cluster.replicaProcesses().length === 2 && (await cluster.passing()).grpc === 1, {
        what: 'one replica of each service left',
        timeoutMs: 60_000,
        intervalMs: 200,
        retryErrors: true,
      });
      await cluster.waitForPassing(1);
      const downMs = Math.round(performance.now() - downAt);
      await verdict('scale-steps', cluster, traffic, upAt, {
        scaleUpToPassingMs: upMs,
        scaleDownToOneMs: downMs,
        scaleDownStepAtMs: Math.round(downAt - upAt),
      });
    } finally {
      await traffic.stop();
    }
  });
});
