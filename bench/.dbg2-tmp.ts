import { readFileSync } from 'node:fs';
import { simulate, parseTraceCsv } from '@shoal/policy';
const trace = parseTraceCsv(readFileSync('/work/shared/traces/wc98_per_minute_1998-07-06_to_1998-07-09.csv', 'utf8'), { name: 'wc98', peakRps: 40 * 80 * 0.7 });
const MODEL = { concurrency: 4, serviceTimeMs: 50, coldStartMs: 30000, timeoutMs: 2000, sloP95Ms: 250, seed: 42, timelinePoints: 345600 / 60 };
const pol = JSON.parse(process.argv[2] ?? '{}');
const h = simulate({ trace, policy: { preset: 'hpa', maxReplicas: 200, targets: [{ metric: 'cpu', type: 'utilization', value: 70 }] }, model: { ...MODEL, syncPeriodMs: 15000 } });
const s = simulate({ trace, policy: { maxReplicas: 200, targets: [{ metric: 'eventLoopUtilization', value: 0.7 }, { metric: 'rps', value: 56 }], slo: { thresholdMs: 250 }, ...pol }, model: { ...MODEL, syncPeriodMs: 5000 } });
for (let k = 0; k < s.timeline.length; k++) {
  const a = s.timeline[k]!, b = h.timeline[k]!;
  if (a.sloViolationSeconds || b.sloViolationSeconds) console.log(a.t, 'load', a.load.toFixed(0), 'S', a.sloViolationSeconds, a.ready.toFixed(1), a.replicas, 'H', b.sloViolationSeconds, b.ready.toFixed(1), b.replicas, 'prev load', s.timeline[k-1]?.load.toFixed(0));
}
