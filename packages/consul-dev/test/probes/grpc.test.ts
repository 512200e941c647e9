import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { harness, waitForCheck } from '../helpers.js';
import type { Harness } from '../helpers.js';

/** A real grpc.health.v1.Health server, (de)serialising the two tiny messages by hand. */
function healthServer(statusFor: (service: string) => number) {
  const server = new grpc.Server();
  const seen: string[] = [];
  server.addService(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: string) => Buffer.from(v),
        requestDeserialize: (b: Buffer) => (b.length > 2 ? b.subarray(2).toString('utf8') : ''),
        responseSerialize: (status: number) => Buffer.from([0x08, status]),
        responseDeserialize: (b: Buffer) => b[1] ?? 0,
      },
    },
    {
      Check: (call: grpc.ServerUnaryCall<string, number>, cb: grpc.sendUnaryData<number>) => {
        seen.push(call.request);
        cb(null, statusFor(call.request));
      },
    },
  );
  return { server, seen };
}

describe('gRPC checks', () => {
  let h: Harness;
  let status = 1;
  let target: ReturnType<typeof healthServer>;
  let port: number;
  beforeEach(async () => {
    h = await harness();
    status = 1;
    target = healthServer(() => status);
    port = await new Promise<number>((resolve, reject) =>
      target.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
  });
  afterEach(async () => {
    await h.close();
    target.server.forceShutdown();
  });

  it('calls grpc.health.v1.Health/Check for the named service: SERVING passes, NOT_SERVING fails', async () => {
    await h.call('PUT', '/v1/agent/service/register', {
      Name: 'orders',
      Check: { GRPC: `127.0.0.1:${port}/orders.v1.Orders`, Interval: '5s' },
    });
    h.clock.advance(0);
    const ok = await waitForCheck(h, 'service:orders', (c) => c.Status === 'passing');
    assert.equal(ok.Output, `gRPC check 127.0.0.1:${port}/orders.v1.Orders: success`);
    assert.equal(target.seen[0], 'orders.v1.Orders');
    status = 2;
    h.clock.advance(5_000);
    const bad = await waitForCheck(h, 'service:orders', (c) => c.Status === 'critical');
    assert.match(bad.Output, /NOT_SERVING/);
  });

  it('fails when nothing serves gRPC at the address', async () => {
    await h.call('PUT', '/v1/agent/service/register', {
      Name: 'orders',
      Check: { GRPC: '127.0.0.1:1', Interval: '5s', Timeout: '1s', Status: 'passing' },
    });
    h.clock.advance(0);
    const bad = await waitForCheck(h, 'service:orders', (c) => c.Status === 'critical');
    assert.match(bad.Output, /gRPC check 127\.0\.0\.1:1: failed/);
  });
});
