import { simulate, parseTraceCsv, decide } from '@shoal/policy';
import { readFileSync } from 'node:fs';
const trace = parseTraceCsv(readFileSync('/work/shared/traces/AzureLLMInferenceTrace_conv_per_second.csv','utf8'), { peakRps: 1500 });
const r = simulate({ trace, policy: { maxReplicas: 60, targets: [{ metric: 'rps', value: 56 }], slo: { thresholdMs: 250 } }, model: { syncPeriodMs: 5000 } });
console.log(r.events.slice(0, 12));
console.log(trace.rates.slice(0, 30).map(Math.round).join(' '));
