import assert from 'node:assert/strict';
import { ConsulKv } from '@shoal/consul';
import { LeaderElection, type LeadershipChange } from '@shoal/coordinator';
import { startTestConsul, type TestConsul } from '../../../test/support/consul.js';
import { waitFor } from './support/recording-logger.js';

describe('LeaderElection (consul-dev)', () => {
  let consul: TestConsul;
  const elections: LeaderElection[] = [];
  const kvs: ConsulKv[] = [];
  const newKv = (url: string, requestTimeoutMs: number) => {
    const kv = new ConsulKv({ consul: { url, requestTimeoutMs } });
    kvs.push(kv);
    return kv;
  };

  beforeEach(async () => {
    consul = await startTestConsul();
  });
  afterEach(async () => {
    await Promise.all(elections.splice(0).map((e) => e.close()));
    await Promise.all(kvs.splice(0).map((k) => k.close()));
    await consul.close();
  });

  const elect = (id: string, kv = newKv(consul.url, 2000)) => {
    const e = new LeaderElection({
      kv,
      key: 'test/leader',
      self: { id, grpcUrl: `grpc://127.0.0.1:1${id.length}` },
      sessionTtlMs: 10_000,
      lockDelayMs: 100,
      pollIntervalMs: 50,
    });
    elections.push(e);
    return e;
  };

  it('elects exactly one leader; the follower learns who it is; a graceful close hands over within lock-delay', async () => {
    const a = elect('a');
    const changes: LeadershipChange[] = [];
    a.onChange((c) => changes.push(c));
    a.start();
    await waitFor(() => a.isLeader, 5000, 'a to lead');
    const b = elect('b');
    b.start();
    await waitFor(() => b.leader?.id === 'a', 5000, 'b to follow a');
    assert.equal(b.isLeader, false);
    assert.equal(b.leader?.grpcUrl, 'grpc://127.0.0.1:11');
    const started = Date.now();
    await a.close();
    await waitFor(() => b.isLeader, 5000, 'b to take over');
    assert.ok(Date.now() - started < 3000, `handover took ${Date.now() - started} ms`);
    assert.deepEqual(
      changes.map((c) => c.isLeader),
      [true, false],
      'led, then stepped down on close',
    );
  });

  it('validates its options', () => {
    const kv = newKv(consul.url, 1000);
    assert.throws(() => new LeaderElection({ kv, key: 'k', self: { id: 'a' }, sessionTtlMs: 5000 }), /sessionTtlMs/);
    assert.throws(() => new LeaderElection({ kv, key: '', self: { id: 'a' } }), /key/);
    assert.throws(
      () => new ConsulKv({ consul: { url: 'not a url', requestTimeoutMs: 1000 } }),
      /consul\.url must be an http\(s\) URL such as http:\/\/127\.0\.0\.1:8500, got "not a url"/,
    );
  });

  it('steps down when Consul loses its session, and keeps trying while Consul is unreachable', async () => {
    const a = elect('a');
    const changes: boolean[] = [];
    a.onChange((c) => changes.push(c.isLeader));
    a.start();
    await waitFor(() => a.isLeader, 5000, 'a to lead');
    const port = consul.port;
    await consul.close();
    // Consul restarted empty: the session is gone, so the lock is free again; a re-creates a session and re-acquires.
    const { startConsulDev } = await import('@shoal/consul-dev');
    const again = await startConsulDev({ port });
    consul = { ...consul, close: () => again.close() };
    await waitFor(
      async () => {
        const kv = newKv(again.url, 1000);
        const item = await kv.get('test/leader').catch(() => undefined);
        return item?.Session !== undefined && a.isLeader;
      },
      15_000,
      'a to lead again on the restarted Consul',
    );
    assert.deepEqual(changes, [true, false, true]);
  });
});
