/**
 * Chaos: a Kubernetes-style rolling restart (`kubectl rollout restart`, `maxSurge: 1`, `maxUnavailable: 0`) of two
 * services under steady idempotent traffic through `consul:///chaosgrpc` (gRPC) and `@shoal/http` with the
 * documented client settings. The test plays the Deployment controller and the kubelet: for each old replica (a real
 * process with the agent and its Consul registration, `handleSignals: true`, the default `terminationDelayMs`), a new
 * one is started; once it passes in Consul, the old one gets SIGTERM — and nothing else (no `preStop` sleep, no
 * drain directive). The agent's SIGTERM path (unready and deregistered at once, serving `terminationDelayMs` more,
 * then refusing new work and finishing what is in flight) must cost 0 failed calls, and every old replica must exit
 * by itself (code 0), leaving no process behind. Run alone:
 * (`SHOAL_TEST=test/chaos/rolling-restart.test.ts npx mocha`).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { waitFor } from '../kit/index.js';
import { ChaosCluster, SERVICES } from './support/cluster.js';
import { canScanProcesses } from './support/processes.js';
import { Traffic } from './support/traffic.js';

const REPLICAS = 3;
/** The agents' `terminationDelayMs`: the documented default (5 s). */
const POD_ENV = {};
const MODES = ['grpc', 'http'] as const;

describe('chaos: a Kubernetes-style rolling restart (SIGTERM, no preStop sleep)', function () {
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

  it('replaces every replica one at a time under gRPC and HTTP traffic with no failed call, each old one exiting by itself', async () => {
    cluster = new ChaosCluster({ replicas: REPLICAS });
    const c = cluster;
    await c.startConsul();
    const old = new Map<string, ChildProcess>();
    const fresh: ChildProcess[] = [];
    for (const mode of MODES) {
      for (let i = 0; i < REPLICAS; i++)
        old.set(`${mode}-old-${i}`, await c.startPod(mode, `${mode}-old-${i}`, POD_ENV));
    }
    await c.waitForPassing(REPLICAS);
    const clients = c.openClients();
    const traffic = new Traffic({ grpc: clients.grpc, http: clients.http });
    traffic.start();
    try {
      await waitFor(() => MODES.every((m) => traffic.answeredBy(m).size >= REPLICAS), {
        what: () => `every replica answering: ${JSON.stringify(traffic.figures())}`,
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      traffic.reset();
      await Traffic.pause(1000);

      traffic.phase = 'during';
      const startedAt = performance.now();
      const exits: Array<Promise<[number | null, string | null]>> = [];
      /** One Deployment's rollout: surge one new replica, SIGTERM one old once the new one passes, next. */
      const rollOut = async (mode: (typeof MODES)[number]) => {
        for (let i = 0; i < REPLICAS; i++) {
          const id = `${mode}-new-${i}`;
          fresh.push(await c.startPod(mode, id, POD_ENV));
          await waitFor(async () => (await c.passingIds(SERVICES[mode])).includes(id), {
            what: `${id} passing in Consul`,
            timeoutMs: 30_000,
            intervalMs: 100,
            retryErrors: true,
          });
          // The old pod is Terminating now, so it no longer counts: the next new one starts at once.
          const victim = old.get(`${mode}-old-${i}`)!;
          exits.push(once(victim, 'exit') as Promise<[number | null, string | null]>);
          victim.kill('SIGTERM');
        }
      };
      await Promise.all(MODES.map(rollOut));
      const codes = await Promise.all(exits);
      const restartMs = Math.round(performance.now() - startedAt);
      traffic.phase = 'after';
      const afterAt = performance.now();
      await Traffic.pause(1000);
      await traffic.stop();

      const result = traffic.print('rolling-restart', {
        restartMs,
        failedBySecond: traffic.failuresBySecond(startedAt),
      });
      assert.deepEqual(
        codes,
        codes.map(() => [0, null]),
        'each old replica drained and exited by itself (code 0), none killed',
      );
      const figures = traffic.figures();
      for (const mode of MODES) {
        assert.ok(figures[mode]!.calls > 100, JSON.stringify(result));
        assert.equal(figures[mode]!.failed, 0, JSON.stringify(figures[mode]));
        const answered = [...traffic.answeredBy(mode, afterAt)];
        assert.ok(
          answered.length > 0 && answered.every((who) => who.startsWith(`${mode}-new-`)),
          `only new replicas answer after the restart: ${answered.join()}`,
        );
      }
      assert.deepEqual(
        c
          .replicaProcesses()
          .map((r) => r.pid)
          .sort(),
        fresh.map((p) => p.pid).sort(),
        'only the new replicas run',
      );
    } finally {
      await traffic.stop();
      // The end of the test (the Deployment deleted): whatever still runs goes, so close() finds nothing.
      await Promise.all(
        [...old.values(), ...fresh]
          .filter((p) => p.exitCode === null && p.signalCode === null)
          .map((p) => {
            const exited = once(p, 'exit');
            p.kill('SIGKILL');
            return exited;
          }),
      );
    }
  });
});
