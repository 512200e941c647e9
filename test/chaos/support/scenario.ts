/**
 * What every chaos scenario on a `ChaosCluster` does around its fault, in one place: the mocha hooks (skip where
 * /proc cannot be read; after each test, close the cluster and assert no process is left, orphans included), steady
 * traffic started once every replica answers, and the verdict: figures printed on one line (docs/reliability.md
 * copies them), the timeline of failures against the scenario's events when a call failed, and the asserts
 * (enough calls, 0 failed).
 */
import assert from 'node:assert/strict';
import { waitFor } from '../../kit/index.js';
import { ChaosCluster, type ClusterOptions } from './cluster.js';
import { canScanProcesses } from './processes.js';
import { Traffic } from './traffic.js';

/** Installs the hooks; `get()` inside a test starts the cluster (Consul, the coordinator program, `replicas`). */
export function useChaosCluster(): { start(options: ClusterOptions): Promise<ChaosCluster> } {
  let cluster: ChaosCluster | undefined;
  before(function () {
    if (!canScanProcesses) this.skip(); // the leftover check reads /proc
  });
  afterEach(async function () {
    // A test that failed before its verdict (a wait timed out) still says what happened, and when.
    const traffic = cluster?.traffic;
    if (this.currentTest?.state === 'failed' && cluster && traffic && !traffic.printed) {
      await traffic.stop();
      console.log(traffic.timeline(traffic.events[0]?.atMs ?? 0, cluster.programEvents, cluster.replicaNames));
    }
    const left = (await cluster?.close()) ?? [];
    cluster = undefined;
    assert.deepEqual(left, [], 'no process is left behind');
  });
  return {
    async start(options) {
      cluster = new ChaosCluster(options);
      await cluster.startConsul();
      await cluster.startProgram();
      await cluster.waitForPassing(options.replicas);
      return cluster;
    },
  };
}

/**
 * Opens the documented clients, starts traffic, waits until every replica of each service has answered, lets it
 * settle `steadyMs`, and resets the figures (warm-up calls are not counted).
 */
export async function steadyTraffic(cluster: ChaosCluster, replicas: number, steadyMs = 2000): Promise<Traffic> {
  const clients = cluster.openClients();
  cluster.watchConsul();
  const traffic = new Traffic({ grpc: clients.grpc, http: clients.http });
  cluster.traffic = traffic;
  traffic.start();
  try {
    await waitFor(() => traffic.answeredBy('grpc').size >= replicas && traffic.answeredBy('http').size >= replicas, {
      what: `all ${replicas} replicas of each service answering`,
      timeoutMs: 60_000,
      intervalMs: 100,
    });
  } catch (error) {
    await traffic.stop();
    throw error;
  }
  traffic.reset();
  await Traffic.pause(steadyMs);
  return traffic;
}

/**
 * Ends the scenario: `afterMs` more of traffic, then stop; prints the figures (with `extra`) and, when a call
 * failed (or SHOAL_CHAOS_TIMELINE is set), the timeline from `sinceMs`; asserts > 100 calls per client and 0 failed.
 */
export async function verdict(
  scenario: string,
  cluster: ChaosCluster,
  traffic: Traffic,
  sinceMs: number,
  extra: Record<string, unknown>,
  afterMs = 3000,
): Promise<void> {
  traffic.phase = 'after';
  await Traffic.pause(afterMs);
  await traffic.stop();
  const result = traffic.print(scenario, {
    ...extra,
    recoveryMs: traffic.recoveryMs(sinceMs, 250),
    failedBySecond: traffic.failuresBySecond(sinceMs),
  });
  const figures = traffic.figures();
  const failed = figures.grpc!.failed + figures.http!.failed;
  traffic.printed = true;
  if (failed > 0 || process.env.SHOAL_CHAOS_TIMELINE) {
    console.log(traffic.timeline(sinceMs, cluster.programEvents, cluster.replicaNames));
  }
  assert.ok(figures.grpc!.calls > 100 && figures.http!.calls > 100, JSON.stringify(result));
  assert.equal(figures.grpc!.failed, 0, JSON.stringify(figures.grpc));
  assert.equal(figures.http!.failed, 0, JSON.stringify(figures.http));
}
