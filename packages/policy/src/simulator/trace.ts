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
}

function parseTime(text: string, line: number): number {
  const trimmed = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?/.exec(trimmed);
  if (!m) throw new TraceError(`line ${line}: cannot read the time ${JSON.stringify(trimmed)}`);
  const [, y, mo, d, h, mi, s] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0)) / 1000;
}

/** Parses trace CSV text (time column first, count column second). */
export function parseTraceCsv(text: string, options: TraceOptions = {}): Trace {
  const timeScale = options.timeScale ?? 1;
  assertPositiveNumber('timeScale', timeScale);
  const rateScale = options.rateScale ?? 1;
  assertPositiveNumber('rateScale', rateScale);
  if (options.peakRps !== undefined) assertPositiveNumber('peakRps', options.peakRps);
  const fromS = options.fromS ?? 0;
  if (!(fromS >= 0)) throw new InvalidArgumentError(`fromS must be a number >= 0, got ${String(fromS)}`);
  if (options.durationS !== undefined) assertPositiveNumber('durationS', options.durationS);

  const lines = text.split(/\r?\n/);
  const times: number[] = [];
  const counts: number[] = [];
  for (let k = 1; k < lines.length; k++) {
    const raw = lines[k] as string;
    if (raw.trim() === '') continue;
    const cells = raw.split(',');
    if (cells.length < 2)
      throw new TraceError(`line ${k + 1}: expected "time,count", got ${JSON.stringify(raw.slice(0, 60))}`);
    const count = Number((cells[1] as string).trim());
    if (!Number.isFinite(count) || count < 0) {
      throw new TraceError(`line ${k + 1}: the count must be a number >= 0, got ${JSON.stringify(cells[1])}`);
    }
    times.push(parseTime(cells[0] as string, k + 1));
    counts.push(count);
  }
  if (counts.length === 0) throw new TraceError('the trace has no data rows');
  const diffs: number[] = [];
  for (let k = 1; k < Math.min(times.length, 101); k++) diffs.push((times[k] as number) - (times[k - 1] as number));
  diffs.sort((a, b) => a - b);
  const bucketS = diffs.length > 0 ? (diffs[Math.floor(diffs.length / 2)] as number) : 1;
  if (!(bucketS > 0)) throw new TraceError(`the time column must increase (bucket ${bucketS} s)`);

  const first = Math.floor(fromS / bucketS);
  const last =
    options.durationS === undefined
      ? counts.length
      : Math.min(counts.length, first + Math.ceil(options.durationS / bucketS));
  let rates = counts.slice(first, last).map((c) => c / bucketS);
  if (rates.length === 0) throw new TraceError(`fromS ${fromS} is past the end of the trace`);
  let factor = rateScale;
  if (options.peakRps !== undefined) {
    const peak = Math.max(...rates);
    factor = peak > 0 ? options.peakRps / peak : 0;
  }
  rates = rates.map((r) => r * factor);
  const dated = !/^\s*-?\d+(\.\d+)?\s*$/.test((lines[1] ?? '').split(',')[0] ?? '');
  const trace: Trace = { name: options.name ?? 'trace', stepS: bucketS * timeScale, rates };
  if (dated) trace.startMs = (times[first] as number) * 1000;
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
