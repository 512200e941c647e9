import assert from 'node:assert/strict';
import { ServiceWindow } from '@shoal/coordinator/internal';
import { hello, report } from './support/agent-client.js';

describe('ServiceWindow', () => {
  const make = (maxInstances = 10) =>
    new ServiceWindow('orders', { reportIntervalMs: 1000, windowMs: 5000, maxSamples: 10, maxInstances });

  it('averages the reports of the last window and derives rps, latency and custom metrics', () => {
    const w = make();
    w.hello(hello('orders', 'a'), 0);
    w.connected('a', 1);
    w.report('a', report({ eventLoopUtilization: 0.2, requests: 100, intervalMs: 1000, custom: { queue: 4 } }), 1000);
    w.report('a', report({ eventLoopUtilization: 0.4, requests: 300, intervalMs: 1000, custom: { queue: 6 } }), 2000);
    const o = w.observe(2500, 1);
    assert.equal(o.currentReplicas, 1);
    const m = o.instances[0]!.metrics;
    assert.ok(Math.abs(m.eventLoopUtilization! - 0.3) < 1e-9);
    assert.equal(m.rps, 200);
    assert.equal(m.queue, 5);
    assert.equal(o.instances[0]!.ready, true);
    assert.equal(o.instances[0]!.sampledAt, 2000);
  });

  it('drops samples older than the window', () => {
    const w = make();
    w.hello(hello('orders', 'a'), 0);
    w.connected('a', 1);
    w.report('a', report({ eventLoopUtilization: 0.9 }), 1000);
    w.report('a', report({ eventLoopUtilization: 0.1 }), 7000);
    assert.equal(w.observe(7500, 1).instances[0]!.metrics.eventLoopUtilization, 0.1);
  });

  it('counts an instance silent for 3 intervals as missing (no metrics, not ready) while it stays connected', () => {
    const w = make();
    w.hello(hello('orders', 'a'), 0);
    w.connected('a', 1);
    w.report('a', report(), 1000);
    assert.ok(Object.keys(w.observe(3900, 1).instances[0]!.metrics).length > 0);
    const late = w.observe(4100, 1).instances[0]!;
    assert.deepEqual(late.metrics, {});
    assert.equal(late.ready, false);
    assert.equal(w.views(4100)[0]!.missing, true);
  });

  it('lists a disconnected silent instance as missing until it is forgotten', () => {
    const w = make();
    w.hello(hello('orders', 'a'), 0);
    w.hello(hello('orders', 'b'), 0);
    w.connected('b', 1);
    w.report('a', report(), 1000);
    w.report('b', report(), 1000);
    w.connected('b', -1);
    w.report('a', report(), 9000);
    const b = w.observe(9500, 2).instances.find((i) => i.id === 'b');
    assert.ok(b, 'the silent instance is still observed');
    assert.deepEqual(b.metrics, {});
    assert.equal(b.ready, false);
    // While the actuator still runs two replicas, both stay; with one, the longest silent goes first.
    assert.deepEqual(w.prune(100_000, 2), []);
    assert.deepEqual(w.prune(100_000, 1), ['b']);
    assert.deepEqual(w.prune(100_000), ['a']);
    assert.equal(w.observe(100_000, 2).instances.length, 0);
  });

  it('marks draining instances as deleting and forgets disconnected silent ones', () => {
    const w = make();
    w.hello(hello('orders', 'a'), 0);
    w.hello(hello('orders', 'b'), 0);
    w.report('a', report(), 100);
    w.report('b', report(), 100);
    w.markDraining('a');
    assert.equal(w.observe(200, 2).instances.find((i) => i.id === 'a')!.deleting, true);
    assert.deepEqual(w.prune(100_000), ['a', 'b']);
    assert.equal(w.size, 0);
  });

  it('refuses more instances than maxInstances', () => {
    const w = make(2);
    w.hello(hello('orders', 'a'), 0);
    w.hello(hello('orders', 'b'), 0);
    w.connected('a', 1);
    w.connected('b', 1);
    assert.throws(() => w.hello(hello('orders', 'c'), 1), /already has 2 instances/);
    w.hello(hello('orders', 'a', { port: 5000 }), 2); // a known instance may say hello again
    assert.equal(w.views(2).find((v) => v.id === 'a')!.port, 5000);
  });

  it('keeps at most maxSamples per instance', () => {
    const w = make();
    w.hello(hello('orders', 'a'), 0);
    for (let i = 0; i < 100; i++) w.report('a', report({ eventLoopUtilization: i / 100 }), i * 10);
    // The window (5 s) covers all 100 reports, but only the last 10 are kept.
    const elu = w.observe(1000, 1).instances[0]!.metrics.eventLoopUtilization!;
    assert.ok(Math.abs(elu - 0.945) < 1e-9, String(elu));
  });
});
