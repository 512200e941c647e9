import assert from 'node:assert/strict';
import { hasErrorCode } from '@shoal/core';
import { parseTraceCsv, syntheticTrace } from '@shoal/policy';
import { rateAt, traceDurationS } from '@shoal/policy/internal';

const perMinute = [
  'minute_start_gmt,requests',
  '1998-07-06 00:00,600',
  '1998-07-06 00:01,1200',
  '1998-07-06 00:02,300',
  '',
].join('\n');
const perSecond = ['second,requests', '0,5', '1,7', '2,0', '3,9'].join('\n');

describe('traces', () => {
  it('reads per-minute CSV with dates into requests per second', () => {
    const t = parseTraceCsv(perMinute, { name: 'wc' });
    assert.equal(t.stepS, 60);
    assert.deepEqual(t.rates, [10, 20, 5]);
    assert.equal(t.startMs, Date.UTC(1998, 6, 6));
    assert.equal(traceDurationS(t), 180);
    assert.equal(rateAt(t, 61), 20);
  });

  it('reads per-second CSV with numeric times', () => {
    const t = parseTraceCsv(perSecond);
    assert.equal(t.stepS, 1);
    assert.deepEqual(t.rates, [5, 7, 0, 9]);
    assert.equal(t.startMs, undefined);
  });

  it('scales time and rate, or normalizes the peak, and slices', () => {
    assert.deepEqual(parseTraceCsv(perMinute, { rateScale: 2 }).rates, [20, 40, 10]);
    assert.equal(parseTraceCsv(perMinute, { timeScale: 0.1 }).stepS, 6);
    assert.deepEqual(parseTraceCsv(perMinute, { peakRps: 100 }).rates, [50, 100, 25]);
    assert.deepEqual(parseTraceCsv(perMinute, { fromS: 60, durationS: 60 }).rates, [20]);
  });

  it('reads the shared traces when present', function () {
    // The real traces live in shared/ beside the repository (as in CI); skipped where that folder is absent.
    const file = new URL('../../../../../shared/traces/AzureLLMInferenceTrace_conv_per_second.csv', import.meta.url);
    return import('node:fs').then(({ existsSync, readFileSync }) => {
      if (!existsSync(file)) return this.skip();
      const t = parseTraceCsv(readFileSync(file, 'utf8'));
      assert.equal(t.stepS, 1);
      assert.equal(t.rates.length, 3_503);
    });
  });

  it('rejects malformed rows, naming the line', () => {
    assert.throws(
      () => parseTraceCsv('t,n\n0,1\n1,oops\n'),
      (e: unknown) =>
        hasErrorCode(e, 'SHOAL_ERR_TRACE') && /line 3: the count must be a number >= 0, got "oops"/.test(String(e)),
    );
    assert.throws(() => parseTraceCsv('t,n\nyesterday,1\n'), /line 2: cannot read the time "yesterday"/);
    assert.throws(() => parseTraceCsv('t,n\n'), /no data rows/);
    assert.throws(() => parseTraceCsv(perSecond, { timeScale: 0 }), /timeScale must be a finite number > 0, got 0/);
  });

  it('refuses empty and non-decimal counts', () => {
    assert.throws(() => parseTraceCsv('t,n\n0,1\n1,\n'), /line 3: the count must be a number >= 0, got ""/);
    assert.throws(() => parseTraceCsv('t,n\n0,1\n1,0x10\n'), /line 3: .*"0x10"/);
    assert.throws(() => parseTraceCsv('t,n\n0,-1\n'), /line 2: .*"-1"/);
    assert.throws(() => parseTraceCsv('t,n\n0,NaN\n'), /line 2: .*"NaN"/);
    assert.deepEqual(parseTraceCsv('t,n\n0,1e2\n1,0.5\n').rates, [100, 0.5]);
  });

  it('honours timestamps: duplicates, backwards times and off-grid times are errors naming the line', () => {
    const code = (re: RegExp) => (e: unknown) => hasErrorCode(e, 'SHOAL_ERR_TRACE') && re.test(String(e));
    assert.throws(() => parseTraceCsv('t,n\n0,1\n1,2\n1,3\n2,4\n'), code(/line 4: time 1 repeats line 3's/));
    assert.throws(
      () => parseTraceCsv('t,n\n0,1\n1,2\n2,3\n1,4\n'),
      code(/line 5: time 1 goes backwards from line 4's 2/),
    );
    assert.throws(
      () => parseTraceCsv(perMinute.replace('00:01,1200', '00:01,1200\n1998-07-06 00:00,5')),
      code(/line 4: time 1998-07-06 00:00 goes backwards from line 3's 1998-07-06 00:01/),
    );
    assert.throws(
      () => parseTraceCsv('t,n\n0,1\n1,2\n2,3\n3.5,4\n'),
      code(/line 5: time 3.5 is not a whole number of 1 s buckets after the first row's 0/),
    );
  });

  it("refuses a gap naming the line, or fills it with 0 with gaps: 'zero' and says how many", () => {
    const gap = 'minute,requests\n1998-07-06 00:00,60\n1998-07-06 00:01,120\n1998-07-06 00:04,60\n';
    assert.throws(
      () => parseTraceCsv(gap),
      (e: unknown) =>
        hasErrorCode(e, 'SHOAL_ERR_TRACE') &&
        /line 4: 2 bucket\(s\) of 60 s missing between 1998-07-06 00:01 \(line 3\) and 1998-07-06 00:04/.test(
          String(e),
        ),
    );
    const t = parseTraceCsv(gap, { gaps: 'zero' });
    assert.deepEqual(t.rates, [1, 2, 0, 0, 1]);
    assert.equal(t.filledBuckets, 2);
    assert.equal(traceDurationS(t), 300, 'a gap no longer shrinks the trace');
    assert.equal(parseTraceCsv(perMinute).filledBuckets, undefined);
    assert.throws(() => parseTraceCsv(gap, { gaps: 'skip' as 'zero' }), /gaps must be "error" or "zero", got "skip"/);
  });

  it('builds synthetic traces', () => {
    const t = syntheticTrace('ramp', 10, 2, (s) => s * 10 - 30);
    assert.deepEqual(t.rates, [0, 0, 10, 30, 50]);
  });
});
