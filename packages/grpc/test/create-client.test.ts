import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createClient } from '@shoal/grpc';
import { EchoClient, echo, startEchoServer } from './support/echo.js';
import type { EchoClientInstance, EchoServer } from './support/echo.js';

describe('createClient', () => {
  let server: EchoServer | undefined;
  let client: EchoClientInstance | undefined;

  afterEach(async () => {
    client?.close();
    client = undefined;
    await server?.close();
    server = undefined;
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
