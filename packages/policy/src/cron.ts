/**
 * A small cron matcher for schedules: five fields (minute hour day-of-month month day-of-week), each `*`,
 * a number, a range `a-b`, a step `*\/n` or `a-b/n`, or a comma list of those. Months and weekdays also take
 * three-letter English names (`jan`, `mon`); weekday 0 and 7 are Sunday. As in Vixie cron, when both
 * day-of-month and day-of-week are restricted, a day matches if either matches. Times are evaluated either at
 * a fixed UTC offset or in an IANA time zone (`'Europe/Berlin'`), whose daylight-saving shifts are followed
 * through the runtime's `Intl` time-zone data: a local time skipped by a spring-forward shift does not match
 * that day, and one repeated by a fall-back shift matches at both of its instants.
 */
import { InvalidArgumentError } from '@shoal/core';

export interface CronExpression {
  readonly source: string;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly daysOfWeek: ReadonlySet<number>;
  readonly domRestricted: boolean;
  readonly dowRestricted: boolean;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function parseField(
  name: string,
  expr: string,
  text: string,
  field: string,
  min: number,
  max: number,
  names?: readonly string[],
  nameBase = 0,
): Set<number> {
  const out = new Set<number>();
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`${name} has an invalid ${field} field (${why}), got ${JSON.stringify(expr)}`);
  };
  const num = (s: string): number => {
    const lower = s.toLowerCase();
    if (names) {
      const k = names.indexOf(lower);
      if (k >= 0) return k + nameBase;
    }
    if (!/^\d+$/.test(s)) bad(`"${s}" is not a number`);
    const n = Number(s);
    if (n < min || n > max) bad(`${n} is outside ${min}-${max}`);
    return n;
  };
  for (const part of text.split(',')) {
    if (part === '') bad('empty list item');
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) bad('two steps');
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) bad(`step "${stepText}"`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = min;
      hi = max;
    } else if (range !== undefined && range.includes('-')) {
      const [a, b] = range.split('-');
      lo = num(a ?? '');
      hi = num(b ?? '');
      if (lo > hi) bad(`range ${lo}-${hi} is backwards`);
    } else {
      lo = num(range ?? '');
      hi = stepText === undefined ? lo : max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** Parses a five-field cron expression; throws `InvalidArgumentError` naming `name` and the expression. */
export function parseCron(expr: string, name = 'cron'): CronExpression {
  if (typeof expr !== 'string') throw new InvalidArgumentError(`${name} must be a cron string, got ${typeof expr}`);
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) {
    throw new InvalidArgumentError(
      `${name} must have 5 fields (minute hour day month weekday), got ${JSON.stringify(expr)}`,
    );
  }
  const [mi, ho, dom, mo, dow] = fields as [string, string, string, string, string];
  const daysOfWeek = parseField(name, expr, dow, 'day-of-week', 0, 7, DAYS);
  if (daysOfWeek.has(7)) daysOfWeek.add(0);
  return Object.freeze({
    source: expr,
    minutes: parseField(name, expr, mi, 'minute', 0, 59),
    hours: parseField(name, expr, ho, 'hour', 0, 23),
    daysOfMonth: parseField(name, expr, dom, 'day-of-month', 1, 31),
    months: parseField(name, expr, mo, 'month', 1, 12, MONTHS, 1),
    daysOfWeek,
    domRestricted: dom !== '*',
    dowRestricted: dow !== '*',
  });
}

/**
 * Where a cron is evaluated: minutes east of UTC (a fixed offset), or an IANA time-zone name such as
 * `'America/New_York'` (daylight-saving time followed).
 */
export type CronZone = number | string;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * Throws `InvalidArgumentError` naming `name` unless `timeZone` is an IANA time zone this runtime knows;
 * returns its canonical spelling.
 */
export function assertTimeZone(name: string, timeZone: unknown): string {
  if (typeof timeZone !== 'string' || timeZone === '' || timeZone.length > 64) {
    throw new InvalidArgumentError(
      `${name} must be an IANA time-zone name such as "Europe/Berlin", got ${String(timeZone)}`,
    );
  }
  try {
    return formatterFor(timeZone).resolvedOptions().timeZone;
  } catch {
    throw new InvalidArgumentError(`${name} is not a time zone this runtime knows, got ${JSON.stringify(timeZone)}`);
  }
}

/** Minutes east of UTC in force at `epochMs`: the fixed offset, or the time zone's offset at that instant. */
export function zoneOffsetMinutes(zone: CronZone, epochMs: number): number {
  if (typeof zone === 'number') return zone;
  const minute = Math.floor(epochMs / 60_000) * 60_000;
  let y = 0;
  let mo = 0;
  let d = 0;
  let h = 0;
  let mi = 0;
  for (const part of formatterFor(zone).formatToParts(minute)) {
    switch (part.type) {
      case 'year':
        y = Number(part.value);
        break;
      case 'month':
        mo = Number(part.value);
        break;
      case 'day':
        d = Number(part.value);
        break;
      case 'hour':
        h = Number(part.value);
        break;
      case 'minute':
        mi = Number(part.value);
        break;
    }
  }
  return Math.round((Date.UTC(y, mo - 1, d, h, mi) - minute) / 60_000);
}

/** True when the minute containing `epochMs`, read in `zone` (default UTC), matches. */
export function cronMatches(cron: CronExpression, epochMs: number, zone: CronZone = 0): boolean {
  return matchesAtOffset(cron, epochMs, zoneOffsetMinutes(zone, epochMs));
}

function matchesAtOffset(cron: CronExpression, epochMs: number, utcOffsetMinutes: number): boolean {
  const d = new Date(epochMs + utcOffsetMinutes * 60_000);
  if (!cron.minutes.has(d.getUTCMinutes()) || !cron.hours.has(d.getUTCHours())) return false;
  if (!cron.months.has(d.getUTCMonth() + 1)) return false;
  const domOk = cron.daysOfMonth.has(d.getUTCDate());
  const dowOk = cron.daysOfWeek.has(d.getUTCDay());
  if (cron.domRestricted && cron.dowRestricted) return domOk || dowOk;
  return domOk && dowOk;
}

/**
 * The start (epoch ms, minute-aligned) of the latest matching minute whose start lies in `(t - lookbackMs, t]`,
 * read in `zone` (default UTC), or undefined.
 * Scans minute by minute, so keep `lookbackMs` to hours, not weeks.
 */
export function lastCronMatch(
  cron: CronExpression,
  t: number,
  lookbackMs: number,
  zone: CronZone = 0,
): number | undefined {
  const stop = t - lookbackMs;
  const first = Math.floor(t / 60_000) * 60_000;
  // A zone's offset changes at most at a daylight-saving shift: when it is the same at both ends of the scan,
  // one offset serves every minute in between (shifts are months apart; lookbacks are hours).
  const offsetNow = zoneOffsetMinutes(zone, first);
  const fixed = typeof zone === 'number' || zoneOffsetMinutes(zone, stop + 60_000) === offsetNow;
  for (let minute = first; minute > stop; minute -= 60_000) {
    if (matchesAtOffset(cron, minute, fixed ? offsetNow : zoneOffsetMinutes(zone, minute))) return minute;
  }
  return undefined;
}
