import assert from 'node:assert/strict';
import { parseConfigYaml } from '@shoal/coordinator';
import { BUILTIN_METRICS } from '@shoal/coordinator';
import { ServiceWindow } from '@shoal/coordinator/internal';
import { LATENCY_BUCKET_COUNT } from '@shoal/protocol';
import { hello, report } from './support/agent-client.js';

function config(policy: string, extra = ''): string {
  return `services:
  - name: orders
    token: orders-token-0123456789abcdef
${extra}    policy: ${policy}
    actuator: { type: command, command: "true" }
`;
}

describe('metric names a policy targets', () => {
  it('refuses a typo, naming the path, the closest name and every metric the coordinator knows', () => {
    assert.throws(
      () => parseConfigYaml(config('{ targets: [{ metric: inflight, value: 10 }] }'), 'shoal.yaml'),
      (err: Error) => {
        assert.match(err.message, /services\[0\]\.policy\.targets\[0\]\.metric/);
        assert.match(err.message, /unknown metric "inflight" \(did you mean "inFlight"\?\)/);
        assert.match(err.message, /eventLoopUtilization, cpu, inFlight, rps/);
        assert.match(err.message, /customMetrics/);
        return true;
      },
    );
    assert.throws(
      () => parseConfigYaml(config('{ slo: { metric: latencyP96Ms, maxMs: 100 } }'), 'shoal.yaml'),
      /policy\.slo\.metric.*did you mean "latencyP95Ms"/s,
    );
  });

  it('accepts built-in metrics and custom metrics the service declares, and nothing undeclared', () => {
    parseConfigYaml(config('{ targets: [{ metric: inFlight, value: 10 }, { metric: cpu, value: 1 }] }'), 'a.yaml');
    const declared = config(
      '{ targets: [{ metric: queue_depth, type: total, value: 100 }] }',
      '    customMetrics: [queue_depth]\n',
    );
    assert.deepEqual(parseConfigYaml(declared, 'b.yaml').services[0]!.customMetrics, ['queue_depth']);
    assert.throws(
      () => parseConfigYaml(config('{ targets: [{ metric: queue_depth, type: total, value: 100 }] }'), 'c.yaml'),
      /unknown metric "queue_depth": /,
    );
  });

  it('lists exactly what the window computes from a full report', () => {
    // Ties BUILTIN_METRICS to ServiceWindow: a metric the window adds must be added to the list (and the docs).
    const w = new ServiceWindow('orders', { reportIntervalMs: 1000, windowMs: 5000, maxSamples: 10, maxInstances: 2 });
    w.hello(hello('orders', 'a'), 0);
    w.connected('a', 1);
    const buckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(1);
    w.report('a', report({ latencyP50Ms: 5, latencyP99Ms: 9, latencyBuckets: buckets, custom: { queue: 1 } }), 1000);
    const keys = Object.keys(w.observe(1500, 1).instances[0]!.metrics).filter((k) => k !== 'queue');
    assert.deepEqual(keys.sort(), [...BUILTIN_METRICS].sort());
  });
});
