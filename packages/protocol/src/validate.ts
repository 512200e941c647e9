import { LATENCY_BUCKET_COUNT } from './latency-buckets.js';
import { LIMITS } from './limits.js';
import { INSTANCE_ID, METRIC_NAME, SERVICE_NAME, isName, type NameRule } from './names.js';
import type { Capacity, Directive, Drain, Hello, LoadReport, ReportRequest } from './messages.js';
import { PROTOCOL_VERSION } from './proto-path.js';
import { ProtocolValidationError } from './validation-error.js';

// Validators for messages received from a peer. They accept what @grpc/proto-loader produces (defaults filled in,
// `null` for absent sub-messages, synthetic `_field` keys) and the proto3 JSON form (64-bit integers may be decimal
// strings), ignore unknown keys (forward compatibility: newer peers may add fields) and return a fresh, typed
// object. Every violation throws ProtocolValidationError naming the field and the value.

type Obj = Record<string, unknown>;

function fail(field: string, expectation: string, value: unknown): never {
  throw new ProtocolValidationError(field, expectation, value);
}

function isAbsent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

function object(field: string, value: unknown): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'an object', value);
  return value as Obj;
}

function string(field: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0) fail(field, 'a non-empty string', value);
  if (value.length > maxLength) fail(field, `a string of at most ${maxLength} characters`, value);
  return value;
}

/** A DNS name or an IP literal (IPv6 without brackets, optionally with a zone): nothing that could end a URL host. */
const ADDRESS_PATTERN = /^[A-Za-z0-9._:%-]+$/;

/** A name under one of the grammar's rules (names.ts). */
function name(field: string, value: unknown, rule: NameRule): string {
  if (!isName(rule, value)) fail(field, rule.description, value);
  return value;
}

/** An optional string: absent or '' (the proto3 default) both mean "not set". */
function optionalString(field: string, value: unknown, maxLength: number): string | undefined {
  if (isAbsent(value) || value === '') return undefined;
  return string(field, value, maxLength);
}

/** An integer in [min, max]; 64-bit fields may also arrive as decimal strings (proto3 JSON). */
function integer(field: string, value: unknown, min: number, max: number, int64 = false): number {
  let n = value;
  if (int64 && typeof value === 'string' && /^-?\d{1,16}$/.test(value)) n = Number(value);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    fail(field, `an integer between ${min} and ${max}`, value);
  }
  return n;
}

function count(field: string, value: unknown): number {
  return integer(field, value, 0, Number.MAX_SAFE_INTEGER, true);
}

function number(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(field, `a finite number between ${min} and ${max}`, value);
  }
  return value;
}

function boolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(field, 'a boolean', value);
  return value;
}

function validateCapacity(field: string, value: unknown): Capacity | undefined {
  if (isAbsent(value)) return undefined;
  const o = object(field, value);
  const capacity: Capacity = {};
  if (!isAbsent(o.maxConcurrency) && o.maxConcurrency !== 0) {
    capacity.maxConcurrency = integer(`${field}.maxConcurrency`, o.maxConcurrency, 0, LIMITS.maxConcurrencyHint);
  }
  if (!isAbsent(o.maxRps) && o.maxRps !== 0)
    capacity.maxRps = number(`${field}.maxRps`, o.maxRps, 0, LIMITS.maxRpsHint);
  return capacity.maxConcurrency === undefined && capacity.maxRps === undefined ? undefined : capacity;
}

