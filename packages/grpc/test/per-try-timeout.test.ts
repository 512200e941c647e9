import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createClient } from '@shoal/grpc';
import { EchoClient, echo, startEchoServer } from './support/echo.js';
import type { EchoClientInstance, EchoServer } from './support/echo.js';
import { waitFor } from '../../../test/kit/index.js';

const ECHO = [{ service: 'shoal.test.Echo' }];

describe('createClient perTryTimeout (real gRPC servers, one of which never answers)', () => {
  let client: EchoClientInstance | undefined;
  const servers: EchoServer[] = [];

  const start = async (name: string, hung: boolean) => {
    const s = await startEchoServer(name);
    if (hung) s.delay = 3_600_000; // accepts the call, never answers
    servers.push(s);
    return s;
  };
  const target = () => `ipv4:///${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`;

  afterEach(() => {
    client?.close();
    client = undefined;
    for (const s of servers.splice(0)) s.kill();
  });

  it('sends a call whose attempt hangs to another replica before the call deadline', async () => {
    const hung = await start('hung', true);
    await start('good', false);
    client = createClient(EchoClient, target(), {
      // peak_ewma's in-flight count keeps the next attempt off the endpoint that holds the unanswered ones (round
      // robin under concurrent calls may send it back there).
      policy: 'shoal_peak_ewma',
      policyConfig: { slowStart: false, outlierDetection: false },
      // Generous for a loaded 2-core machine: an answer from the good server never takes this long.
      perTryTimeout: { methods: ECHO, timeoutMs: 500, maxAttempts: 4 },
    });
    await new Promise<void>((resolve, reject) =>
      client!.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())),
    );
    // Some first attempts go to the hung server; no call may fail (the deadline is 10 s).
    const replies = await Promise.all(Array.from({ length: 6 }, () => echo(client!, 'x', { deadlineMs: 10_000 })));
    assert.deepEqual(
      replies.map((r) => r.server),
      Array(6).fill('good'),
    );
    assert.ok(hung.calls >= 1, 'some attempts went to the hung server');
  });

  it('works under a call-level interceptor too (grpc-js lets those replace the client interceptors)', async () => {
    const hung = await start('hung', true);
    await start('good', false);
    client = createClient(EchoClient, target(), {
      policy: 'shoal_peak_ewma',
      policyConfig: { slowStart: false, outlierDetection: false },
      perTryTimeout: { methods: ECHO, timeoutMs: 500, maxAttempts: 4 },
    });
    let seen = 0;
    const counting: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          seen++;
          next(metadata, listener);
        },
      });
    const call = () =>
      new Promise<string>((resolve, reject) =>
        (client as unknown as Record<string, (...a: unknown[]) => void>).echo!(
          { msg: 'x' },
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000, interceptors: [counting] },
          (err: grpc.ServiceError | null, res: { server: string }) => (err ? reject(err) : resolve(res.server)),
        ),
      );
    const replies = await Promise.all(Array.from({ length: 4 }, call));
    assert.deepEqual(replies, Array(4).fill('good'));
    assert.equal(seen, 4, 'the outer interceptor sees one call per call, not one per attempt');
    assert.ok(hung.calls >= 1);
  });

  it('makes at most maxAttempts attempts, then fails with DEADLINE_EXCEEDED at the call deadline', async () => {
    const hung = await start('hung', true);
    client = createClient(EchoClient, target(), {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart: false, outlierDetection: false },
      perTryTimeout: { methods: ECHO, timeoutMs: 100, maxAttempts: 3 },
    });
    const error = await echo(client, 'x', { deadlineMs: 1500 }).then(
      () => assert.fail('a hung server cannot answer'),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(hung.calls, 3, 'three attempts at the server, all within the call deadline');
  });

  it('keeps the attempt that timed out: its late answer wins when it comes first', async () => {
    // One server, slower than the per-try timeout: every attempt goes to it, and the first one answers first.
    const slow = await start('slow', false);
    slow.delay = 300;
    client = createClient(EchoClient, target(), {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart: false, outlierDetection: false },
      perTryTimeout: { methods: ECHO, timeoutMs: 100, maxAttempts: 2 },
    });
    const reply = await echo(client, 'x', { deadlineMs: 10_000 });
    assert.equal(reply.server, 'slow');
    await waitFor(() => slow.calls === 2, { what: 'the second attempt at the server', timeoutMs: 5000 });
  });

  it('reads an answer that arrived while the caller stalled before it sends another attempt', async () => {
    const server = await start('only', false);
    server.delay = 50;
    client = createClient(EchoClient, target(), {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart: false, outlierDetection: false },
      perTryTimeout: { methods: ECHO, timeoutMs: 200, maxAttempts: 3 },
    });
    await echo(client, 'warm-up', { deadlineMs: 10_000 });
    server.calls = 0;
    const reply = echo(client, 'x', { deadlineMs: 10_000 });
    // The server answers after 50 ms; the caller's loop is blocked until well past the 200 ms per-try timeout.
    await waitFor(() => server.calls === 1, { what: 'the attempt at the server', timeoutMs: 5000, intervalMs: 1 });
    const until = Date.now() + 600;
    while (Date.now() < until) {
      // a stalled caller (a long synchronous task)
    }
    assert.equal((await reply).server, 'only');
    assert.equal(server.calls, 1, 'no second attempt for an answer that was already there');
  });

  it('leaves methods that are not listed alone: one attempt until the call deadline', async () => {
    const hung = await start('hung', true);
    client = createClient(EchoClient, target(), {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart: false, outlierDetection: false },
      perTryTimeout: { methods: [{ service: 'shoal.test.Other' }], timeoutMs: 50 },
    });
    const error = await echo(client, 'x', { deadlineMs: 600 }).then(
      () => assert.fail('a hung server cannot answer'),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(hung.calls, 1);
  });

  it('takes each extra attempt from the retry budget; past it the call waits for the attempts running', async () => {
    const hung = await start('hung', true);
    client = createClient(EchoClient, target(), {
      policy: 'shoal_round_robin',
      policyConfig: {
        slowStart: false,
        outlierDetection: false,
        // 1 retry in the window (0.1/s over 10 s).
        retryBudget: { ratio: 0, minRetriesPerSecond: 0.1 },
      },
      perTryTimeout: { methods: ECHO, timeoutMs: 50, maxAttempts: 5 },
    });
    const error = await echo(client, 'x', { deadlineMs: 1000 }).then(
      () => assert.fail('a hung server cannot answer'),
      (e: grpc.ServiceError) => e,
    );
    // The refused attempts failed at the pick; the call failed only at its deadline, not with the budget's refusal.
    assert.equal(error.code, grpc.status.DEADLINE_EXCEEDED, `${grpc.status[error.code]}: ${error.details}`);
    assert.equal(hung.calls, 2, 'the first attempt and the one retry the budget allowed');
  });

  it('stops at a cancel: the caller gets CANCELLED and no attempt follows', async () => {
    const hung = await start('hung', true);
    client = createClient(EchoClient, target(), {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart: false, outlierDetection: false },
      perTryTimeout: { methods: ECHO, timeoutMs: 100 },
    });
    const outcome = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>).echo!(
        { msg: 'x' },
        new grpc.Metadata(),
        { deadline: Date.now() + 20_000 },
        (err: grpc.ServiceError | null) => resolve(err),
      );
      void waitFor(() => hung.calls === 1, { what: 'the first attempt at the server' }).then(() => call.cancel());
    });
    const error = await outcome;
    assert.equal(error?.code, grpc.status.CANCELLED);
    // Past two more per-try timeouts nothing else reached the server.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(hung.calls, 1);
  });

  it('validates perTryTimeout, naming the field and the value', () => {
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { perTryTimeout: { methods: [] } }),
      /perTryTimeout.methods must be a non-empty array/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { perTryTimeout: { methods: ECHO, timeoutMs: 0 } }),
      /perTryTimeout.timeoutMs must be an integer between 1 and 3600000, got 0/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { perTryTimeout: { methods: ECHO, maxAttempts: 1 } }),
      /perTryTimeout.maxAttempts must be an integer between 2 and 5, got 1/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { perTryTimeout: { methods: [{ method: 'Get' }] } }),
      /perTryTimeout.methods\[0\].method needs a service/,
    );
    assert.throws(
      () =>
        createClient(EchoClient, 'consul:///x', {
          perTryTimeout: { methods: ECHO },
          channelOptions: { interceptor_providers: [] } as grpc.ChannelOptions,
        }),
      /channelOptions.interceptor_providers cannot be combined with perTryTimeout/,
    );
  });
});
