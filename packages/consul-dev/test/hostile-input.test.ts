import assert from 'node:assert/strict';
import { ManualClock, type TimerHandle } from '@shoal/core';
import { compileFilter, FilterError, MAX_FILTER_DEPTH } from '../src/filter.js';
import { MAX_TIMER_MS, overflowSafeClock } from '../src/overflow-safe-clock.js';
import { agentCheck, harness, type Harness } from './helpers.js';

/**
 * A ManualClock that overflows as Node's timers do: a delay above 2^31 - 1 ms is set to 1 ms (Node prints a
 * TimeoutOverflowWarning and fires almost at once). Before the fix, a check TTL of 600h expired after 1 ms on it.
 */
class NodeLikeClock extends ManualClock {
  override setTimeout(fn: () => void, ms: number): TimerHandle {
    return super.setTimeout(fn, ms > MAX_TIMER_MS ? 1 : ms);
  }
}

const SAMPLE = { Service: { Meta: { z: '' }, Tags: [] } };

describe('consul-dev against hostile input (issue 18, finding 5)', () => {
  describe('filters', () => {
    it('runs `matches` on RE2 semantics: ^(a|a)+$ on 40 characters answers, lookaround and backreferences are refused', () => {
      // Backtracking (JavaScript's RegExp) takes 2^40 steps on this; RE2 is linear. RE2-only behaviour below proves
      // which engine runs, without timing anything.
      const p = compileFilter('Service.Meta.z matches "^(a|a)+$"', SAMPLE);
      assert.equal(p({ Service: { Meta: { z: `${'a'.repeat(40)}!` } } }), false);
      assert.equal(p({ Service: { Meta: { z: 'a'.repeat(40) } } }), true);
      assert.throws(() => compileFilter('Service.Meta.z matches "(?=a)a"', SAMPLE), /invalid regular expression/);
      assert.throws(() => compileFilter('Service.Meta.z matches "(a)\\\\1"', SAMPLE), /invalid regular expression/);
    });

    it(`refuses nesting deeper than ${MAX_FILTER_DEPTH} with a FilterError, not a stack overflow`, () => {
      const nested = (n: number, open = '(') => `${open.repeat(n)}Service.Meta.z == "a"${')'.repeat(n)}`;
      assert.equal(compileFilter(nested(MAX_FILTER_DEPTH), SAMPLE)({ Service: { Meta: { z: 'a' } } }), true);
      assert.throws(
        () => compileFilter(nested(3000), SAMPLE),
        (e: Error) => {
          assert.ok(e instanceof FilterError, String(e));
          assert.match(e.message, /nested deeper than 256 levels/);
          return true;
        },
      );
      assert.throws(() => compileFilter(`${'not '.repeat(3000)}Service.Meta.z == "a"`, SAMPLE), FilterError);
    });
  });

  describe('over HTTP', () => {
    let h: Harness;
    beforeEach(async () => {
      h = await harness();
      await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Meta: { z: 'a'.repeat(40) } });
    });
    afterEach(async () => {
      await h.close();
    });

    it('answers a catastrophic-backtracking filter, and the server keeps answering', async () => {
      const filter = encodeURIComponent(`Service.Meta.z matches "^(a|a)+$" or Service.Meta.z matches "^(a|a)+b$"`);
      const res = await h.call('GET', `/v1/health/service/web?filter=${filter}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json<unknown[]>().length, 1);
      assert.equal((await h.call('GET', '/v1/status/leader')).status, 200);
    });

    it('answers 3,000 nested parentheses with Consul’s 500 for a bad filter, naming the limit', async () => {
      const filter = encodeURIComponent(`${'('.repeat(3000)}Service.Meta.z == "a"${')'.repeat(3000)}`);
      const res = await h.call('GET', `/v1/health/service/web?filter=${filter}`);
      assert.equal(res.status, 500);
      assert.match(res.text, /^Failed to create boolean expression evaluator: .*nested deeper than 256 levels/);
      assert.doesNotMatch(res.text, /call stack/);
    });
  });

  describe('timers', () => {
    it('keeps a check with TTL 600h passing until 600h, on a clock that overflows as Node does', async () => {
      const clock = new NodeLikeClock(1_700_000_000_000);
      const h = await harness({}, clock);
      try {
        await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { TTL: '600h', Status: 'passing' } });
        clock.advance(1000);
        assert.equal((await agentCheck(h, 'service:web'))?.Status, 'passing', 'not expired at once');
        clock.advance(600 * 3_600_000 - 2000);
        assert.equal((await agentCheck(h, 'service:web'))?.Status, 'passing', 'not expired before 600h');
        clock.advance(1000);
        assert.equal((await agentCheck(h, 'service:web'))?.Status, 'critical', 'expired at 600h');
      } finally {
        await h.close();
      }
    });

    it('re-arms long timers in steps the platform honours, and cancels them', () => {
      const base = new NodeLikeClock(0);
      const clock = overflowSafeClock(base);
      let fired = 0;
      clock.setTimeout(() => fired++, 5 * MAX_TIMER_MS);
      const cancelled = clock.setTimeout(() => fired++, 3 * MAX_TIMER_MS);
      clock.clearTimeout(cancelled);
      base.advance(5 * MAX_TIMER_MS - 1);
      assert.equal(fired, 0);
      base.advance(1);
      assert.equal(fired, 1);
      assert.equal(base.pending, 0, 'nothing left armed');
      clock.setTimeout(() => fired++, Number.NaN);
      base.advance(0);
      assert.equal(fired, 2, 'NaN is 0');
    });
  });
});
