import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { MIN_GRPC_JS_VERSION, POLICY_NAMES, isRegistered, register } from '@shoal/grpc';
import { grpcJsVersion } from '@shoal/grpc/internal';

describe('register()', () => {
  it("registers the consul: resolver and every policy into the application's grpc-js, idempotently", () => {
    register();
    register();
    assert.equal(isRegistered(), true);
    for (const name of POLICY_NAMES) assert.ok(grpc.experimental.isLoadBalancerNameRegistered(name), name);
    // A consul: target now parses (the channel would fail at construction if the scheme were unknown).
    const Generic = grpc.makeGenericClientConstructor({}, 'x');
    const client = new Generic('consul:///orders', grpc.credentials.createInsecure());
    assert.equal(client.getChannel().getTarget(), 'consul:///orders');
    client.close();
  });

  it('rejects a malformed consul: target when the channel is created', () => {
    register();
    const Generic = grpc.makeGenericClientConstructor({}, 'x');
    assert.throws(
      () => new Generic('consul:///orders?colour=red', grpc.credentials.createInsecure()),
      /unknown parameter "colour"/,
    );
  });

  it('validates its options, naming the option', () => {
    assert.throws(() => register({ consul: { url: 'ftp://x' } }), /consul\.url/);
    assert.throws(() => register({ watcher: {} as never }), /watcher must be a ServiceWatcher/);
    assert.throws(() => register({ nope: 1 } as never), /unknown option "nope"/);
    register();
  });

  it('runs on the installed grpc-js', () => {
    const [major, minor] = grpcJsVersion().split('.').map(Number);
    const [, minMinor] = MIN_GRPC_JS_VERSION.split('.').map(Number);
    assert.equal(major, 1);
    assert.ok(minor! >= minMinor!);
  });
});
