/**
 * Issue #20, the failure paths of a wake from zero: what a waiting call does when the coordinator refuses or cannot
 * be reached, when the caller gives up, and when the call's own deadline comes first. A real in-process coordinator
 * (its wake endpoint and token check), real consul-dev, the real @shoal/http dispatcher and grpc-js client; the
 * activator's wait runs on a ManualClock, so a call ends only when the test advances it (or the caller cancels).
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ManualClock, type TimerHandle } from '@shoal/core';
import { Activator } from '@shoal/consul';
import { createCoordinator, type Coordinator } from '@shoal/coordinator';
import { createClient } from '@shoal/grpc';
import { createDispatcher, type ShoalDispatcher } from '@shoal/http';
import { Registry } from 'prom-client';
import sinon from 'sinon';
import { request } from 'undici';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { freePort, waitFor } from '../kit/index.js';
import { TypedEchoClient, type EchoCaller } from '../../packages/grpc/test/support/echo.js';

const WAKE_TOKEN = 'activator-wake-token-0123456789';
const WRONG_TOKEN = 'activator-not-the-token-98765';
const MAX_WAIT_MS = 5000;

describe('wake from zero: what a waiting call does when things go wrong (ManualClock for the wait)', function () {
  this.timeout(30_000);
  let consul: TestConsul;
  let coordinator: Coordinator;
  let clock: ManualClock;
  let registry: Registry;
  const closers: Array<() => unknown> = [];

  before(async () => {
    consul = await startTestConsul();
    coordinator = createCoordinator(
      {
        listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
        services: [
          {
            name: 'sleepy',
            token: 'activator-agent-token-0123456789',
            minReplicas: 0,
            maxReplicas: 3,
            wake: { token: WAKE_TOKEN },
            policy: { targets: [{ metric: 'inFlight', value: 10 }] },
            // Never started here: no report the coordinator accepts wakes it.
            actuator: { type: 'local', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] },
          },
        ],
      },
      { env: {} },
    );
    await coordinator.start();
  });
  after(async () => {
    await coordinator.close();
    await consul.close();
  });
  beforeEach(() => {
    clock = new ManualClock(Date.now());
    registry = new Registry();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  function activator(options: { coordinator?: string; token?: string } = {}): Activator {
    const a = new Activator({
      coordinator: options.coordinator ?? coordinator.urls().http,
      token: options.token ?? WAKE_TOKEN,
      maxWaitMs: MAX_WAIT_MS,
      requestTimeoutMs: 1000,
      clock,
      registry,
    });
    closers.push(() => a.close());
    return a;
  }
  function dispatcher(a: Activator): ShoalDispatcher {
    const d = createDispatcher({ consul: { url: consul.url }, activator: a, retry: false, registry });
    closers.push(() => d.close());
    return d;
  }
  function client(a: Activator): EchoCaller {
    const c = createClient(TypedEchoClient, `consul://${new URL(consul.url).host}/sleepy`, { activator: a });
    closers.push(() => c.close());
    return c;
  }
  const metric = async (outcome: string, name = 'shoal_activator_reports_total') => {
    const m = (await registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels.outcome === outcome);
    return m?.value ?? 0;
  };

  it('a refused report (wrong token): the call times out with SHOAL_ERR_COLD_START_TIMEOUT naming the 401, never a token', async () => {
    const a = activator({ token: WRONG_TOKEN });
    const pending = request('http://sleepy.service.consul/', { dispatcher: dispatcher(a) }).then(
      () => assert.fail('a call to a service nobody wakes cannot succeed'),
      (error: unknown) => error as Error & { code?: string },
    );
    await waitFor(async () => (await metric('refused')) >= 1, { what: 'the refused report' });
    assert.equal(a.waiting('sleepy'), 1);
    clock.advance(MAX_WAIT_MS);
    const error = await pending;
    assert.equal(error.code, 'SHOAL_ERR_COLD_START_TIMEOUT', String(error));
    assert.match(error.message, /could not be told: the coordinator answered 401/);
    assert.doesNotMatch(error.message, new RegExp(`${WAKE_TOKEN}|${WRONG_TOKEN}`));
    assert.equal(a.waiting('sleepy'), 0);
    assert.equal(await metric('timed_out', 'shoal_activator_calls_total'), 1);
    assert.equal(await coordinator.actuator('sleepy')!.getReplicas(), 0, 'a refused report wakes nothing');
  });

  it('an unreachable coordinator: a gRPC call fails UNAVAILABLE with the code in its details once maxWaitMs runs out', async () => {
    const a = activator({ coordinator: `http://127.0.0.1:${await freePort()}` });
    const c = client(a);
    const pending = new Promise<grpc.ServiceError | null>((resolve) =>
      c.echo({}, { deadline: Date.now() + 60_000 }, (e) => resolve(e)),
    );
    await waitFor(async () => (await metric('failed')) >= 1, { what: 'a failed report' });
    assert.equal(a.waiting('sleepy'), 1);
    clock.advance(MAX_WAIT_MS);
    const error = await pending;
    assert.equal(error?.code, grpc.status.UNAVAILABLE, String(error));
    assert.match(error.details, /SHOAL_ERR_COLD_START_TIMEOUT/);
    assert.match(error.details, /could not be told/);
  });

  it("retries a failed report with core's backoff and equal jitter, not once per new call (ManualClock, fixed random)", async () => {
    // The draws alternate low and high: each wait must be its ceiling's lower bound or just under the ceiling.
    const draws = [0, 0.999];
    let n = 0;
    const random = sinon.stub(Math, 'random').callsFake(() => draws[n++ % 2]!);
    closers.push(() => random.restore());
    const delays: number[] = [];
    const recording = new (class extends ManualClock {
      override setTimeout(fn: () => void, ms: number): TimerHandle {
        if (ms !== 60_000) delays.push(ms); // every timer but the call's own wait is a report retry
        return super.setTimeout(fn, ms);
      }
    })(Date.now());
    const a = new Activator({
      coordinator: `http://127.0.0.1:${await freePort()}`,
      token: WAKE_TOKEN,
      maxWaitMs: 60_000,
      clock: recording,
      registry,
    });
    closers.push(() => a.close());
    const d = dispatcher(a);
    const calls = [request('http://sleepy.service.consul/', { dispatcher: d }).catch((e: Error) => e)];
    for (let i = 0; i < 7; i++) {
      await waitFor(() => delays.length > i, { what: `retry ${i + 1} to be scheduled` });
      // A new call while the retry is pending adds to the count the retry sends; it sends nothing itself.
      if (i === 2) {
        calls.push(request('http://sleepy.service.consul/', { dispatcher: d }).catch((e: Error) => e));
        await waitFor(() => a.waiting('sleepy') === 2, { what: 'the second call waiting' });
        assert.equal(await metric('failed'), 3, 'a new call reported at once despite the backoff');
      }
      recording.advance(delays[i]!);
    }
    await waitFor(async () => (await metric('failed')) >= 8, { what: 'the eighth failed report' });
    // 100 ms doubling up to 4 × reportIntervalMs (4 s), each wait in the upper half of its ceiling.
    const expected = [100, 200, 400, 800, 1600, 3200, 4000, 4000].map((c, i) =>
      Math.floor(c / 2 + draws[i % 2]! * (c / 2)),
    );
    assert.deepEqual(delays.slice(0, 8), expected);
    assert.equal(await metric('failed'), 8);
    await a.close();
    for (const e of await Promise.all(calls))
      assert.equal((e as { code?: string }).code, 'SHOAL_ERR_CLOSED', String(e));
  });

  it('a gRPC call whose deadline comes before maxWaitMs ends DEADLINE_EXCEEDED at its deadline', async () => {
    const a = activator();
    const c = client(a);
    const pending = new Promise<grpc.ServiceError | null>((resolve) =>
      c.echo({}, { deadline: Date.now() + 2000 }, (e) => resolve(e)),
    );
    await waitFor(() => a.waiting('sleepy') === 1, { what: 'the call waiting' });
    clock.advance(2000);
    const error = await pending;
    assert.equal(error?.code, grpc.status.DEADLINE_EXCEEDED, String(error));
  });

  it('a caller that gives up ends its wait at once: an aborted HTTP request and a cancelled gRPC call', async () => {
    const a = activator({ token: WRONG_TOKEN });
    const abort = new AbortController();
    const httpCall = request('http://sleepy.service.consul/', { dispatcher: dispatcher(a), signal: abort.signal }).then(
      () => assert.fail('an aborted request cannot succeed'),
      (error: unknown) => error as Error,
    );
    const c = client(a);
    let grpcCall: grpc.ClientUnaryCall | undefined;
    const grpcResult = new Promise<grpc.ServiceError | null>((resolve) => {
      grpcCall = c.echo({}, { deadline: Date.now() + 60_000 }, (e) => resolve(e));
    });
    await waitFor(() => a.waiting('sleepy') === 2, { what: 'both calls waiting' });
    // The ManualClock is never advanced: only the caller's abort can end these calls.
    abort.abort(new Error('the caller gave up'));
    grpcCall!.cancel();
    const [httpError, grpcError] = await Promise.all([httpCall, grpcResult]);
    assert.match(String(httpError), /the caller gave up|abort/i);
    assert.equal(grpcError?.code, grpc.status.CANCELLED, String(grpcError));
    assert.equal(a.waiting('sleepy'), 0);
    assert.equal(await metric('aborted', 'shoal_activator_calls_total'), 2);
  });
});
