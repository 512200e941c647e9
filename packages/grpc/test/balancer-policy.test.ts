import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { createClient, register } from '@shoal/grpc';
import type { ShoalPolicyName } from '@shoal/grpc';
import { EchoClient, distribution, echo, startEchoServer } from './support/echo.js';
import type { EchoClientInstance, EchoServer } from './support/echo.js';

describe('shoal_* policies over a static ipv4: target', () => {
  let servers: EchoServer[] = [];
  let clients: EchoClientInstance[] = [];

  before(() => register({ registry: new Registry() }));

  beforeEach(async () => {
    servers = await Promise.all(['a', 'b', 'c'].map((n) => startEchoServer(n)));
  });

  afterEach(async () => {
    for (const c of clients) c.close();
    clients = [];
    await Promise.all(servers.map((s) => s.close()));
  });

  function target(): string {
    return `ipv4:///${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`;
  }

  function client(policy: ShoalPolicyName, policyConfig: object = {}): EchoClientInstance {
    const c = createClient(EchoClient, target(), { policy, policyConfig: { slowStart: false, ...policyConfig } });
    clients.push(c);
    return c;
  }

  it('shoal_round_robin spreads calls evenly', async () => {
    const c = client('shoal_round_robin');
    await echo(c, 'warm', { waitForReady: true });
    // Wait until every endpoint is connected, so the rotation covers all three.
    const counts = await distribution(c, 300);
    assert.deepEqual(Object.keys(counts).sort(), ['a', 'b', 'c']);
    for (const n of Object.values(counts)) assert.ok(n >= 90 && n <= 110, JSON.stringify(counts));
  });

  for (const policy of [
    'shoal_random',
    'shoal_weighted_round_robin',
    'shoal_least_request',
    'shoal_peak_ewma',
    'shoal_weighted_least_load',
  ] as const) {
    it(`${policy} sends traffic to every server`, async () => {
      const c = client(policy);
      await echo(c, 'warm', { waitForReady: true });
      const counts = await distribution(c, 300, 8);
      assert.deepEqual(Object.keys(counts).sort(), ['a', 'b', 'c'], JSON.stringify(counts));
      for (const n of Object.values(counts)) assert.ok(n >= 20, `${policy}: ${JSON.stringify(counts)}`);
    });
  }

  it('shoal_ring_hash keeps a key on one server and spreads different keys', async () => {
    const c = client('shoal_ring_hash', { hashHeader: 'x-user' });
    await echo(c, 'warm', { waitForReady: true });
    const md = (key: string) => {
      const m = new grpc.Metadata();
      m.set('x-user', key);
      return m;
    };
    const seen = new Map<string, Set<string>>();
    for (let i = 0; i < 40; i++) {
      const key = `user-${i % 20}`;
      const res = await echo(c, 'x', { metadata: md(key) });
      if (!seen.has(key)) seen.set(key, new Set());
      seen.get(key)!.add(res.server);
    }
    for (const [key, set] of seen) assert.equal(set.size, 1, `${key} went to ${[...set].join(',')}`);
    const used = new Set([...seen.values()].flatMap((s) => [...s]));
    assert.ok(used.size >= 2, `20 keys all hashed to ${[...used].join(',')}`);
  });

  it('shoal_peak_ewma sends less traffic to a slow server', async () => {
    servers[0]!.delay = 40;
    const c = client('shoal_peak_ewma');
    await echo(c, 'warm', { waitForReady: true });
    const counts = await distribution(c, 300, 6);
    const slow = counts.a ?? 0;
    assert.ok(slow < 30, `slow server got ${slow} of 300: ${JSON.stringify(counts)}`);
  });

  it('ejects a failing server (outlier detection) and keeps calls succeeding elsewhere', async () => {
    servers[2]!.failWith = grpc.status.UNAVAILABLE;
    const c = client('shoal_round_robin', {
      outlierDetection: { consecutiveFailures: 3, maxEjectionPercent: 50, baseEjectionMs: 60_000 },
    });
    await echo(c, 'warm', { waitForReady: true }).catch(() => undefined);
    let failures = 0;
    for (let i = 0; i < 60; i++) await echo(c).catch(() => failures++);
    assert.ok(failures <= 4, `${failures} calls failed: the failing server was not ejected`);
  });

  it('fails calls with the reason when the strategy rejects its options', async () => {
    const c = client('shoal_peak_ewma', { strategyOptions: { choiceCount: 99 } });
    await assert.rejects(echo(c, 'x', { deadlineMs: 3000 }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /shoal_peak_ewma: strategyOptions\.choiceCount/);
      return true;
    });
  });

  it('createClient rejects a bad policy config naming the field', () => {
    assert.throws(
      () =>
        createClient(EchoClient, target(), {
          policy: 'shoal_peak_ewma',
          policyConfig: { slowStart: { windowMs: -5 } },
        }),
      /loadBalancingConfig\[0\]\.shoal_peak_ewma\.slowStart\.windowMs must be .*-5/,
    );
    assert.throws(
      () => createClient(EchoClient, target(), { policy: 'shoal_ring_hash' }),
      /shoal_ring_hash\.hashHeader is required/,
    );
    assert.throws(
      () => createClient(EchoClient, target(), { policy: 'shoal_nope' as ShoalPolicyName }),
      /policy must be one of/,
    );
  });
});