/** Checks a Hello against the contract and LIMITS; returns a clean copy or throws ProtocolValidationError. */
export function validateHello(value: unknown, field = 'hello'): Hello {
  const o = object(field, value);
  const version = isAbsent(o.protocolVersion) ? 0 : o.protocolVersion;
  if (version !== 0 && version !== PROTOCOL_VERSION) {
    fail(`${field}.protocolVersion`, `${PROTOCOL_VERSION} (or 0, read as ${PROTOCOL_VERSION})`, version);
  }
  const hello: Hello = {
    protocolVersion: PROTOCOL_VERSION,
    service: name(`${field}.service`, o.service, SERVICE_NAME),
    instanceId: name(`${field}.instanceId`, o.instanceId, INSTANCE_ID),
    address: string(`${field}.address`, o.address, LIMITS.maxAddressLength),
    port: integer(`${field}.port`, o.port, 1, 65535),
    startedAtMs: count(`${field}.startedAtMs`, o.startedAtMs ?? 0),
  };
  if (!ADDRESS_PATTERN.test(hello.address)) {
    fail(`${field}.address`, 'a DNS name or an IP address (A-Z, a-z, 0-9, ".", "-", "_", ":", "%")', hello.address);
  }
  const zone = optionalString(`${field}.zone`, o.zone, LIMITS.maxZoneLength);
  if (zone !== undefined) hello.zone = zone;
  const version2 = optionalString(`${field}.version`, o.version, LIMITS.maxVersionLength);
  if (version2 !== undefined) hello.version = version2;
  const capacity = validateCapacity(`${field}.capacity`, o.capacity);
  if (capacity !== undefined) hello.capacity = capacity;
  if (!isAbsent(o.metricsPort)) hello.metricsPort = integer(`${field}.metricsPort`, o.metricsPort, 1, 65535);
  const metricsPath = optionalString(`${field}.metricsPath`, o.metricsPath, LIMITS.maxMetricsPathLength);
  if (metricsPath !== undefined) {
    if (!metricsPath.startsWith('/') || /[\s?#]/.test(metricsPath)) {
      fail(`${field}.metricsPath`, 'a URL path starting with "/" (no spaces, query or fragment)', metricsPath);
    }
    hello.metricsPath = metricsPath;
  }
  return hello;
}

/** A map of metric name → value (`custom`, `serviceMetrics`): at most LIMITS.maxCustomMetrics, names and values checked. */
function metricMap(field: string, value: unknown): Record<string, number> {
  const raw = isAbsent(value) ? {} : object(field, value);
  const names = Object.keys(raw);
  if (names.length > LIMITS.maxCustomMetrics) {
    fail(field, `at most ${LIMITS.maxCustomMetrics} metrics`, `${names.length} metrics`);
  }
  const out: Record<string, number> = {};
  for (const key of names) {
    if (!isName(METRIC_NAME, key)) fail(field, `keyed by metric names (${METRIC_NAME.description})`, key);
    out[key] = number(`${field}.${key}`, raw[key], 0, Number.MAX_VALUE);
  }
  return out;
}

/** Checks a LoadReport against the contract and LIMITS; returns a clean copy or throws ProtocolValidationError. */
export function validateReport(value: unknown, field = 'report'): LoadReport {
  const o = object(field, value);
  const requests = count(`${field}.requests`, o.requests ?? 0);
  const errors = count(`${field}.errors`, o.errors ?? 0);
  if (errors > requests) fail(`${field}.errors`, `at most ${field}.requests (${requests})`, errors);

  const rawBuckets = o.latencyBuckets ?? [];
  if (!Array.isArray(rawBuckets)) fail(`${field}.latencyBuckets`, 'an array of counts', rawBuckets);
  if (rawBuckets.length !== 0 && rawBuckets.length !== LATENCY_BUCKET_COUNT) {
    fail(`${field}.latencyBuckets`, `empty or of length ${LATENCY_BUCKET_COUNT}`, rawBuckets);
  }
  const latencyBuckets = rawBuckets.map((c, i) => count(`${field}.latencyBuckets[${i}]`, c));

  const custom = metricMap(`${field}.custom`, o.custom);
  const serviceMetrics = metricMap(`${field}.serviceMetrics`, o.serviceMetrics);
  for (const key of Object.keys(serviceMetrics)) {
    if (Object.hasOwn(custom, key)) {
      fail(`${field}.serviceMetrics`, `keyed by names not also in ${field}.custom`, key);
    }
  }

  const report: LoadReport = {
    seq: count(`${field}.seq`, o.seq ?? 0),
    intervalMs: integer(`${field}.intervalMs`, o.intervalMs, LIMITS.minIntervalMs, LIMITS.maxIntervalMs),
    ready: boolean(`${field}.ready`, o.ready ?? false),
    inFlight: integer(`${field}.inFlight`, o.inFlight ?? 0, 0, LIMITS.maxInFlight),
    requests,
    errors,
    latencyBuckets,
    eventLoopUtilization: number(`${field}.eventLoopUtilization`, o.eventLoopUtilization ?? 0, 0, 1),
    eventLoopDelayP99Ms: number(`${field}.eventLoopDelayP99Ms`, o.eventLoopDelayP99Ms ?? 0, 0, LIMITS.maxIntervalMs),
    cpu: number(`${field}.cpu`, o.cpu ?? 0, 0, LIMITS.maxCpuCores),
    rssBytes: count(`${field}.rssBytes`, o.rssBytes ?? 0),
    heapUsedBytes: count(`${field}.heapUsedBytes`, o.heapUsedBytes ?? 0),
    custom,
    sentAtMs: count(`${field}.sentAtMs`, o.sentAtMs ?? 0),
    droppedReports: count(`${field}.droppedReports`, o.droppedReports ?? 0),
  };
  if (Object.keys(serviceMetrics).length > 0) report.serviceMetrics = serviceMetrics;
  if (!isAbsent(o.inFlightAvg)) {
    report.inFlightAvg = number(`${field}.inFlightAvg`, o.inFlightAvg, 0, LIMITS.maxInFlight);
  }
  if (!isAbsent(o.latencyP50Ms)) {
    report.latencyP50Ms = number(`${field}.latencyP50Ms`, o.latencyP50Ms, 0, LIMITS.maxIntervalMs);
  }
  if (!isAbsent(o.latencyP99Ms)) {
    report.latencyP99Ms = number(`${field}.latencyP99Ms`, o.latencyP99Ms, 0, LIMITS.maxIntervalMs);
  }
  return report;
}

function validateDrain(field: string, value: unknown): Drain | undefined {
  if (isAbsent(value)) return undefined;
  const o = object(field, value);
  const drain: Drain = { deadlineMs: integer(`${field}.deadlineMs`, o.deadlineMs ?? 0, 0, LIMITS.maxDrainDeadlineMs) };
  const reason = optionalString(`${field}.reason`, o.reason, LIMITS.maxDrainReasonLength);
  if (reason !== undefined) drain.reason = reason;
  return drain;
}

/**
 * Checks a Directive. `reportIntervalMs` must lie within LIMITS.min/maxReportIntervalMs — agents additionally
 * clamp it to their own bounds.
 */
export function validateDirective(value: unknown, field = 'directive'): Directive {
  const o = object(field, value);
  const directive: Directive = {};
  if (!isAbsent(o.reportIntervalMs)) {
    directive.reportIntervalMs = integer(
      `${field}.reportIntervalMs`,
      o.reportIntervalMs,
      LIMITS.minReportIntervalMs,
      LIMITS.maxReportIntervalMs,
    );
  }
  if (!isAbsent(o.desiredReplicas)) {
    directive.desiredReplicas = integer(`${field}.desiredReplicas`, o.desiredReplicas, 0, LIMITS.maxDesiredReplicas);
  }
  const drain = validateDrain(`${field}.drain`, o.drain);
  if (drain !== undefined) directive.drain = drain;
  if (!isAbsent(o.configGeneration))
    directive.configGeneration = count(`${field}.configGeneration`, o.configGeneration);
  return directive;
}

/** Checks a unary ReportRequest (hello + report). */
export function validateReportRequest(value: unknown, field = 'request'): ReportRequest {
  const o = object(field, value);
  return { hello: validateHello(o.hello, `${field}.hello`), report: validateReport(o.report, `${field}.report`) };
}
