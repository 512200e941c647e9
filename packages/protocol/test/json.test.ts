import assert from 'node:assert/strict';
import {
  LATENCY_BUCKET_COUNT,
  ProtocolValidationError,
  emptyLoadReport,
  reportFromJson,
  reportToJson,
  responseFromJson,
  responseToJson,
  type ReportRequest,
} from '@shoal/protocol';

const request: ReportRequest = {
  hello: {
    protocolVersion: 1,
    service: 'orders',
    instanceId: 'orders-1',
    address: '10.0.0.7',
    port: 8080,
    zone: 'eu-1a',
    startedAtMs: 1_700_000_000_000,
    capacity: { maxConcurrency: 64 },
  },
  report: {
    ...emptyLoadReport(),
    seq: 7,
    intervalMs: 1000,
    ready: true,
    requests: 5,
    latencyBuckets: Array.from({ length: LATENCY_BUCKET_COUNT }, (_v, i) => (i === 2 ? 5 : 0)),
    latencyP99Ms: 4.9,
    custom: { queue_depth: 2 },
  },
};

describe('JSON mapping for POST /v1/report', () => {
  it('round-trips a request through JSON text', () => {
    const text = JSON.stringify(reportToJson(request));
    assert.deepEqual(reportFromJson(text), request);
    assert.deepEqual(reportFromJson(Buffer.from(text)), request);
  });

  it('accepts proto field names and int64 values as strings, as proto3 JSON allows', () => {
    const body = {
      hello: { service: 'orders', instance_id: 'orders-1', address: '10.0.0.7', port: 8080, started_at_ms: '5' },
      report: { seq: '9', interval_ms: 500, requests: '3', custom: { queue_depth: 1 }, service_metrics: { lag: 7 } },
    };
    const parsed = reportFromJson(body);
    assert.equal(parsed.hello.instanceId, 'orders-1');
    assert.equal(parsed.hello.startedAtMs, 5);
    assert.equal(parsed.report.seq, 9);
    assert.equal(parsed.report.requests, 3);
    assert.deepEqual(parsed.report.custom, { queue_depth: 1 });
    assert.deepEqual(parsed.report.serviceMetrics, { lag: 7 });
  });

  it('names the field when the body is invalid', () => {
    assert.throws(() => reportFromJson('{not json'), ProtocolValidationError);
    assert.throws(
      () => reportFromJson({ hello: request.hello, report: { ...request.report, cpu: 'lots' } }),
      /request\.report\.cpu must be a finite number between 0 and 4096, got "lots"/,
    );
  });

  it('maps responses with and without a directive', () => {
    assert.deepEqual(responseFromJson(JSON.stringify(responseToJson({}))), {});
    const response = { directive: { reportIntervalMs: 2000, drain: { deadlineMs: 100 } } };
    assert.deepEqual(responseFromJson(responseToJson(response)), response);
    assert.deepEqual(responseFromJson({ directive: { report_interval_ms: 500 } }), {
      directive: { reportIntervalMs: 500 },
    });
  });
});
