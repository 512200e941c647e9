/**
 * Rolling deploys on the local actuator, over real processes: a 4-replica gRPC service (clients through
 * `consul:///` and a Shoal policy) and a 4-replica HTTP service (clients through `@shoal/http`), both under steady
 * load, rolled v1 → v2 with no failed call and never fewer than 4 replicas passing; a bad v3 (fails half its
 * calls) and a v4 that never becomes ready are rolled back by themselves.
 */
import assert from 'node:assert/strict';
import { isAlive, waitFor } from '../kit/index.js';
import { API_TOKEN, RolloutHarness, SERVICES } from './support/harness.js';

describe('rolling deploys with the local actuator (real processes)', function () {
  this.timeout(240_000);
  let h: RolloutHarness | undefined;
  let pids: number[] = [];

  afterEach(async () => {
    if (h) pids = h.pids();
    await h?.close();
    h = undefined;
    await waitFor(() => pids.every((p) => !isAlive(p)), { timeoutMs: 20_000, what: 'every replica to exit' });
  });

  async function started(rollout: Record<string, unknown>): Promise<RolloutHarness> {
    h = new RolloutHarness({ rollout, slowStartMs: 5000, ratePerService: 40 });
    await h.start();
    for (const s of SERVICES) {
      await waitFor(() => h!.passingNow(s) === 4 && h!.versions(s).length === 4, {
        timeoutMs: 60_000,
        what: `4 ${s} replicas passing in Consul`,
      });
    }
    h.startLoad();
    await new Promise((r) => setTimeout(r, 2000));
    return h;
  }

  it('rolls v1 → v2 under gRPC and HTTP load with no failed call and never fewer than 4 replicas passing', async () => {
    const harness = await started({ bakeMs: 3000, readyTimeoutMs: 30_000, stepMs: 250 });
    const from = Date.now();
    await harness.deploy('v2');
    await harness.waitForState('completed', 120_000);
    await new Promise((r) => setTimeout(r, 2000));
    const to = Date.now();
    await harness.stopLoad();

    const calls = harness.window(from, to);
    const failed = calls.filter((c) => !c.ok);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${calls.length} calls failed`);
    assert.ok(calls.length > 200, `${calls.length} calls made`);
    const lowest = harness.lowestPassing(from, to);
    for (const s of SERVICES) {
      assert.ok(lowest[s] >= 4, `${s}: never fewer than 4 passing, lowest ${lowest[s]}`);
      assert.deepEqual(harness.versions(s), ['v2', 'v2', 'v2', 'v2']);
      const status = await harness.rolloutStatus(s);
      assert.equal((status.from as { version: string }).version, 'v1');
      assert.equal((status.to as { version: string }).version, 'v2');
    }
    const log = harness.coordinator.decisions('rollgrpc')!.flatMap((d) => d.reasons);
    assert.ok(
      log.some((r) => /rollout .*rolling out v2|rolling out [0-9a-f]{12}/.test(r)),
      log.join('\n'),
    );
    assert.ok(
      log.some((r) => /completed/.test(r)),
      'the decision log says the rollout completed',
    );
    const text = await (
      await fetch(`${harness.coordinator.urls().http}/metrics`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
    ).text();
    assert.match(text, /shoal_coordinator_rollouts_total\{service="rollgrpc",outcome="completed"\} 1/);
  });

  it('rolls back a v3 that fails half its calls, and one that never becomes ready, without failing a v1 call', async () => {
    const harness = await started({
      bakeMs: 20_000,
      readyTimeoutMs: 12_000,
      stepMs: 250,
      analysis: { minRequests: 20 },
    });
    // A bad v3: its replicas take traffic (slow start) and fail half their calls until the comparison decides.
    let from = Date.now();
    await harness.deploy('v3', { FAIL_HALF: '1' });
    await harness.waitForState('rolled-back', 120_000);
    for (const s of SERVICES) {
      const status = await harness.rolloutStatus(s);
      assert.equal(status.rollbackCause, 'errors', JSON.stringify(status));
      assert.match(String(status.reason), /error ratio/);
      await waitFor(() => harness.versions(s).join() === 'v1,v1,v1,v1', { timeoutMs: 20_000, what: `${s} on v1` });
    }
    let calls = harness.window(from);
    const failedV3 = calls.filter((c) => !c.ok);
    assert.ok(
      failedV3.every((c) => c.detail.includes('v3')),
      `only v3 failed: ${failedV3.map((c) => c.detail).join('; ')}`,
    );
    assert.ok(failedV3.length / calls.length < 0.05, `${failedV3.length} of ${calls.length} calls failed`);
    assert.ok(harness.lowestPassing(from).rollgrpc >= 4);

    // A v4 that never becomes ready: rolled back after readyTimeoutMs, nothing fails, v1 untouched.
    from = Date.now();
    await harness.deploy('v4', { NEVER_READY: '1' });
    await waitFor(async () => (await harness.rolloutStatus('rollgrpc')).state === 'rolling-out', {
      timeoutMs: 5000,
      what: 'the v4 rollout to start',
    });
    await harness.waitForState('rolled-back', 90_000);
    await new Promise((r) => setTimeout(r, 1000));
    const to = Date.now();
    await harness.stopLoad();
    for (const s of SERVICES) {
      const status = await harness.rolloutStatus(s);
      assert.equal(status.rollbackCause, 'not_ready', JSON.stringify(status));
      assert.deepEqual(harness.versions(s), ['v1', 'v1', 'v1', 'v1']);
    }
    calls = harness.window(from, to);
    assert.deepEqual(calls.filter((c) => !c.ok).slice(0, 5), [], 'no call failed while v4 was tried and rolled back');
    const lowest = harness.lowestPassing(from, to);
    for (const s of SERVICES) assert.ok(lowest[s] >= 4, `${s}: lowest ${lowest[s]}`);
  });
});
