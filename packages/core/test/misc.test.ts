import assert from 'node:assert/strict';
import { Registry, Counter } from 'prom-client';
import {
  EventEmitter,
  ManualClock,
  TimeoutError,
  assertKnownKeys,
  assertOneOf,
  componentLogger,
  errorFields,
  memoizeMetrics,
  silentLogger,
  withTimeout,
} from '@shoal/core';

describe('core helpers', () => {
  it('memoizes metrics per registry', () => {
    let created = 0;
    const metricsFor = memoizeMetrics((registry) => {
      created++;
      return new Counter({ name: 'shoal_test_total', help: 'test', registers: [registry] });
    });
    const r1 = new Registry();
    const r2 = new Registry();
    assert.equal(metricsFor(r1), metricsFor(r1));
    assert.notEqual(metricsFor(r1), metricsFor(r2));
    assert.equal(created, 2);
  });

  it('emits typed events and unsubscribes with the disposer; a throwing listener does not stop others', () => {
    const errors: unknown[] = [];
    const emitter = new EventEmitter<number>((e) => errors.push(e));
    const seen: number[] = [];
    emitter.event(() => {
      throw new Error('bad listener');
    });
    const dispose = emitter.event((n) => seen.push(n));
    emitter.emit(1);
    dispose();
    emitter.emit(2);
    assert.deepEqual(seen, [1]);
    assert.equal(errors.length, 2);
  });

  it('times out slow promises and clears the timer of fast ones', async () => {
    const clock = new ManualClock();
    let aborted = false;
    const slow = withTimeout(new Promise(() => {}), 100, 'consul request', {
      clock,
      onTimeout: () => (aborted = true),
    });
    clock.advance(100);
    await assert.rejects(
      slow,
      (e: unknown) => e instanceof TimeoutError && /consul request \(timed out after 100 ms\)/.test(e.message),
    );
    assert.equal(aborted, true);
    assert.equal(await withTimeout(Promise.resolve(7), 100, 'x', { clock }), 7);
    assert.equal(clock.pending, 0);
  });

  it('validates option names and enumerations', () => {
    assert.throws(() => assertKnownKeys('options', { ttlMs: 1, tllMs: 2 }, ['ttlMs']), /unknown option "tllMs"/);
    assert.throws(
      () => assertOneOf('status', 'bad', ['passing', 'warning']),
      /status must be one of "passing", "warning", got "bad"/,
    );
  });

  it('logs errors without their whole object and gives each component a child logger', () => {
    const err = Object.assign(new Error('boom'), { code: 'E1', options: { token: 'secret' } });
    assert.deepEqual(errorFields(err), { err: { name: 'Error', code: 'E1', message: 'boom' } });
    assert.deepEqual(errorFields('x'), { err: { name: 'NonError', message: 'x' } });
    assert.equal(componentLogger(undefined, 'x'), silentLogger);
  });
});
