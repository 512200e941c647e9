/**
 * The metric names a policy can target: what the coordinator's window computes from every agent report, and the
 * custom (business) metrics a service declares it reports. A target naming anything else would never have a
 * value, so the service would silently never scale: the config is refused instead, with the names it knows.
 */

/** Computed by the coordinator from every agent report (see `ServiceWindow`). */
export const BUILTIN_METRICS = Object.freeze([
  'eventLoopUtilization',
  'cpu',
  'inFlight',
  'rps',
  'errorsPerSecond',
  'eventLoopDelayP99Ms',
  'rssBytes',
  'heapUsedBytes',
  'latencyP50Ms',
  'latencyP95Ms',
  'latencyP99Ms',
] as const);

/** Edit distance, for "did you mean" (names are short; a plain O(n·m) table is fine at config time). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length] as number;
}

/** The closest known name when it is close enough to be a typo (case, one or two characters). */
export function suggestMetric(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === lower ? 0 : distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.min(2, Math.floor(name.length / 4))) ? best : undefined;
}

/** Why `name` cannot be targeted, or undefined when it can. `at` is the config path of the custom list. */
export function unknownMetricReason(name: string, custom: readonly string[], at: string): string | undefined {
  if ((BUILTIN_METRICS as readonly string[]).includes(name) || custom.includes(name)) return undefined;
  const known = [...BUILTIN_METRICS, ...custom];
  const suggestion = suggestMetric(name, known);
  return (
    `unknown metric ${JSON.stringify(name)}${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ''}: ` +
    `the coordinator computes ${BUILTIN_METRICS.join(', ')}` +
    (custom.length > 0 ? `; this service declares ${custom.join(', ')}` : '') +
    `. A custom metric the app reports (agent.gauge/counter) must be listed in the service's ${at}`
  );
}
