import { simulate, syntheticTrace, parseTraceCsv } from '@shoal/policy';
import { readFileSync } from 'node:fs';
const cap = 80;
const step = syntheticTrace('step', 1800, 1, (t) => (t < 600 ? 5 * cap * 0.6 : t < 610 ? 5*cap*0.6*(1 + 9*(t-600)/10) : 50 * cap * 0.6));
const targets = [{ metric: 'cpu', type: 'utilization', value: 70 }];
for (const [name, trace] of [['step', step], ['wc98', parseTraceCsv(readFileSync('/work/shared/traces/wc98_per_minute_1998-07-06_to_1998-07-09.csv','utf8'), { name: 'wc98', peakRps: 40*cap*0.7 })]]) {
  for (const [label, policy, sync] of [['hpa', { preset: 'hpa', maxReplicas: 200, targets }, 15000], ['shoal', { maxReplicas: 200, targets: [{metric:'eventLoopUtilization', value: 0.7}, {metric:'inFlight', value: 0.7*4}], slo: { thresholdMs: 250 } }, 5000]]) {
    const t0 = performance.now();
    const r = simulate({ trace, policy, model: { syncPeriodMs: sync } });
    console.log(name, label, (performance.now()-t0).toFixed(0)+'ms', JSON.stringify(r.summary));
  }
}
