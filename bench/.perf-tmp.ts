import { decide, resolvePolicy, computeHpaReplicas } from '@shoal/policy';
const policy = resolvePolicy({ maxReplicas: 2000, targets: [{ metric: 'eventLoopUtilization', value: 0.7 }, { metric: 'rps', value: 56 }], slo: { thresholdMs: 250 } });
const now = Date.UTC(2026, 0, 5, 12);
const instances = Array.from({ length: 1000 }, (_, k) => ({ id: `instance-${k}`, ready: true, startedAt: now - 3600000 + k, readySince: now - 3500000, sampledAt: now - 500, requests: { cpu: 1 }, metrics: { eventLoopUtilization: 0.5 + ((k * 7) % 40) / 100, cpu: 0.6, inFlight: 3, rps: 40 + (k % 30), latencyP95Ms: 120, latencyP99Ms: 200 } }));
let state = decide(policy, { now, currentReplicas: 1000, instances }, undefined).state;
for (const label of ['warm', 'run']) {
  const t0 = performance.now();
  for (let k = 0; k < 2000; k++) state = decide(policy, { now: now + (k + 1) * 5000 + (label === 'run' ? 1e7 : 0), currentReplicas: 1000, instances }, state).state;
  console.log(label, ((performance.now() - t0) / 2000 * 1000).toFixed(0), 'µs/decide');
}
const t1 = performance.now();
for (let k = 0; k < 2000; k++) computeHpaReplicas({ currentReplicas: 1000, now, metric: { type: 'pods', target: { averageValue: 0.7 } }, instances: instances.map(i => ({ id: i.id, value: i.metrics.eventLoopUtilization })) });
console.log('hpa calc (incl. map)', ((performance.now() - t1) / 2000 * 1000).toFixed(0), 'µs');
