/**
 * Chaos: the leading coordinator is SIGKILLed (no lock released, no goodbye), three real `shoal-coordinator`
 * processes in high availability over mutual TLS, under steady idempotent traffic through `consul:///chaosgrpc` (gRPC) and
 * `@shoal/http` with the documented settings. The replicas are real processes that outlive coordinators (as pods
 * do); their agents report over mutual TLS to the two followers, which relay to the leader (`ha.relay`). When the leader dies, Consul
 * invalidates its session (at most 2 × sessionTtlMs after its last renewal, then lockDelayMs), a follower takes the
 * lock, the agents on it become local, the other follower relays to it, and decisions resume. Counted: every failed
 * call (goal 0), every process left (goal 0), and the failover time — kill → a new leader elected → its first
 * decision. Figures: docs/reliability.md (`SHOAL_TEST=test/chaos/leader-failover.test.ts npx mocha`).
 */
import assert from 'node:assert/strict';
import { waitFor } from '../kit/index.js';
import { createTestCa, issueClientCertificate, opensslAvailable, type TestCa } from '../support/test-ca.js';
import { ChaosCluster, SERVICES } from './support/cluster.js';
import { HaCluster, SERVER_NAME, type RunningCoordinator } from './support/ha-cluster.js';
import { canScanProcesses } from './support/processes.js';
import { steadyTraffic, verdict } from './support/scenario.js';

/** Consul's minimum session TTL: the lower bound of a failover after a crash. */
const SESSION_TTL_MS = 10_000;
const LOCK_DELAY_MS = 1000;

