/**
 * TypeScript shapes of the shoal.v1 messages, as `@grpc/proto-loader` presents them with `PROTO_LOADER_OPTIONS`
 * (camelCase fields, 64-bit integers as JavaScript numbers). The validators return these types; keep them in step
 * with proto/shoal/v1/coordinator.proto (test/messages.test.ts checks the field lists against the loaded proto).
 */
export interface Capacity {
  /** Most requests the instance should have in flight at once. */
  maxConcurrency?: number;
  /** Most requests per second it is expected to serve. */
  maxRps?: number;
}

export interface Hello {
  protocolVersion: number;
  service: string;
  instanceId: string;
  address: string;
  port: number;
  zone?: string;
  version?: string;
  /** Process start, ms since the epoch. */
  startedAtMs: number;
  capacity?: Capacity;
  /** Port Prometheus scrapes, when not `port`. */
  metricsPort?: number;
  /** Metrics path, default '/metrics'. */
  metricsPath?: string;
}

export interface LoadReport {
  seq: number;
  intervalMs: number;
  ready: boolean;
  inFlight: number;
  /** Time-weighted mean of in-flight requests over the interval; absent from agents older than this field. */
  inFlightAvg?: number;
  requests: number;
  errors: number;
  /** Empty, or one count per `LATENCY_BUCKETS_MS` bound plus an overflow count. */
  latencyBuckets: number[];
  latencyP50Ms?: number;
  latencyP99Ms?: number;
  eventLoopUtilization: number;
  eventLoopDelayP99Ms: number;
  /** Cores used over the interval. */
  cpu: number;
  rssBytes: number;
  heapUsedBytes: number;
  custom: Record<string, number>;
  /**
   * Service-wide application metrics (every replica reads the same value, e.g. a broker's queue depth): the
   * coordinator takes each once per service, the freshest report's value, never a sum. Absent or empty: none.
   */
  serviceMetrics?: Record<string, number>;
  sentAtMs: number;
  droppedReports: number;
}

export interface Drain {
  deadlineMs: number;
  reason?: string;
}

export interface Directive {
  reportIntervalMs?: number;
  desiredReplicas?: number;
  drain?: Drain;
  configGeneration?: number;
}

export interface ReportRequest {
  hello: Hello;
  report: LoadReport;
}

export interface ReportResponse {
  directive?: Directive;
}

/** A message an agent sends on the Connect stream (exactly one of the two). */
export type AgentMessage = { hello: Hello; report?: undefined } | { report: LoadReport; hello?: undefined };

/** A message the coordinator sends on the Connect stream. */
export interface CoordinatorMessage {
  directive: Directive;
}

/**
 * What actually arrives off the wire before validation: proto-loader fills defaults, sets `msg` to the name of the
 * oneof member present and may add synthetic `_field` keys for proto3 `optional` fields. Validate before use.
 */
export interface WireAgentMessage {
  msg?: 'hello' | 'report';
  hello?: unknown;
  report?: unknown;
}

export interface WireCoordinatorMessage {
  msg?: 'directive';
  directive?: unknown;
}

/** A LoadReport with every field at its zero value (counts 0, not ready, empty histogram). */
export function emptyLoadReport(): LoadReport {
  return {
    seq: 0,
    intervalMs: 0,
    ready: false,
    inFlight: 0,
    requests: 0,
    errors: 0,
    latencyBuckets: [],
    eventLoopUtilization: 0,
    eventLoopDelayP99Ms: 0,
    cpu: 0,
    rssBytes: 0,
    heapUsedBytes: 0,
    custom: {},
    sentAtMs: 0,
    droppedReports: 0,
  };
}
