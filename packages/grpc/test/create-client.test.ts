import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createClient } from '@shoal/grpc';
import { EchoClient, echo, startEchoServer } from './support/echo.js';
import type { EchoClientInstance, EchoServer } from './support/echo.js';

describe('createClient', () => {
  let server: EchoServer | undefined;
  let client: EchoClientInstance | undefined;
  let others: EchoServer[] = [];

  afterEach(async () => {
    client?.close();
    client = undefined;
    await server?.close();
    server = undefined;
    for (const s of others.splice(0)) s.kill();
  });

  it('hedges a listed method away from a server that never answers, within the retry budget', async () => {
    const hung = await startEchoServer('hung');
    hung.delay = 3_600_000; // never answers within the test
    const good = await startEchoServer('good');
    others = [hung, good];
    client = createClient(EchoClient, `ipv4:///127.0.0.1:${hung.port},127.0.0.1:${good.port}`, {
      // grpc-js does not tell the policy which endpoint an earlier attempt used; peak_ewma's in-flight count keeps
      // hedges off the endpoint that holds the unanswered attempts.
      policy: 'shoal_peak_ewma',
      policyConfig: { slowStart: false, outlierDetection: false },
      hedging: { methods: [{ service: 'shoal.test.Echo' }], delayMs: 50, maxAttempts: 3 },
    });
    const replies = await Promise.all(Array.from({ length: 8 }, () => echo(client!, 'x', { deadlineMs: 10_000 })));
    assert.deepEqual(
      replies.map((r) => r.server),
      Array(8).fill('good'),
    );
    assert.ok(hung.calls >= 1, 'some first attempts went to the hung server');
  });

  it('fails a retry attempt past the retry budget without sending it', async () => {
    server = await startEchoServer('sick');
    server.failWith = grpc.status.UNAVAILABLE;
    client = createClient(EchoClient, `ipv4:///127.0.0.1:${server.port}`, {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart: false, outlierDetection: false, retryBudget: { ratio: 0, minRetriesPerSecond: 0.1 } },
      retry: { maxAttempts: 5, initialBackoffMs: 1 },
    });
    const errors: string[] = [];
    for (let i = 0; i < 5; i++)
      errors.push(
        await echo(client).then(
          () => 'ok',
          (e: grpc.ServiceError) => e.details,
        ),
      );
    // 0.1 retries/s over 10 s: one retry in all; every other retry is refused before it reaches the server.
    assert.ok(server.calls <= 5 + 1, `${server.calls} calls reached the server for 5 calls`);
    assert.ok(
      errors.some((d) => /retry budget spent/.test(d)),
      errors.join('; '),
    );
  });

  it('sets keepalive by default and validates hedging and keepalive, naming the field', () => {
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { hedging: { methods: [] } }),
      /hedging.methods must be a non-empty array/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { hedging: { methods: [{}], maxAttempts: 9 } }),
      /hedging.maxAttempts must be an integer between 2 and 5, got 9/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { keepalive: { timeMs: 5 } }),
      /keepalive.timeMs must be an integer between 1000 and 86400000, got 5/,
    );
  });

  it("builds a working client with the policy in grpc.service_config and the caller's channel options", async () => {
    server = await startEchoServer('a');
    client = createClient(EchoClient, `ipv4:///127.0.0.1:${server.port}`, {
      policy: 'shoal_least_request',
      policyConfig: { slowStart: false },
      retry: { maxAttempts: 2 },
      channelOptions: { 'grpc.primary_user_agent': 'shoal-test' },
    });
    assert.equal((await echo(client)).server, 'a');
  });

  it('defaults to shoal_peak_ewma and insecure credentials', async () => {
    server = await startEchoServer('b');
    client = createClient(EchoClient, `ipv4:///127.0.0.1:${server.port}`);
    assert.equal((await echo(client)).server, 'b');
  });

  it('validates its arguments, naming them', () => {
    assert.throws(() => createClient(EchoClient, ''), /target must be a non-empty string/);
    assert.throws(() => createClient(undefined as never, 'consul:///x'), /ctor must be a client constructor/);
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { channelOptions: { 'grpc.service_config': '{}' } }),
      /must not be set: createClient builds it/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { retry: { maxAttempts: 1 } }),
      /retry.maxAttempts must be an integer between 2 and 5, got 1/,
    );
    assert.throws(
      () => createClient(EchoClient, 'consul:///x', { retry: { retryableStatusCodes: ['NOPE'] } }),
      /retry.retryableStatusCodes\[0\] must be one of/,
    );
    assert.throws(() => createClient(EchoClient, 'consul:///x', { polcy: 'x' } as never), /unknown option "polcy"/);
    assert.throws(
      () =>
        createClient(EchoClient, 'consul:///x', {
          credentials: grpc.credentials.createInsecure(),
          policy: 'rr' as never,
        }),
      /policy must be one of/,
    );
  });
});
