/**
 * A small cron matcher for schedules: five fields (minute hour day-of-month month day-of-week), each `*`,
 * a number, a range `a-b`, a step `*\/n` or `a-b/n`, or a comma list of those. Months and weekdays also take
 * three-letter English names (`jan`, `mon`); weekday 0 and 7 are Sunday. As in Vixie cron, when both
 * day-of-month and day-of-week are restricted, a day matches if either matches. Times are evaluated at a
 * fixed UTC offset (no time-zone database, so no daylight-saving shifts).
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

/** True when the minute containing `epochMs` (shifted by `utcOffsetMinutes`) matches. */
export function cronMatches(cron: CronExpression, epochMs: number, utcOffsetMinutes = 0): boolean {
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
 * or undefined.
 * Scans minute by minute, so keep `lookbackMs` to hours, not weeks.
 */
export function lastCronMatch(
  cron: CronExpression,
  t: number,
  lookbackMs: number,
  utcOffsetMinutes = 0,
): number | undefined {
  const stop = t - lookbackMs;
  for (let minute = Math.floor(t / 60_000) * 60_000; minute > stop; minute -= 60_000) {
    if (cronMatches(cron, minute, utcOffsetMinutes)) return minute;
  }
  return undefined;
}