describe('chaos: the leader coordinator is SIGKILLed (mutual TLS, two followers)', function () {
  this.timeout(120_000);
  let ca: TestCa;
  let cluster: ChaosCluster | undefined;
  let ha: HaCluster | undefined;

  before(function () {
    if (!canScanProcesses || !opensslAvailable) this.skip(); // the leftover check reads /proc; the CA needs openssl
    ca = createTestCa([SERVER_NAME], []);
  });
  after(() => ca?.remove());
  afterEach(async () => {
    await ha?.close();
    ha = undefined;
    const left = (await cluster?.close()) ?? [];
    cluster = undefined;
    assert.deepEqual(left, [], 'no process is left behind');
  });

  it('loses no call; a follower takes over within 2 × TTL + lock delay, agents re-attach, decisions resume', async () => {
    cluster = new ChaosCluster({ replicas: 2 });
    await cluster.startConsul();
    // Mutual TLS: agents show certificates naming their service, followers relay with ha.relay's.
    const relay = issueClientCertificate(ca, 'shoal-relay.shoal.svc');
    ha = new HaCluster(cluster, {
      ca,
      sessionTtlMs: SESSION_TTL_MS,
      lockDelayMs: LOCK_DELAY_MS,
      replicas: 2,
      mtls: { relayCertFile: relay.certFile, relayKeyFile: relay.keyFile, relayName: 'shoal-relay.shoal.svc' },
    });
    const h = ha;
    for (const service of Object.values(SERVICES)) h.agentCertificates[service] = issueClientCertificate(ca, service);
    // Three coordinators at once: whichever takes the lock first leads.
    const all = await Promise.all(['coord-a', 'coord-b', 'coord-c'].map((id) => h.start(id)));
    const leader = await waitFor(
      async () => {
        const leading = (await Promise.all(all.map(async (c) => ((await h.leads(c)) ? c : undefined)))).filter(
          (c) => c !== undefined,
        );
        return leading.length === 1 ? leading[0] : undefined;
      },
      { what: 'one coordinator to lead', timeoutMs: 20_000, intervalMs: 100, retryErrors: true },
    );
    const followers = all.filter((c) => c !== leader) as [RunningCoordinator, RunningCoordinator];
    await waitFor(async () => (await Promise.all(followers.map((f) => h.follows(f)))).every((id) => id === leader.id), {
      what: `both followers to follow ${leader.id}`,
      timeoutMs: 20_000,
      intervalMs: 100,
      retryErrors: true,
    });

    // One replica of each service reports to each follower.
    const instances: string[] = [];
    for (const [i, f] of followers.entries()) {
      for (const mode of ['grpc', 'http'] as const) {
        const instance = `${SERVICES[mode]}-${i + 1}`;
        instances.push(instance);
        await h.startReplica(mode, instance, f);
      }
    }
    await cluster.waitForPassing(2);
    /** Instances with a report newer than `sinceMs` (epoch) in `c`'s own window. */
    const reporting = async (c: RunningCoordinator, sinceMs: number) => {
      const r = await h.get(c, '/v1/services');
      if (r.status !== 200 || r.body.coordinator?.answeredBy) return [];
      return (
        r.body.services as Array<{ instances: Array<{ id: string; connected: boolean; lastReportAtMs?: number }> }>
      )
        .flatMap((s) => s.instances)
        .filter((i) => i.connected && (i.lastReportAtMs ?? 0) > sinceMs)
        .map((i) => i.id)
        .sort();
    };
    await waitFor(async () => (await reporting(leader, 0)).length === 4, {
      what: async () => `every agent relayed to ${leader.id} (${JSON.stringify(await reporting(leader, 0))})`,
      timeoutMs: 20_000,
      intervalMs: 100,
      retryErrors: true,
    });

    const traffic = await steadyTraffic(cluster, 2, 1000);
    try {
      traffic.phase = 'during';
      const killedAt = performance.now();
      const killedAtEpoch = Date.now();
      await h.kill(leader);
      const next = await waitFor(
        async () => {
          for (const f of followers) if (await h.leads(f).catch(() => false)) return f;
          return undefined;
        },
        {
          what: 'a follower to take over',
          timeoutMs: 2 * SESSION_TTL_MS + LOCK_DELAY_MS + 15_000,
          intervalMs: 50,
        },
      );
      const electedMs = Math.round(performance.now() - killedAt);
      // The new leader decides: a decision of its own, made after the kill, for each service.
      let seen: unknown;
      await waitFor(
        async () => {
          const r = await h.get(next, '/v1/services');
          seen =
            r.status === 200
              ? r.body.services?.map((x: { lastDecision?: { atMs: number } }) => x.lastDecision?.atMs)
              : r.status;
          if (r.status !== 200 || r.body.coordinator?.answeredBy) return false;
          const services = r.body.services as Array<{ lastDecision?: { atMs: number } }>;
          return services.length === 2 && services.every((x) => (x.lastDecision?.atMs ?? 0) > killedAtEpoch);
        },
        {
          what: () => `${next.id} deciding (last decisions at ${JSON.stringify(seen)}, killed at ${killedAtEpoch})`,
          timeoutMs: 20_000,
          intervalMs: 100,
          retryErrors: true,
        },
      );
      const decidingMs = Math.round(performance.now() - killedAt);
      const other = followers.find((f) => f !== next)!;
      // Every agent re-attached: reports newer than the takeover in the new leader's own window, the other
      // follower's relayed to it.
      const takenOverAt = Date.now();
      await waitFor(
        async () =>
          (await h.follows(other)) === next.id &&
          JSON.stringify(await reporting(next, takenOverAt)) === JSON.stringify([...instances].sort()),
        {
          what: async () =>
            `every agent reporting to ${next.id} (${JSON.stringify(await reporting(next, takenOverAt))}), ${other.id} following it`,
          timeoutMs: 15_000,
          intervalMs: 100,
          retryErrors: true,
        },
      );
      const reattachedMs = Math.round(performance.now() - killedAt);
      await verdict(
        'leader-failover',
        cluster,
        traffic,
        killedAt,
        {
          sessionTtlMs: SESSION_TTL_MS,
          lockDelayMs: LOCK_DELAY_MS,
          newLeaderElectedMs: electedMs,
          newLeaderDecidingMs: decidingMs,
          agentsReattachedMs: reattachedMs,
        },
        2000,
      );
    } finally {
      await traffic.stop();
    }
  });
});
