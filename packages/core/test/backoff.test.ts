import assert from 'node:assert/strict';
import sinon from 'sinon';
import {
  AbortedError,
  Backoff,
  InvalidArgumentError,
  ManualClock,
  backoffDelay,
  fullJitterDelay,
  resolveBackoffOptions,
  retry,
} from '@shoal/core';

describe('backoff', () => {
  it('grows the ceiling exponentially up to the cap, with full jitter', () => {
    const opts = resolveBackoffOptions({ baseMs: 100, capMs: 1000, random: () => 0.999999 });
    const delays = [0, 1, 2, 3, 4, 10].map((a) => fullJitterDelay(a, opts));
    assert.deepEqual(delays, [99, 199, 399, 799, 999, 999]);
    const low = resolveBackoffOptions({ baseMs: 100, capMs: 1000, random: () => 0 });
    assert.equal(fullJitterDelay(5, low), 0);
  });

  it('stops after maxAttempts and starts over on reset', () => {
    const b = new Backoff({ baseMs: 10, maxAttempts: 2, random: () => 0.5 });
    assert.equal(b.next(), 5);
    assert.equal(b.next(), 10);
    assert.equal(b.next(), undefined);
    assert.equal(b.attempts, 2);
    b.reset();
    assert.equal(b.next(), 5);
  });

  it('rejects bad options with a message naming the option', () => {
    assert.throws(
      () => new Backoff({ baseMs: -5 }),
      (e: unknown) => e instanceof InvalidArgumentError && /baseMs must be a finite number > 0, got -5/.test(e.message),
    );
    assert.throws(() => new Backoff({ baseMs: 100, capMs: 50 }), /capMs must be >= baseMs/);
    assert.throws(() => new Backoff({ maxAttempts: 0 }), /maxAttempts/);
    assert.throws(() => new Backoff({ maxAttempts: 1.5 }), /maxAttempts/);
    assert.throws(() => new Backoff({ factor: 0.5 }), /factor/);
    assert.throws(() => new Backoff({ baseMs: Number.NaN }), /baseMs.*NaN/);
    assert.throws(() => new Backoff({ jitter: 'half' as 'full' }), /jitter must be "full" or "equal", got "half"/);
  });

  it("a bound lowers one draw's ceiling and never raises it; the attempt count still grows", () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, random: () => 0.999999 });
    assert.deepEqual(
      [b.next(), b.next(), b.next(), b.next(250), b.next(5000), b.next()],
      [99, 199, 399, 249, 1599, 3199],
    );
    const equal = resolveBackoffOptions({ baseMs: 100, capMs: 10_000, jitter: 'equal', random: () => 0 });
    assert.equal(backoffDelay(6, equal, 1000), 500);
    assert.equal(backoffDelay(6, equal, -1), 3200, 'a negative bound is no bound');
  });

  it('equal jitter keeps each delay in the upper half of its ceiling', () => {
    const low = new Backoff({ baseMs: 500, capMs: 15_000, jitter: 'equal', random: () => 0 });
    assert.deepEqual(
      Array.from({ length: 7 }, () => low.next()),
      [250, 500, 1000, 2000, 4000, 7500, 7500],
    );
    const high = resolveBackoffOptions({ baseMs: 500, capMs: 15_000, jitter: 'equal', random: () => 0.999999 });
    assert.equal(backoffDelay(10, high), 14_999);
  });

  describe('retry', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers();
    });
    afterEach(() => clock.restore());

    it('retries until success, waiting between attempts', async () => {
      let calls = 0;
      const seen: number[] = [];
      const p = retry(
        async () => {
          calls++;
          if (calls < 3) throw new Error(`fail ${calls}`);
          return 'ok';
        },
        { baseMs: 100, random: () => 0.5, onRetry: (_e, _a, d) => seen.push(d) },
      );
      await clock.tickAsync(1000);
      assert.equal(await p, 'ok');
      assert.equal(calls, 3);
      assert.deepEqual(seen, [50, 100]);
    });

    it('gives up after maxAttempts with the last error', async () => {
      let calls = 0;
      const p = retry(
        async () => {
          calls++;
          throw new Error(`fail ${calls}`);
        },
        { baseMs: 10, maxAttempts: 3, random: () => 0.5 },
      );
      const assertion = assert.rejects(p, /fail 3/);
      await clock.tickAsync(1000);
      await assertion;
      assert.equal(calls, 3);
    });

    it('does not retry errors that shouldRetry refuses', async () => {
      let calls = 0;
      await assert.rejects(
        retry(
          async () => {
            calls++;
            throw new Error('permanent');
          },
          { shouldRetry: () => false },
        ),
        /permanent/,
      );
      assert.equal(calls, 1);
    });

    it('stops waiting when aborted', async () => {
      const ac = new AbortController();
      const p = retry(
        async () => {
          throw new Error('down');
        },
        { baseMs: 10_000, random: () => 0.5, signal: ac.signal },
      );
      const assertion = assert.rejects(p, (e: unknown) => e instanceof AbortedError);
      await clock.tickAsync(10);
      ac.abort();
      await assertion;
    });
  });

  it('works with an injected ManualClock', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const p = retry(
      async () => {
        if (++calls < 2) throw new Error('once');
        return calls;
      },
      { clock, baseMs: 1000, random: () => 0.5 },
    );
    await clock.advanceAsync(499, 499);
    assert.equal(calls, 1);
    await clock.advanceAsync(1, 1);
    assert.equal(await p, 2);
  });
});
