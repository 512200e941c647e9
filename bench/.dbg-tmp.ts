import { simulate, syntheticTrace } from '@shoal/policy';
const base = 4 * 80 * 0.7;
const trace = syntheticTrace('step', 3600, 1, (t) => (t < 900 ? base : t < 910 ? base * (1 + (9 * (t - 900)) / 10) : base * 10));
const pol = JSON.parse(process.argv[2] ?? '{}');
const r = simulate({ trace, policy: { maxReplicas: 200, targets: [{ metric: 'eventLoopUtilization', value: 0.7 }, { metric: 'rps', value: 56 }], slo: { thresholdMs: 250 }, ...pol }, model: { concurrency: 4, serviceTimeMs: 50, coldStartMs: 30000, sloP95Ms: 250, seed: 42, syncPeriodMs: 5000 },
  onDecision: (t, d) => { if (t >= 895 && t <= 990 && d.desiredReplicas !== undefined) console.log(t, d.desiredReplicas, d.reasons.join(' | ')); } });
console.log(r.events, r.summary.replicaSeconds);
