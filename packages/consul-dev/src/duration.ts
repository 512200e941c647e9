/**
 * Go `time.Duration` text, as Consul reads and writes it: "10s", "1m30s", "500ms", "1.5h". Consul parses every
 * duration in a request with `time.ParseDuration`, and a bare JSON number is read as nanoseconds.
 */
const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Parses a Go duration into nanoseconds; returns `undefined` when the text is not one. */
export function parseGoDurationNs(text: string): number | undefined {
  let s = text;
  if (s === '') return undefined;
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = part.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_NS[m[2]!]!;
    s = s.slice(m[0].length);
  }
  return sign * Math.round(total);
}

/** Parses a Go duration into milliseconds (fractional allowed); `undefined` when invalid. */
export function parseGoDurationMs(text: string): number | undefined {
  const ns = parseGoDurationNs(text);
  return ns === undefined ? undefined : ns / 1e6;
}

/**
 * Reads a duration field of a JSON request body: a Go duration string, or a number of nanoseconds.
 * Returns milliseconds, `undefined` when absent or empty, or throws `Error` with Go's message when invalid.
 */
export function readDurationField(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value / 1e6;
  if (typeof value === 'string') {
    const ns = parseGoDurationNs(value);
    if (ns === undefined) throw new Error(`time: invalid duration ${JSON.stringify(value)}`);
    return ns / 1e6;
  }
  throw new Error(`json: cannot unmarshal ${typeof value} into Go value of type time.Duration`);
}

function trimFloat(n: number): string {
  // Go prints the shortest exact decimal: 1.5s, 0.25s
  return String(Number(n.toFixed(9)));
}

/** Formats milliseconds the way Go's `Duration.String()` does: 10s, 1m0s, 1h30m0s, 500ms, 0s. */
export function formatGoDuration(ms: number): string {
  const ns = Math.round(ms * 1e6);
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let rest = Math.abs(ns);
  let out: string;
  if (rest < 1e9) {
    if (rest < 1e3) out = `${rest}ns`;
    else if (rest < 1e6) out = `${trimFloat(rest / 1e3)}µs`;
    else out = `${trimFloat(rest / 1e6)}ms`;
  } else {
    const h = Math.floor(rest / 3600e9);
    rest -= h * 3600e9;
    const m = Math.floor(rest / 60e9);
    rest -= m * 60e9;
    const s = `${trimFloat(rest / 1e9)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}
