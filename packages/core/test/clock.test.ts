import assert from 'node:assert/strict';
import sinon from 'sinon';
import { ManualClock, realClock, sleep } from '@shoal/core';

describe('clock', () => {
  describe('ManualClock', () => {
    it('fires due timers in time order, including ones scheduled while advancing', () => {
      const clock = new ManualClock(1000);
      const fired: string[] = [];
      clock.setTimeout(() => fired.push('b@30'), 30);
      clock.setTimeout(() => {
        fired.push('a@10');
        clock.setTimeout(() => fired.push('c@15'), 5);
      }, 10);
      clock.setTimeout(() => fired.push('late@100'), 100);
      clock.advance(50);
      assert.deepEqual(fired, ['a@10', 'c@15', 'b@30']);
      assert.equal(clock.now(), 1050);
      assert.equal(clock.monotonic(), 50);
      assert.equal(clock.pending, 1);
    });

    it('does not fire cleared timers', () => {
      const clock = new ManualClock();
      let fired = false;
      const t = clock.setTimeout(() => (fired = true), 10);
      clock.clearTimeout(t);
      clock.advance(20);
      assert.equal(fired, false);
      assert.equal(clock.pending, 0);
    });

    it('rejects a negative advance', () => {
      assert.throws(() => new ManualClock().advance(-1), RangeError);
    });
  });

  describe('realClock', () => {
    let fake: sinon.SinonFakeTimers;
    beforeEach(() => {
      fake = sinon.useFakeTimers({ now: 5000 });
    });
    afterEach(() => fake.restore());

    it('follows sinon fake timers installed after import', () => {
      assert.equal(realClock.now(), 5000);
      let fired = false;
      realClock.setTimeout(() => (fired = true), 100).unref();
      fake.tick(99);
      assert.equal(fired, false);
      fake.tick(1);
      assert.equal(fired, true);
    });

    it('clears timers', () => {
      let fired = false;
      const h = realClock.setTimeout(() => (fired = true), 10);
      realClock.clearTimeout(h);
      fake.tick(20);
      assert.equal(fired, false);
    });
  });

  describe('sleep', () => {
    it('resolves after the time passes on the given clock', async () => {
      const clock = new ManualClock();
      let done = false;
      const p = sleep(clock, 100).then(() => (done = true));
      clock.advance(99);
      await Promise.resolve();
      assert.equal(done, false);
      clock.advance(1);
      await p;
      assert.equal(done, true);
    });

    it('rejects with the abort reason and clears its timer', async () => {
      const clock = new ManualClock();
      const ac = new AbortController();
      const p = sleep(clock, 100, ac.signal);
      ac.abort(new Error('stop'));
      await assert.rejects(p, /stop/);
      assert.equal(clock.pending, 0);
      await assert.rejects(sleep(clock, 1, ac.signal), /stop/);
    });
  });
});
