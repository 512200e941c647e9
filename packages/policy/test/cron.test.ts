import assert from 'node:assert/strict';
import { cronMatches, lastCronMatch, parseCron } from '@shoal/policy';

const at = (iso: string): number => Date.parse(iso);

describe('cron', () => {
  const cases: Array<[string, string, boolean]> = [
    ['0 18 * * 1-5', '2026-01-05T18:00:30Z', true], // Monday
    ['0 18 * * 1-5', '2026-01-10T18:00:00Z', false], // Saturday
    ['0 18 * * mon-fri', '2026-01-09T18:00:00Z', true],
    ['*/15 * * * *', '2026-01-05T10:45:00Z', true],
    ['*/15 * * * *', '2026-01-05T10:46:00Z', false],
    ['0 9-17/4 * * *', '2026-01-05T13:00:00Z', true],
    ['0 9-17/4 * * *', '2026-01-05T15:00:00Z', false],
    ['30 6 1,15 * *', '2026-02-15T06:30:00Z', true],
    ['0 0 * dec sun', '2026-12-06T00:00:00Z', true], // Sunday in December
    ['0 0 * * 7', '2026-01-04T00:00:00Z', true], // 7 is Sunday too
    ['0 0 13 * 5', '2026-02-13T00:00:00Z', true], // Friday the 13th: either day field matches
    ['0 0 13 * 5', '2026-01-16T00:00:00Z', true], // a Friday that is not the 13th
    ['0 0 13 * 5', '2026-01-14T00:00:00Z', false],
  ];
  for (const [expr, time, expected] of cases) {
    it(`${expr} ${expected ? 'matches' : 'does not match'} ${time}`, () => {
      assert.equal(cronMatches(parseCron(expr), at(time)), expected);
    });
  }

  it('evaluates at a fixed UTC offset', () => {
    // 18:00 in UTC+2 is 16:00 UTC.
    assert.equal(cronMatches(parseCron('0 18 * * *'), at('2026-01-05T16:00:00Z'), 120), true);
  });

  it('finds the latest occurrence in a look-back window', () => {
    const c = parseCron('0 12 * * *');
    assert.equal(lastCronMatch(c, at('2026-01-05T12:59:00Z'), 3_600_000), at('2026-01-05T12:00:00Z'));
    assert.equal(lastCronMatch(c, at('2026-01-05T13:00:00Z'), 3_600_000), undefined);
    assert.equal(lastCronMatch(c, at('2026-01-05T11:59:00Z'), 3_600_000), undefined);
  });

  it('rejects bad expressions, naming the field', () => {
    assert.throws(() => parseCron('0 18 * *'), /must have 5 fields/);
    assert.throws(() => parseCron('0 24 * * *'), /invalid hour field \(24 is outside 0-23\)/);
    assert.throws(() => parseCron('0 5-1 * * *'), /invalid hour field \(range 5-1 is backwards\)/);
    assert.throws(() => parseCron('*/0 * * * *'), /invalid minute field \(step "0"\)/);
    assert.throws(() => parseCron('0 0 * foo *'), /invalid month field/);
  });
});
