import assert from 'node:assert/strict';
import { resolvePolicy } from '@shoal/policy';
import { cronMatches, lastCronMatch, parseCron, zoneOffsetMinutes } from '@shoal/policy/internal';

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

  describe('in an IANA time zone', () => {
    // Europe/Berlin in 2026: CET (UTC+1) until 29 March 01:00 UTC, CEST (UTC+2) until 25 October 01:00 UTC.
    it('reads the offset in force at an instant', () => {
      assert.equal(zoneOffsetMinutes('Europe/Berlin', at('2026-01-05T12:00:00Z')), 60);
      assert.equal(zoneOffsetMinutes('Europe/Berlin', at('2026-07-06T12:00:00Z')), 120);
      assert.equal(zoneOffsetMinutes('America/New_York', at('2026-01-05T12:00:00Z')), -300);
      assert.equal(zoneOffsetMinutes('Asia/Kolkata', at('2026-01-05T12:00:00Z')), 330);
      assert.equal(zoneOffsetMinutes(-90, at('2026-01-05T12:00:00Z')), -90);
    });

    it('follows daylight-saving time: 09:00 local is 08:00 UTC in winter, 07:00 UTC in summer', () => {
      const nine = parseCron('0 9 * * *');
      assert.equal(cronMatches(nine, at('2026-01-05T08:00:00Z'), 'Europe/Berlin'), true);
      assert.equal(cronMatches(nine, at('2026-01-05T07:00:00Z'), 'Europe/Berlin'), false);
      assert.equal(cronMatches(nine, at('2026-07-06T07:00:00Z'), 'Europe/Berlin'), true);
      assert.equal(cronMatches(nine, at('2026-07-06T08:00:00Z'), 'Europe/Berlin'), false);
    });

    it('skips a local time that the spring-forward shift leaves out', () => {
      // 02:30 does not exist in Berlin on 29 March 2026; look back over that whole local day.
      assert.equal(
        lastCronMatch(parseCron('30 2 * * *'), at('2026-03-29T22:00:00Z'), 23 * 3_600_000, 'Europe/Berlin'),
        undefined,
      );
      assert.equal(
        lastCronMatch(parseCron('30 2 * * *'), at('2026-03-30T22:00:00Z'), 23 * 3_600_000, 'Europe/Berlin'),
        at('2026-03-30T00:30:00Z'),
      );
    });

    it('matches both instants of a local time that the fall-back shift repeats', () => {
      const c = parseCron('30 2 * * *');
      assert.equal(cronMatches(c, at('2026-10-25T00:30:00Z'), 'Europe/Berlin'), true); // 02:30 CEST
      assert.equal(cronMatches(c, at('2026-10-25T01:30:00Z'), 'Europe/Berlin'), true); // 02:30 CET
    });

    it('finds occurrences in look-back windows that span a shift', () => {
      // 03:00 CEST on the spring-forward day is 01:00 UTC; the window starts in CET.
      assert.equal(
        lastCronMatch(parseCron('0 3 * * *'), at('2026-03-29T01:30:00Z'), 2 * 3_600_000, 'Europe/Berlin'),
        at('2026-03-29T01:00:00Z'),
      );
      // 01:00 CEST on the fall-back day is 23:00 UTC the day before; the window ends in CET.
      assert.equal(
        lastCronMatch(parseCron('0 1 * * *'), at('2026-10-25T01:30:00Z'), 3 * 3_600_000, 'Europe/Berlin'),
        at('2026-10-24T23:00:00Z'),
      );
    });

    it('validates schedules[].timeZone, naming it', () => {
      const schedule = { cron: '0 9 * * *', minReplicas: 2 };
      assert.equal(
        resolvePolicy({ schedules: [{ ...schedule, timeZone: 'europe/berlin' }] }).schedules[0]?.timeZone,
        'Europe/Berlin',
      );
      assert.throws(
        () => resolvePolicy({ schedules: [{ ...schedule, timeZone: 'Mars/Olympus_Mons' }] }),
        /schedules\[0\]\.timeZone is not a time zone this runtime knows, got "Mars\/Olympus_Mons"/,
      );
      assert.throws(
        () => resolvePolicy({ schedules: [{ ...schedule, timeZone: 42 as unknown as string }] }),
        /schedules\[0\]\.timeZone must be an IANA time-zone name/,
      );
      assert.throws(
        () => resolvePolicy({ schedules: [{ ...schedule, timeZone: 'Europe/Berlin', utcOffsetMinutes: 60 }] }),
        /schedules\[0\] takes timeZone or utcOffsetMinutes, not both/,
      );
    });
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
