import assert from 'node:assert/strict';
import { silentLogger, type Logger } from '@shoal/core';
import { LIMITS } from '@shoal/protocol';
import { AppMetrics } from '../src/app-metrics.js';

describe('AppMetrics', () => {
  it('reports gauges as read and counters as their increase per interval', () => {
    const app = new AppMetrics(silentLogger);
    let depth = 3;
    app.gauge('queue_depth', () => depth);
    const orders = app.counter('orders_total');
    orders.inc();
    orders.inc(4);
    assert.deepEqual(app.takeCustom(), { queue_depth: 3, orders_total: 5 });
    depth = 1;
    orders.inc(2);
    assert.deepEqual(app.takeCustom(), { queue_depth: 1, orders_total: 2 });
    assert.deepEqual(app.takeCustom(), { queue_depth: 1, orders_total: 0 });
    assert.equal(orders.value(), 7);
  });

  it('reports service-wide gauges apart from the instance metrics', () => {
    const app = new AppMetrics(silentLogger);
    app.gauge('backlog', () => 30, { scope: 'service' });
    app.gauge('sessions', () => 2, { scope: 'instance' });
    app.counter('orders_total').inc(3);
    assert.deepEqual(app.takeReportMetrics(), {
      custom: { sessions: 2, orders_total: 3 },
      serviceMetrics: { backlog: 30 },
    });
    assert.deepEqual(app.takeCustom(), { sessions: 2, orders_total: 0 });
    assert.throws(
      () => app.gauge('x', () => 1, { scope: 'global' as never }),
      /gauge x: options.scope must be 'instance' or 'service', got "global"/,
    );
    assert.throws(() => app.gauge('y', () => 1, 5 as never), /gauge y: options must be an object, got 5/);
  });

  it('leaves out a gauge that throws or returns a bad value, logging it', () => {
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: ((_o: unknown, m?: string) => {
        warnings.push(String(m));
      }) as Logger['warn'],
      child: () => logger,
    };
    const app = new AppMetrics(logger);
    app.gauge('broken', () => {
      throw new Error('x');
    });
    app.gauge('nan', () => Number.NaN);
    app.gauge('ok', () => 2);
    assert.deepEqual(app.takeCustom(), { ok: 2 });
    assert.equal(warnings.length, 2);
  });

  it('validates names, duplicates, the metric limit and increments', () => {
    const app = new AppMetrics(silentLogger);
    assert.throws(() => app.gauge('bad-name', () => 1), /gauge name must match .*, got "bad-name"/);
    app.gauge('a', () => 1);
    assert.throws(() => app.counter('a'), /counter name "a" is already defined/);
    assert.throws(() => app.gauge('b', 5 as never), /gauge b: fn must be a function, got 5/);
    assert.throws(() => app.counter('c').inc(-1), /counter c: inc\(n\) needs a finite number >= 0, got -1/);
    for (let i = app.takeCustom() ? 2 : 0; i < LIMITS.maxCustomMetrics; i++) app.counter(`m${i}`);
    assert.throws(() => app.counter('one_more'), /would exceed the limit of 32 custom metrics/);
  });
});
