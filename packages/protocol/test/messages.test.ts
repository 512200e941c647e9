import assert from 'node:assert/strict';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, PROTO_PATH, emptyLoadReport } from '@shoal/protocol';
import type { Capacity, Directive, Drain, Hello } from '@shoal/protocol';

// The TypeScript interfaces are hand-written; this keeps them honest against the proto actually shipped.
const definition = loadSync(PROTO_PATH, { ...PROTO_LOADER_OPTIONS });

function protoFields(message: string): string[] {
  const type = (definition[`shoal.v1.${message}`] as { type: { field: Array<{ name: string }> } }).type;
  return type.field.map((f) => f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())).sort();
}

describe('hand-written message types', () => {
  it('LoadReport has exactly the proto fields (optional ones: inFlightAvg, latencyP50Ms, latencyP99Ms, serviceMetrics)', () => {
    const optional = ['inFlightAvg', 'latencyP50Ms', 'latencyP99Ms', 'serviceMetrics'];
    const keys = [...Object.keys(emptyLoadReport()), ...optional].sort();
    assert.deepEqual(keys, protoFields('LoadReport'));
  });

  it('Hello, Directive, Drain and Capacity match the proto field lists', () => {
    const hello: Record<keyof Hello, true> = {
      protocolVersion: true,
      service: true,
      instanceId: true,
      address: true,
      port: true,
      zone: true,
      version: true,
      startedAtMs: true,
      capacity: true,
      metricsPort: true,
      metricsPath: true,
    };
    assert.deepEqual(Object.keys(hello).sort(), protoFields('Hello'));
    const directive: Record<keyof Directive, true> = {
      reportIntervalMs: true,
      desiredReplicas: true,
      drain: true,
      configGeneration: true,
    };
    assert.deepEqual(Object.keys(directive).sort(), protoFields('Directive'));
    const drain: Record<keyof Drain, true> = { deadlineMs: true, reason: true };
    assert.deepEqual(Object.keys(drain).sort(), protoFields('Drain'));
    const capacity: Record<keyof Capacity, true> = { maxConcurrency: true, maxRps: true };
    assert.deepEqual(Object.keys(capacity).sort(), protoFields('Capacity'));
  });
});
