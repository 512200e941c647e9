import assert from 'node:assert/strict';
import {
  INSTANCE_ID,
  LATENCY_BUCKET_COUNT,
  LIMITS,
  METRIC_NAME,
  SERVICE_NAME,
  isInstanceId,
  isMetricName,
  isServiceName,
  ProtocolValidationError,
  validateDirective,
  validateHello,
  validateReport,
  validateReportRequest,
  type LoadReport,
} from '@shoal/protocol';
import { hasErrorCode } from '@shoal/core';

function hello(extra: Record<string, unknown> = {}) {
  return { service: 'orders', instanceId: 'orders-1', address: '127.0.0.1', port: 8080, startedAtMs: 1, ...extra };
}

function report(extra: Record<string, unknown> = {}) {
  return {
    seq: 1,
    intervalMs: 1000,
    ready: true,
    inFlight: 3,
    requests: 10,
    errors: 1,
    latencyBuckets: new Array<number>(LATENCY_BUCKET_COUNT).fill(0),
    eventLoopUtilization: 0.25,
    eventLoopDelayP99Ms: 12.5,
    cpu: 0.8,
    rssBytes: 50e6,
    heapUsedBytes: 20e6,
    custom: { queue_depth: 4 },
    ...extra,
  };
}

function rejects(fn: () => unknown, field: string, valueText: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolValidationError, `expected ProtocolValidationError, got ${String(error)}`);
    assert.ok(hasErrorCode(error, 'SHOAL_ERR_PROTOCOL'));
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`${field} must be`), error.message);
    assert.ok(error.message.endsWith(`got ${valueText}`), error.message);
    return true;
  });
}

describe('validateHello', () => {
  it('returns a clean typed copy, dropping proto3 defaults that mean "not set"', () => {
    const out = validateHello({ ...hello(), zone: '', version: 'v2', capacity: null, _zone: 'zone', extra: 1 });
    assert.deepEqual(out, {
      protocolVersion: 1,
      service: 'orders',
      instanceId: 'orders-1',
      address: '127.0.0.1',
      port: 8080,
      startedAtMs: 1,
      version: 'v2',
    });
  });

  it('keeps capacity hints and accepts int64 as a decimal string', () => {
    const out = validateHello(hello({ startedAtMs: '1700000000000', capacity: { maxConcurrency: 100, maxRps: 0 } }));
    assert.equal(out.startedAtMs, 1_700_000_000_000);
    assert.deepEqual(out.capacity, { maxConcurrency: 100 });
  });

  it('names the field and the value of every violation', () => {
    rejects(() => validateHello(hello({ service: '' })), 'hello.service', '""');
    rejects(() => validateHello(hello({ service: 'a b' })), 'hello.service', '"a b"');
    rejects(
      () => validateHello(hello({ service: 'x'.repeat(LIMITS.maxServiceNameLength + 1) })),
      'hello.service',
      '"' + 'x'.repeat(LIMITS.maxServiceNameLength + 1) + '"',
    );
    rejects(() => validateHello(hello({ instanceId: 'has space' })), 'hello.instanceId', '"has space"');
    rejects(() => validateHello(hello({ address: 'evil.example/x' })), 'hello.address', '"evil.example/x"');
    rejects(() => validateHello(hello({ port: 0 })), 'hello.port', '0');
    rejects(() => validateHello(hello({ port: 70000 })), 'hello.port', '70000');
    rejects(() => validateHello(hello({ metricsPort: 0 })), 'hello.metricsPort', '0');
    rejects(() => validateHello(hello({ metricsPath: 'metrics' })), 'hello.metricsPath', '"metrics"');
    rejects(() => validateHello(hello({ metricsPath: '/m?x=1' })), 'hello.metricsPath', '"/m?x=1"');
    assert.deepEqual(
      [validateHello(hello({ metricsPort: 9464, metricsPath: '/m' }))].map((h) => [h.metricsPort, h.metricsPath]),
      [[9464, '/m']],
    );
    rejects(() => validateHello(hello({ protocolVersion: 2 })), 'hello.protocolVersion', '2');
    rejects(() => validateHello(hello({ zone: 'z'.repeat(65) })), 'hello.zone', '"' + 'z'.repeat(65) + '"');
    rejects(() => validateHello(hello({ capacity: { maxRps: -1 } })), 'hello.capacity.maxRps', '-1');
    rejects(() => validateHello('nope'), 'hello', '"nope"');
  });
});

