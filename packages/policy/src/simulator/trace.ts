/**
 * Request-rate traces: the CSV format of the shared traces (a header row, a time column, a count column),
 * parsed into uniform buckets of requests per second, with time and rate scaling. Parsing only: reading the
 * file is the caller's job (the library does no I/O).
 */
import { assertPositiveNumber, InvalidArgumentError } from '@shoal/core';
import { TraceError } from '../errors.js';

export interface Trace {
  /** Label for reports and charts. */
  name: string;
  /** Bucket length in seconds (after time scaling). */
  stepS: number;
  /** Arrival rate in requests per second, one value per bucket. */
  rates: number[];
  /** Wall-clock time of the first bucket, epoch ms, when the CSV has dates. */
  startMs?: number;
  /** Buckets that had no row and were filled with 0 requests (`gaps: 'zero'`); 0 or absent when none. */
  filledBuckets?: number;
}

export interface TraceOptions {
  /** Label. Default `'trace'`. */
  name?: string;
  /** Multiply every duration by this (0.1 replays 10× faster). Default 1. */
  timeScale?: number;
  /** Multiply every rate by this. Default 1. Ignored when `peakRps` is set. */
  rateScale?: number;
  /** Scale rates so the peak bucket has this rate. Default: no normalization. */
  peakRps?: number;
  /** Skip this many seconds of the original trace. Default 0. */
  fromS?: number;
  /** Keep at most this many seconds of the original trace. Default: all. */
  durationS?: number;
  /**
   * A missing bucket (a time step larger than the trace's bucket): `'error'` (default) refuses the trace naming the
   * line; `'zero'` fills it with 0 requests and counts the filled buckets in `trace.filledBuckets`. Repeated and
   * out-of-order times, and steps that are not a whole number of buckets, are always errors.
   */
  gaps?: 'error' | 'zero';
}

function parseTime(text: string, line: number): number {
  const trimmed = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?/.exec(trimmed);
  if (!m) throw new TraceError(`line ${line}: cannot read the time ${JSON.stringify(trimmed)}`);
  const [, y, mo, d, h, mi, s] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0)) / 1000;
}

/** A plain decimal count (`12`, `0.5`, `1e3`); empty cells, `NaN`, hex and negative counts are refused. */
const COUNT = /^\d+(\.\d+)?([eE][+-]?\d+)?$/;

interface Row {
  /** Line number in the file (1-based, the header is line 1). */
  line: number;
  /** The time cell as written. */
  timeText: string;
  /** Seconds (epoch seconds for dates). */
  time: number;
  count: number;
}

function parseRows(text: string): Row[] {
  const lines = text.split(/\r?\n/);
  const rows: Row[] = [];
  for (let k = 1; k < lines.length; k++) {
    const raw = lines[k] as string;
    if (raw.trim() === '') continue;
    const cells = raw.split(',');
    if (cells.length < 2)
      throw new TraceError(`line ${k + 1}: expected "time,count", got ${JSON.stringify(raw.slice(0, 60))}`);
    const countText = (cells[1] as string).trim();
    const count = Number(countText);
    if (!COUNT.test(countText) || !Number.isFinite(count)) {
      throw new TraceError(`line ${k + 1}: the count must be a number >= 0, got ${JSON.stringify(cells[1])}`);
    }
    const timeText = (cells[0] as string).trim();
    rows.push({ line: k + 1, timeText, time: parseTime(timeText, k + 1), count });
  }
  if (rows.length === 0) throw new TraceError('the trace has no data rows');
  return rows;
}

/** The bucket: the smallest positive step among the first 100 rows (a gap or a repeat there cannot set it). */
function bucketOf(rows: readonly Row[]): number {
  let bucketS = Infinity;
  for (let k = 1; k < Math.min(rows.length, 101); k++) {
    const d = (rows[k] as Row).time - (rows[k - 1] as Row).time;
    if (d > 0) bucketS = Math.min(bucketS, d);
  }
  return Number.isFinite(bucketS) ? bucketS : 1;
}

/**
 * Honours the timestamps: one bucket per `bucketS` from the first row's time. A repeated or earlier time, or one
 * off the bucket grid, is an error naming its line; a missing bucket is an error, or 0 requests with `gaps: 'zero'`.
 */
