import { INSTANCE_ID, METRIC_NAME, SERVICE_NAME } from './names.js';

/**
 * Limits every message must respect. The coordinator rejects a message outside them (validateHello /
 * validateReport), so agents in any language should check them before sending. Documented in docs/protocol.md.
 */
export const LIMITS = Object.freeze({
  /** Service names (`SERVICE_NAME` in names.ts). */
  maxServiceNameLength: SERVICE_NAME.maxLength,
  /** Instance ids (`INSTANCE_ID` in names.ts). */
  maxInstanceIdLength: INSTANCE_ID.maxLength,
  /** Address: 1..253 characters (a DNS name or an IP literal). */
  maxAddressLength: 253,
  maxZoneLength: 64,
  maxVersionLength: 64,
  maxMetricsPathLength: 256,
  /** Custom metrics per report, and the length of each name (`METRIC_NAME` in names.ts). */
  maxCustomMetrics: 32,
  maxCustomMetricNameLength: METRIC_NAME.maxLength,
  /** Bounds of `LoadReport.intervalMs` (the interval a report covers). */
  minIntervalMs: 1,
  maxIntervalMs: 3_600_000,
  /** Bounds of a report interval the coordinator may ask for (`Directive.reportIntervalMs`). */
  minReportIntervalMs: 100,
  maxReportIntervalMs: 60_000,
  /** Most requests one instance may report in flight. */
  maxInFlight: 10_000_000,
  /** Most cores a process may report using. */
  maxCpuCores: 4096,
  /** `Directive.desiredReplicas` upper bound. */
  maxDesiredReplicas: 10_000,
  /** `Drain.deadlineMs` upper bound (one hour). */
  maxDrainDeadlineMs: 3_600_000,
  maxDrainReasonLength: 256,
  /** Largest message either side should send or accept, bytes (set as the gRPC max message size). */
  maxMessageBytes: 64 * 1024,
  /** Capacity hints. */
  maxConcurrencyHint: 10_000_000,
  maxRpsHint: 1e9,
});

export type Limits = typeof LIMITS;

export const SERVICE_NAME_PATTERN = SERVICE_NAME.pattern;
export const INSTANCE_ID_PATTERN = INSTANCE_ID.pattern;
export const CUSTOM_METRIC_NAME_PATTERN = METRIC_NAME.pattern;