describe('the name grammar', () => {
  it('refuses a service name the coordinator config would refuse (one grammar: lowercase, 1-63)', () => {
    // An agent for `Orders` used to validate here and then be refused by every coordinator config.
    for (const bad of ['Orders', 'x'.repeat(64), '-orders', '.orders', 'or ders', 'orders/x', '']) {
      assert.equal(isServiceName(bad), false, bad);
      assert.throws(() => validateHello(hello({ service: bad })), ProtocolValidationError, bad);
    }
    for (const good of ['orders', 'o', 'orders-v2.eu_west', 'x'.repeat(63)]) assert.equal(isServiceName(good), true);
  });

  it('refuses instance ids that could become an option, a path segment or a list separator', () => {
    for (const bad of [
      '--kubeconfig=/tmp/evil',
      '-x',
      '.',
      '..',
      '../x',
      'a/b',
      'a,b',
      'a b',
      'a\u0000',
      'x'.repeat(129),
    ]) {
      assert.equal(isInstanceId(bad), false, bad);
      assert.throws(() => validateHello(hello({ instanceId: bad })), /hello\.instanceId must be 1-128 characters/, bad);
    }
    for (const good of ['orders-1', 'orders-127.0.0.1-8080', 'orders-::1-8080', 'db-0', 'Pod_A.b:c']) {
      assert.equal(isInstanceId(good), true, good);
    }
  });

  it('metric names: Prometheus-style, 1-64', () => {
    assert.equal(isMetricName('queue_depth'), true);
    assert.equal(isMetricName('inFlight'), true);
    for (const bad of ['1x', 'a-b', 'a.b', 'x'.repeat(65), '']) assert.equal(isMetricName(bad), false, bad);
    assert.equal(SERVICE_NAME.maxLength, LIMITS.maxServiceNameLength);
    assert.equal(INSTANCE_ID.maxLength, LIMITS.maxInstanceIdLength);
    assert.equal(METRIC_NAME.maxLength, LIMITS.maxCustomMetricNameLength);
  });
});

