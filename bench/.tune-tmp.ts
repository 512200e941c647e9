import { readFileSync } from 'node:fs';
import { parseTraceCsv, simulate, syntheticTrace } from '@shoal/policy';
const CAP = 80;
const dir = '/work/shared/traces/';
const traces = [
  parseTraceCsv(readFileSync(dir + 'wc98_per_minute_1998-07-06_to_1998-07-09.csv', 'utf8'), { name: 'wc98', peakRps: 40 * CAP * 0.7 }),
  parseTraceCsv(readFileSync(dir + 'nasa_jul95_per_minute.csv', 'utf8'), { name: 'nasa2d', peakRps: 30 * CAP * 0.7, durationS: 3 * 86400 }),
  parseTraceCsv(readFileSync(dir + 'AzureLLMInferenceTrace_conv_per_second.csv', 'utf8'), { name: 'azure', peakRps: 20 * CAP * 0.7 }),
];
const base = 4 * CAP * 0.7;
traces.push(syntheticTrace('step', 3600, 1, (t) => (t < 900 ? base : t < 910 ? base * (1 + (9 * (t - 900)) / 10) : base * 10)));
traces.push(syntheticTrace('ramp', 7200, 1, (t) => t < 600 ? base / 2 : t < 3000 ? base / 2 + ((t - 600) / 2400) * base * 9.5 : t < 4200 ? base * 10 : Math.max(base / 2, base * 10 - ((t - 4200) / 2400) * base * 9.5)));
let s = 7; const noise: number[] = [];
for (let k = 0; k < 1000; k++) { s = (s * 1103515245 + 12345) % 2147483648; noise.push(s / 2147483648 - 0.5); }
traces.push(syntheticTrace('noisy', 7200, 10, (t) => 10 * CAP * 0.6 * (1 + 0.5 * (noise[Math.floor(t / 10) % 1000] as number))));
const MODEL = { concurrency: 4, serviceTimeMs: 50, coldStartMs: 30000, timeoutMs: 2000, sloP95Ms: 250, seed: 42 };
const hpa = traces.map((trace) => simulate({ trace, policy: { preset: 'hpa', maxReplicas: 200, targets: [{ metric: 'cpu', type: 'utilization', value: 70 }] }, model: { ...MODEL, syncPeriodMs: 15000 } }).summary);
const variants = JSON.parse(process.argv[2] ?? '[{}]');
for (const v of variants) {
  const { sync = 5000, ...pol } = v;
  const line: string[] = [];
  let ok = 0;
  traces.forEach((trace, k) => {
    const r = simulate({ trace, policy: { maxReplicas: 200, targets: [{ metric: 'eventLoopUtilization', value: 0.7 }, { metric: 'rps', value: 56 }], slo: { thresholdMs: 250 }, ...pol }, model: { ...MODEL, syncPeriodMs: sync } }).summary;
    const h = hpa[k]!;
    const rs = r.replicaSeconds / h.replicaSeconds;
    const good = ((r.sloViolationSeconds <= h.sloViolationSeconds / 2 && rs <= 1.1) || (rs <= 0.8 && r.sloViolationSeconds <= h.sloViolationSeconds)) && r.scaleEvents <= h.scaleEvents;
    if (good) ok++;
    line.push(`${trace.name}: rs ${rs.toFixed(2)} slo ${r.sloViolationSeconds}/${h.sloViolationSeconds} ev ${r.scaleEvents}/${h.scaleEvents}${good ? ' OK' : ''}`);
  });
  console.log(ok, JSON.stringify(v), '\n   ' + line.join('\n   '));
}
