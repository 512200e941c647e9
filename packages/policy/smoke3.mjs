import { simulate, parseTraceCsv } from '@shoal/policy';
import { readFileSync } from 'node:fs';
const trace = parseTraceCsv(readFileSync('/work/shared/traces/nasa_jul95_per_minute.csv','utf8'), { peakRps: 30*80*0.7, durationS: 7*86400 });
const policy = { maxReplicas: 200, targets: [{ metric: 'eventLoopUtilization', value: 0.7 }, { metric: 'rps', value: 56 }], slo: { thresholdMs: 250 } };
simulate({ trace, policy, model: { syncPeriodMs: 5000, seed: 42, coldStartMs: 30000 }, onDecision: (t, d, o) => {
  if (t >= 960 && t <= 1000) { console.log(t, o.currentReplicas, o.instances.filter(i=>i.ready).length, JSON.stringify(o.instances[0].metrics)); console.log('   ', d.reasons.join(' | ')); }
}});