describe('validateReport', () => {
  it('accepts a full report and returns the same values', () => {
    const input = report({ latencyP99Ms: 40 });
    const out: LoadReport = validateReport(input);
    assert.equal(out.inFlight, 3);
    assert.equal(out.latencyP99Ms, 40);
    assert.equal(out.latencyP50Ms, undefined);
    assert.deepEqual(out.custom, { queue_depth: 4 });
    assert.equal(out.droppedReports, 0);
  });

  it('rejects NaN, infinity, negatives and out-of-range fractions', () => {
    rejects(() => validateReport(report({ cpu: Number.NaN })), 'report.cpu', 'NaN');
    rejects(() => validateReport(report({ cpu: Infinity })), 'report.cpu', 'Infinity');
    rejects(() => validateReport(report({ inFlight: -1 })), 'report.inFlight', '-1');
    rejects(() => validateReport(report({ inFlightAvg: -0.5 })), 'report.inFlightAvg', '-0.5');
    rejects(() => validateReport(report({ inFlightAvg: Number.NaN })), 'report.inFlightAvg', 'NaN');
    assert.equal(validateReport(report({ inFlightAvg: 2.25 })).inFlightAvg, 2.25);
    assert.equal(validateReport(report({})).inFlightAvg, undefined);
    rejects(() => validateReport(report({ requests: 1.5 })), 'report.requests', '1.5');
    rejects(() => validateReport(report({ eventLoopUtilization: 1.2 })), 'report.eventLoopUtilization', '1.2');
    rejects(() => validateReport(report({ eventLoopDelayP99Ms: -3 })), 'report.eventLoopDelayP99Ms', '-3');
    rejects(() => validateReport(report({ ready: 'yes' })), 'report.ready', '"yes"');
  });

  it('checks intervals, errors against requests and the histogram shape', () => {
    rejects(() => validateReport(report({ intervalMs: 0 })), 'report.intervalMs', '0');
    rejects(() => validateReport(report({ intervalMs: LIMITS.maxIntervalMs + 1 })), 'report.intervalMs', '3600001');
    rejects(() => validateReport(report({ errors: 11 })), 'report.errors', '11');
    rejects(() => validateReport(report({ latencyBuckets: [1, 2] })), 'report.latencyBuckets', 'an array of length 2');
    const buckets = new Array<number>(LATENCY_BUCKET_COUNT).fill(0);
    buckets[3] = -1;
    rejects(() => validateReport(report({ latencyBuckets: buckets })), 'report.latencyBuckets[3]', '-1');
    assert.deepEqual(validateReport(report({ latencyBuckets: [] })).latencyBuckets, []);
  });

  it('limits custom metrics by count, name and value', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i <= LIMITS.maxCustomMetrics; i++) many[`m${i}`] = i;
    rejects(() => validateReport(report({ custom: many })), 'report.custom', '"33 metrics"');
    rejects(() => validateReport(report({ custom: { 'bad-name': 1 } })), 'report.custom', '"bad-name"');
    rejects(() => validateReport(report({ custom: { ok: Number.NaN } })), 'report.custom.ok', 'NaN');
    rejects(() => validateReport(report({ custom: { ok: -2 } })), 'report.custom.ok', '-2');
  });

  it('keeps service-wide metrics apart from custom ones, under the same rules', () => {
    const out = validateReport(report({ serviceMetrics: { backlog: 30 } }));
    assert.deepEqual(out.serviceMetrics, { backlog: 30 });
    assert.deepEqual(out.custom, { queue_depth: 4 });
    assert.equal(validateReport(report({ serviceMetrics: {} })).serviceMetrics, undefined, 'empty map: absent');
    assert.equal(validateReport(report({ serviceMetrics: null })).serviceMetrics, undefined);
    const many: Record<string, number> = {};
    for (let i = 0; i <= LIMITS.maxCustomMetrics; i++) many[`m${i}`] = i;
    rejects(() => validateReport(report({ serviceMetrics: many })), 'report.serviceMetrics', '"33 metrics"');
    rejects(() => validateReport(report({ serviceMetrics: { 'a-b': 1 } })), 'report.serviceMetrics', '"a-b"');
    rejects(() => validateReport(report({ serviceMetrics: { b: Infinity } })), 'report.serviceMetrics.b', 'Infinity');
    rejects(() => validateReport(report({ serviceMetrics: { b: -1 } })), 'report.serviceMetrics.b', '-1');
    rejects(() => validateReport(report({ serviceMetrics: [1] })), 'report.serviceMetrics', 'an array of length 1');
    rejects(
      () => validateReport(report({ serviceMetrics: { queue_depth: 4 } })),
      'report.serviceMetrics',
      '"queue_depth"',
    );
  });
});

describe('validateDirective', () => {
  it('keeps only the fields present (null sub-messages are absent)', () => {
    assert.deepEqual(validateDirective({ drain: null, desiredReplicas: 3, _desiredReplicas: 'desiredReplicas' }), {
      desiredReplicas: 3,
    });
    assert.deepEqual(validateDirective({ drain: { deadlineMs: 5000, reason: '' } }), { drain: { deadlineMs: 5000 } });
  });

  it('rejects report intervals outside the protocol limits and absurd deadlines', () => {
    rejects(() => validateDirective({ reportIntervalMs: 5 }), 'directive.reportIntervalMs', '5');
    rejects(() => validateDirective({ drain: { deadlineMs: -1 } }), 'directive.drain.deadlineMs', '-1');
    rejects(() => validateDirective({ desiredReplicas: 1e6 }), 'directive.desiredReplicas', '1000000');
    rejects(() => validateDirective([]), 'directive', 'an array of length 0');
  });
});

describe('validateReportRequest', () => {
  it('prefixes field paths with request.', () => {
    rejects(() => validateReportRequest({ hello: hello(), report: report({ cpu: -1 }) }), 'request.report.cpu', '-1');
    rejects(
      () => validateReportRequest({ hello: hello({ port: 'x' }), report: report() }),
      'request.hello.port',
      '"x"',
    );
  });
});