function bucketize(
  rows: readonly Row[],
  bucketS: number,
  gaps: 'error' | 'zero',
): { buckets: number[]; filled: number } {
  const buckets: number[] = [];
  let filled = 0;
  const t0 = (rows[0] as Row).time;
  for (let k = 0; k < rows.length; k++) {
    const row = rows[k] as Row;
    const prev = k > 0 ? (rows[k - 1] as Row) : undefined;
    const steps = (row.time - t0) / bucketS;
    const index = Math.round(steps);
    if (prev && row.time === prev.time) {
      throw new TraceError(`line ${row.line}: time ${row.timeText} repeats line ${prev.line}'s (duplicate row)`);
    }
    if (prev && row.time < prev.time) {
      throw new TraceError(
        `line ${row.line}: time ${row.timeText} goes backwards from line ${prev.line}'s ${prev.timeText} (rows must be in time order)`,
      );
    }
    if (Math.abs(steps - index) > 1e-6) {
      throw new TraceError(
        `line ${row.line}: time ${row.timeText} is not a whole number of ${bucketS} s buckets after the first row's ${(rows[0] as Row).timeText}`,
      );
    }
    if (index > buckets.length) {
      const missing = index - buckets.length;
      if (gaps === 'error') {
        throw new TraceError(
          `line ${row.line}: ${missing} bucket(s) of ${bucketS} s missing between ${prev?.timeText ?? '?'} (line ${prev?.line ?? '?'}) and ${row.timeText} (gaps: 'zero' fills them with 0 requests)`,
        );
      }
      filled += missing;
      while (buckets.length < index) buckets.push(0);
    }
    buckets.push(row.count);
  }
  return { buckets, filled };
}

/**
 * Parses trace CSV text (a header row, then time column first, count column second). Timestamps are honoured:
 * rows must be in time order, one per bucket (the smallest step among the first rows); a duplicate, a backwards
 * time, a time off the bucket grid or a non-numeric count is a `TraceError` naming the line, and so is a gap
 * unless `gaps: 'zero'` (then `trace.filledBuckets` says how many were filled).
 */
export function parseTraceCsv(text: string, options: TraceOptions = {}): Trace {
  const timeScale = options.timeScale ?? 1;
  assertPositiveNumber('timeScale', timeScale);
  const rateScale = options.rateScale ?? 1;
  assertPositiveNumber('rateScale', rateScale);
  if (options.peakRps !== undefined) assertPositiveNumber('peakRps', options.peakRps);
  const fromS = options.fromS ?? 0;
  if (!(fromS >= 0)) throw new InvalidArgumentError(`fromS must be a number >= 0, got ${String(fromS)}`);
  if (options.durationS !== undefined) assertPositiveNumber('durationS', options.durationS);
  const gaps = options.gaps ?? 'error';
  if (gaps !== 'error' && gaps !== 'zero') {
    throw new InvalidArgumentError(`gaps must be "error" or "zero", got ${JSON.stringify(gaps)}`);
  }

  const rows = parseRows(text);
  const bucketS = bucketOf(rows);
  const { buckets, filled } = bucketize(rows, bucketS, gaps);
  const first = Math.floor(fromS / bucketS);
  const last =
    options.durationS === undefined
      ? buckets.length
      : Math.min(buckets.length, first + Math.ceil(options.durationS / bucketS));
  let rates = buckets.slice(first, last).map((c) => c / bucketS);
  if (rates.length === 0) throw new TraceError(`fromS ${fromS} is past the end of the trace`);
  let factor = rateScale;
  if (options.peakRps !== undefined) {
    const peak = Math.max(...rates);
    factor = peak > 0 ? options.peakRps / peak : 0;
  }
  rates = rates.map((r) => r * factor);
  const dated = !/^-?\d+(\.\d+)?$/.test((rows[0] as Row).timeText);
  const trace: Trace = { name: options.name ?? 'trace', stepS: bucketS * timeScale, rates };
  if (dated) trace.startMs = ((rows[0] as Row).time + first * bucketS) * 1000;
  if (filled > 0) trace.filledBuckets = filled;
  return trace;
}

/** A synthetic trace from a function of time (seconds) → requests per second, sampled every `stepS`. */
export function syntheticTrace(name: string, durationS: number, stepS: number, rate: (t: number) => number): Trace {
  assertPositiveNumber('durationS', durationS);
  assertPositiveNumber('stepS', stepS);
  const rates: number[] = [];
  for (let t = 0; t < durationS; t += stepS) rates.push(Math.max(0, rate(t)));
  return { name, stepS, rates };
}

/** Rate at second `t` (constant within a bucket). */
export function rateAt(trace: Trace, t: number): number {
  const k = Math.floor(t / trace.stepS);
  return trace.rates[Math.min(Math.max(k, 0), trace.rates.length - 1)] ?? 0;
}

export function traceDurationS(trace: Trace): number {
  return trace.rates.length * trace.stepS;
}
