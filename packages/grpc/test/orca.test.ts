import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeOrcaLoadReport, encodeOrcaLoadReport } from '@shoal/grpc';

describe('ORCA load report codec', () => {
  it('round-trips every field', () => {
    const report = {
      cpuUtilization: 0.5,
      memUtilization: 0.25,
      rps: 120,
      requestCost: { db: 3.5 },
      utilization: { queue: 0.75 },
      rpsFractional: 120.5,
      eps: 1.25,
      namedMetrics: { in_flight: 7, other: 2 },
      applicationUtilization: 0.875,
    };
    assert.deepEqual(decodeOrcaLoadReport(encodeOrcaLoadReport(report)), report);
  });

  it('decodes bytes encoded by the protobuf wire format of OrcaLoadReport (field numbers)', () => {
    // cpu_utilization (1, double) = 0.5; application_utilization (9, double) = 0.25; named_metrics (8) {"k": 1}
    const bytes = Buffer.concat([
      Buffer.from([0x09]),
      Buffer.from(new Float64Array([0.5]).buffer),
      Buffer.from([0x49]),
      Buffer.from(new Float64Array([0.25]).buffer),
      Buffer.from([0x42, 0x0c, 0x0a, 0x01, 0x6b, 0x11]),
      Buffer.from(new Float64Array([1]).buffer),
      // an unknown varint field 15 = 3, skipped
      Buffer.from([0x78, 0x03]),
    ]);
    assert.deepEqual(decodeOrcaLoadReport(bytes), {
      cpuUtilization: 0.5,
      applicationUtilization: 0.25,
      namedMetrics: { k: 1 },
    });
  });

  it('rejects truncated input with a ProtocolError', () => {
    const bytes = encodeOrcaLoadReport({ cpuUtilization: 0.5 });
    assert.throws(() => decodeOrcaLoadReport(bytes.subarray(0, 5)), { code: 'SHOAL_ERR_PROTOCOL' });
  });

  it('round-trips arbitrary reports (property)', () => {
    const num = fc.double({ min: 0.001, max: 1e6, noNaN: true });
    fc.assert(
      fc.property(
        fc.record(
          {
            cpuUtilization: num,
            eps: num,
            rpsFractional: num,
            namedMetrics: fc.dictionary(fc.string({ minLength: 1 }), num),
          },
          { requiredKeys: [] },
        ),
        (report) => {
          const decoded = decodeOrcaLoadReport(encodeOrcaLoadReport(report));
          const expected = { ...report } as Record<string, unknown>;
          if (report.namedMetrics) expected.namedMetrics = Object.fromEntries(Object.entries(report.namedMetrics));
          if (report.namedMetrics && Object.keys(report.namedMetrics).length === 0) delete expected.namedMetrics;
          assert.deepEqual(decoded, expected);
        },
      ),
    );
  });
});
