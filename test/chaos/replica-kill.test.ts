/**
 * Chaos: a replica crashes (SIGKILL: no drain, no deregistration) under steady idempotent traffic through
 * `consul:///chaosgrpc` (gRPC) and `@shoal/http` with the documented settings, one replica of each service out of
 * three. Consul still lists the dead replica until its TTL check (3 s here) lapses, so the clients meet refused
 * connections first; the coordinator's local actuator starts a replacement. Every failed call is counted (goal 0)
 * and no process may be left behind. Figures: docs/reliability.md
 * (`SHOAL_TEST=test/chaos/replica-kill.test.ts npx mocha`).
 */
import { waitFor } from '../kit/index.js';
import { steadyTraffic, useChaosCluster, verdict } from './support/scenario.js';

describe('chaos: a replica is SIGKILLed', function () {
  this.timeout(120_000);
  const chaos = useChaosCluster();

  it('loses no call while one of three replicas of each service dies and is replaced', async () => {
    const cluster = await chaos.start({ replicas: 3 });
    const traffic = await steadyTraffic(cluster, 3);
    try {
      // One replica of each service; the actuator's guard sees it die and starts a replacement.
      const replicas = cluster.replicaProcesses();
      const victims = ['grpc', 'http'].map((mode) => replicas.find((r) => r.mode === mode)!.pid);
      traffic.phase = 'during';
      const killedAt = traffic.event('one replica of each service SIGKILLed');
      for (const pid of victims) process.kill(pid, 'SIGKILL');
      await waitFor(
        async () => {
          const now = cluster.replicaProcesses();
          const p = await cluster.passing();
          return now.length === 6 && !now.some((r) => victims.includes(r.pid)) && p.grpc === 3 && p.http === 3;
        },
        { what: 'both victims replaced and passing in Consul', timeoutMs: 60_000, intervalMs: 200, retryErrors: true },
      );
      const replacedMs = Math.round(performance.now() - killedAt);
      await verdict('replica-kill', cluster, traffic, killedAt, { replacedAndPassingMs: replacedMs });
    } finally {
      await traffic.stop();
    }
  });
});
