/**
 * A rollout interrupted by a coordinator crash, over real processes: the coordinator runs as the real
 * `shoal-coordinator` program (config file, `stateDir`, `ha.id`), rolls a 4-replica gRPC and a 4-replica HTTP
 * service under steady load, and is SIGKILLed with both versions running. Its replicas outlive it (guards,
 * `orphanGraceMs`); the restarted program adopts them and, from the record in Consul KV, finishes the rollout —
 * or, when that record was deleted or corrupted meanwhile, says so loudly (error log, rollout status, decision log)
 * and converges every replica to the configured version. No call fails; no process is left behind.
 */
import assert from 'node:assert/strict';
import { waitFor } from '../kit/index.js';
import { canScanProcesses } from '../chaos/support/processes.js';
import { API_TOKEN, RolloutHarness, SERVICES, type ServiceName } from './support/harness.js';

const KEY_PREFIX = 'shoal/coordinator/state';

interface Status {
  state: string;
  reason?: string;
  warning?: string;
  replicas: { new: number; newReady: number; old: number; oldReady: number };
  to?: { version: string };
  events: { message: string }[];
}

describe('a rollout interrupted by a coordinator restart (real processes, SIGKILL)', function () {
  this.timeout(300_000);
  let h: RolloutHarness;

  before(async function () {
    if (!canScanProcesses) this.skip(); // replica versions and leftovers are read from /proc
    h = new RolloutHarness({
      coordinatorProcess: true,
      // Long enough a bake that the kill lands while both versions run.
      rollout: { bakeMs: 4000, readyTimeoutMs: 30_000, stepMs: 250 },
      slowStartMs: 5000,
      ratePerService: 40,
    });
    await h.start();
    for (const s of SERVICES) {
      await waitFor(() => h.passingNow(s) === 4 && h.processVersions(s).join() === 'v1,v1,v1,v1', {
        timeoutMs: 60_000,
        what: `4 ${s} v1 replicas passing in Consul`,
      });
    }
    h.startLoad();
    await new Promise((r) => setTimeout(r, 1500));
  });

  after(async () => {
    if (!h) return;
    await h.close();
    await waitFor(() => h.leftover().length === 0, { timeoutMs: 30_000, what: 'every process of the test to exit' });
  });

  const status = async (s: ServiceName) => (await h.rolloutStatus(s)) as unknown as Status;

  /** Deploys `version` and SIGKILLs the coordinator once every service runs both versions with a new one ready. */
  async function deployAndKillMidway(version: string): Promise<void> {
    await h.deploy(version);
    await waitFor(
      async () => {
        const all = await Promise.all(SERVICES.map(status));
        return all.every(
          (st) =>
            st.state === 'rolling-out' &&
            st.to?.version === version &&
            st.replicas.newReady >= 1 &&
            st.replicas.old >= 1,
        );
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `both services midway to ${version}` },
    );
    await h.killCoordinator();
    for (const s of SERVICES) {
      const versions = new Set(h.processVersions(s));
      assert.ok(versions.size === 2, `${s} runs both versions when the coordinator dies: ${[...versions].join()}`);
    }
    // The replicas keep serving without a coordinator.
    await new Promise((r) => setTimeout(r, 1500));
  }

  function assertNoFailure(from: number, to: number): void {
    const calls = h.window(from, to);
    const failed = calls.filter((c) => !c.ok);
    assert.deepEqual(
      failed.slice(0, 5).map((c) => `${c.service}: ${c.detail}`),
      [],
      `${failed.length} of ${calls.length} calls failed`,
    );
    assert.ok(calls.length > 200, `${calls.length} calls made`);
  }

  it('resumes the rollout from the record in Consul and completes it: 0 failed calls, all v2, said in the API and decision log', async () => {
    const from = Date.now();
    await deployAndKillMidway('v2');
    await h.startCoordinatorProcess();
    await h.waitForState('completed', 120_000);
    const to = Date.now();
    assertNoFailure(from, to);
    for (const s of SERVICES) {
      assert.deepEqual(h.processVersions(s), ['v2', 'v2', 'v2', 'v2'], `${s} replica processes`);
      const st = await status(s);
      assert.equal(st.to?.version, 'v2');
      assert.equal(st.warning, undefined);
      assert.ok(
        st.events.some((e) => /resumed after a coordinator restart: v1 → v2/.test(e.message)),
        JSON.stringify(st.events),
      );
      const reasons = await h.decisionReasons(s);
      assert.ok(
        reasons.some((r) => /resumed after a coordinator restart/.test(r)),
        `decision log: ${reasons.join('\n')}`,
      );
      assert.ok(
        reasons.some((r) => /rollout of v2 completed/.test(r)),
        `decision log: ${reasons.join('\n')}`,
      );
    }
  });

  it('says loudly when the record is gone or corrupt and the replicas run a mix, and converges them to the configured version', async () => {
    const from = Date.now();
    await deployAndKillMidway('v3');
    // While the coordinator is down: one record corrupted, the other deleted.
    const kv = `${h.consul.url}/v1/kv/${KEY_PREFIX}`;
    const headers = h.consul.token ? { 'x-consul-token': h.consul.token } : undefined;
    await fetch(`${kv}/rollgrpc/rollout`, { method: 'PUT', body: '{"service":"rollgrpc","state":', headers });
    await fetch(`${kv}/rollhttp/rollout`, { method: 'DELETE', headers });
    await h.startCoordinatorProcess();

    // Said as soon as the restarted coordinator has adopted its replicas and read (or failed to read) the records.
    const grpcStatus = await waitFor(
      async () => ((await status('rollgrpc')).warning ? status('rollgrpc') : undefined),
      {
        timeoutMs: 20_000,
        what: async () => `a warning in ${JSON.stringify(await status('rollgrpc'))}`,
      },
    );
    const httpStatus = await waitFor(
      async () => ((await status('rollhttp')).warning ? status('rollhttp') : undefined),
      {
        timeoutMs: 20_000,
        what: async () => `a warning in ${JSON.stringify(await status('rollhttp'))}`,
      },
    );
    assert.match(
      String(grpcStatus.warning),
      /mixed versions after a coordinator restart: found .* and the rollout record is unreadable/,
    );
    assert.match(
      String(httpStatus.warning),
      /mixed versions after a coordinator restart: found .* and no rollout record was found/,
    );
    for (const st of [grpcStatus, httpStatus]) {
      assert.match(String(st.warning), /rolling every replica to the configured version/);
      assert.notEqual(st.state, 'none');
    }
    await h.waitForState('completed', 120_000);
    const to = Date.now();
    assertNoFailure(from, to);
    for (const s of SERVICES) {
      assert.deepEqual(h.processVersions(s), ['v3', 'v3', 'v3', 'v3'], `${s} replica processes`);
      const st = await status(s);
      assert.match(String(st.warning), /mixed versions/, 'the status keeps saying what was found');
      assert.match(String(st.reason), /converged every replica to v3/);
      const reasons = await h.decisionReasons(s);
      assert.ok(
        reasons.some((r) => /mixed versions after a coordinator restart/.test(r)),
        `decision log: ${reasons.join('\n')}`,
      );
      // The error-level log line of the restarted program.
      assert.ok(
        h.logLines.some((l) => l.level >= 50 && l.service === s && /mixed versions/.test(l.msg)),
        `an error log line for ${s}`,
      );
    }
    const grpcLines = h.logLines.filter((l) => /rollout record in Consul is unreadable/.test(l.msg));
    assert.ok(grpcLines.length >= 1, 'the unreadable record is logged');
    // Undo has no previous version to go to after a convergence from an unreadable record.
    const res = await fetch(`${h.apiUrl()}/v1/services/rollgrpc/rollout/undo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { code: string }).code, 'SHOAL_ERR_ROLLOUT_NOTHING_TO_UNDO');
  });
});
