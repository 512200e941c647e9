/**
 * Server side: a grpc-js server interceptor that counts in-flight calls, requests, errors (server faults, as
 * `@shoal/core`'s `isGrpcServerFault` defines them) and latency for Prometheus, and attaches this server's load to every response as an ORCA
 * `endpoint-load-metrics-bin` trailer (CPU utilization, event-loop utilization as application utilization, request
 * and error rates, and in-flight calls as a named metric). Clients running `shoal_weighted_least_load` read it.
 *
 * CPU and event-loop utilization are sampled lazily when a call ends and the last sample is older than
 * `sampleIntervalMs`, so the reporter owns no timer.
 *
 * Installed on a server together with `@shoal/agent`'s interceptor (in either order), the call is counted once,
 * by the agent: this reporter sees the agent's mark on the call (`GRPC_CALL_COUNTER`), counts nothing itself
 * (its `shoal_grpc_server_*` metrics stay at zero; the agent's `shoal_agent_*` have the calls) and reads in-flight,
 * requests and errors from the agent for its ORCA trailers and `stats()`.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { EventLoopUtilization } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  EventEmitter,
  InvalidArgumentError,
  describeValue,
  assertBoolean,
  assertKnownKeys,
  assertObject,
  assertPositiveInteger,
  grpcCallCounterOf,
  isGrpcServerFault,
  isUncountedGrpcMethod,
  memoizeMetrics,
  realClock,
} from '@shoal/core';
import type { Clock, Event, GrpcCallCounter, MetricsRegistry } from '@shoal/core';
import { ORCA_TRAILER } from './grpc-js-compat.js';
import { encodeOrcaLoadReport } from './orca.js';
import type { OrcaLoadReport } from './orca.js';

export interface LoadReporterOptions {
  /** Attach an ORCA `endpoint-load-metrics-bin` trailer to every response. Default `true`. */
  orca?: boolean;
  /** Minimum age of the CPU / event-loop sample before it is refreshed, in ms. Default `1000`. */
  sampleIntervalMs?: number;
  /** Cores used to turn CPU seconds into utilization (1.0 = all cores busy). Default `os.availableParallelism()`. */
  cpuCount?: number;
  /** Registry for the `shoal_grpc_server_*` metrics. Default: a fresh registry. */
  /**
   * Adds to (or overrides) the fields of every ORCA report, e.g. `() => ({ applicationUtilization: queue.length / 100 })`
   * when the application knows its own saturation better than the event loop does.
   */
  customReport?: () => OrcaLoadReport;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export interface CallRecord {
  /** Full method path, e.g. `/helloworld.Greeter/SayHello`. */
  method: string;
  /** gRPC status code the call ended with. */
  code: number;
  latencyMs: number;
}

export interface LoadStats {
  inFlight: number;
  /** Calls finished since the reporter was created. */
  requests: number;
  /** Calls that failed: a server-fault code (`isGrpcServerFault` in `@shoal/core`) or cancelled before an answer. */
  errors: number;
  /** Sum of call latencies, ms (divide by `requests` for the mean). */
  latencySumMs: number;
  /** CPU utilization of this process over the last sample, 0..1 of `cpuCount` cores. */
  cpuUtilization: number;
  /** Event-loop utilization over the last sample, 0..1. */
  eventLoopUtilization: number;
  /** Finished calls per second over the last sample. */
  rps: number;
  /** Failed calls per second over the last sample. */
  eps: number;
}

export interface LoadReporter {
  /** Pass to `new grpc.Server({ interceptors: [reporter.interceptor] })`. */
  readonly interceptor: grpc.ServerInterceptor;
  inFlight(): number;
  stats(): LoadStats;
  /** The ORCA report the next response would carry. */
  currentReport(): OrcaLoadReport;
  /** Every finished call. */
  readonly onCall: Event<CallRecord>;
  /** Stops emitting `onCall` events. */
  close(): void;
}

const createMetrics = memoizeMetrics((registry: MetricsRegistry) => ({
  inFlight: new Gauge({
    name: 'shoal_grpc_server_in_flight_calls',
    help: 'gRPC calls being served right now.',
    registers: [registry],
  }),
  calls: new Counter({
    name: 'shoal_grpc_server_calls_total',
    help: 'gRPC calls served, by status code.',
    labelNames: ['code'],
    registers: [registry],
  }),
  duration: new Histogram({
    name: 'shoal_grpc_server_call_duration_seconds',
    help: 'Time from the start of a gRPC call to its status.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  }),
}));

export function resolveLoadReporterOptions(input: LoadReporterOptions = {}) {
  assertObject('options', input as unknown);
  assertKnownKeys('options', input as Record<string, unknown>, [
    'orca',
    'sampleIntervalMs',
    'cpuCount',
    'customReport',
    'registry',
    'clock',
  ]);
  const orca = input.orca ?? true;
  assertBoolean('orca', orca);
  const sampleIntervalMs = input.sampleIntervalMs ?? 1000;
  assertPositiveInteger('sampleIntervalMs', sampleIntervalMs);
  const cpuCount = input.cpuCount ?? availableParallelism();
  assertPositiveInteger('cpuCount', cpuCount);
  if (input.customReport !== undefined && typeof input.customReport !== 'function') {
    throw new InvalidArgumentError(`customReport must be a function, got ${describeValue(input.customReport)}`);
  }
  return Object.freeze({
    customReport: input.customReport,
    orca,
    sampleIntervalMs,
    cpuCount,
    registry: input.registry ?? new Registry(),
    clock: input.clock ?? realClock,
  });
}

/** Creates the interceptor and counters. One reporter per server. */
export function createLoadReporter(options: LoadReporterOptions = {}): LoadReporter {
  const opts = resolveLoadReporterOptions(options);
  const metrics = createMetrics(opts.registry);
  const clock = opts.clock;
  const calls = new EventEmitter<CallRecord>();
  let closed = false;
  let inFlight = 0;
  let requests = 0;
  let errors = 0;
  let latencySumMs = 0;

  // Lazy samples of CPU, event loop and rates.
  let sampleAt = clock.monotonic();
  let cpuPrev = process.cpuUsage();
  let eluPrev: EventLoopUtilization = performance.eventLoopUtilization();
  let reqPrev = 0;
  let errPrev = 0;
  let cpuUtilization = 0;
  let eventLoopUtilization = 0;
  let rps = 0;
  let eps = 0;

  // Another Shoal instrumentation (the agent's interceptor) that already counts this server's calls: then this
  // reporter counts nothing itself and takes in-flight, requests and errors from it, so each call is counted once.
  let external: GrpcCallCounter | undefined;
  const current = () =>
    external !== undefined
      ? { inFlight: external.inFlight, requests: external.requests, errors: external.errors }
      : { inFlight, requests, errors };

  function sample(): void {
    const now = clock.monotonic();
    const elapsed = now - sampleAt;
    if (elapsed < opts.sampleIntervalMs) return;
    const counts = current();
    const cpu = process.cpuUsage(cpuPrev);
    cpuUtilization = Math.min(1, (cpu.user + cpu.system) / 1000 / elapsed / opts.cpuCount);
    const elu = performance.eventLoopUtilization(eluPrev);
    eventLoopUtilization = elu.utilization;
    rps = (Math.max(0, counts.requests - reqPrev) * 1000) / elapsed;
    eps = (Math.max(0, counts.errors - errPrev) * 1000) / elapsed;
    cpuPrev = process.cpuUsage();
    eluPrev = performance.eventLoopUtilization();
    reqPrev = counts.requests;
    errPrev = counts.errors;
    sampleAt = now;
  }

  function currentReport(): OrcaLoadReport {
    const report: OrcaLoadReport = {
      cpuUtilization,
      applicationUtilization: eventLoopUtilization,
      rpsFractional: rps,
      eps,
      namedMetrics: { in_flight: current().inFlight },
    };
    return opts.customReport ? { ...report, ...opts.customReport() } : report;
  }

  const interceptor: grpc.ServerInterceptor = (descriptor, call) => {
    // Health checks are not work (a Watch stream lives as long as its client): not counted, no trailer.
    if (isUncountedGrpcMethod(descriptor.path)) return new grpc.ServerInterceptingCall(call);
    let startedAt = -1;
    let finished = false;
    /** Counted by another instrumentation: this reporter only times it (for onCall) and adds the trailer. */
    let countedElsewhere = false;
    const finish = (code: number, cancelled: boolean): void => {
      if (finished || startedAt < 0) return;
      finished = true;
      const latencyMs = clock.monotonic() - startedAt;
      if (!countedElsewhere) {
        inFlight--;
        requests++;
        if (cancelled || isGrpcServerFault(code)) errors++;
        latencySumMs += latencyMs;
        metrics.inFlight.dec();
        metrics.calls.inc({ code: grpc.status[code] ?? String(code) });
        metrics.duration.observe(latencyMs / 1000);
      } else {
        latencySumMs += latencyMs;
      }
      sample();
      if (!closed) calls.emit({ method: descriptor.path, code, latencyMs });
    };
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        // An instrumentation listed after this one marked `intercepting`; one listed before, `call`.
        const other = grpcCallCounterOf(intercepting) ?? grpcCallCounterOf(call);
        startedAt = clock.monotonic();
        if (other !== undefined) {
          countedElsewhere = true;
          external = other;
        } else {
          inFlight++;
          metrics.inFlight.inc();
        }
        next({ onCancel: () => finish(grpc.status.CANCELLED, true) });
      },
      sendStatus: (status, next) => {
        finish(status.code, false);
        if (opts.orca) {
          const metadata = status.metadata ?? new grpc.Metadata();
          metadata.set(ORCA_TRAILER, encodeOrcaLoadReport(currentReport()));
          next({ ...status, metadata });
          return;
        }
        next(status);
      },
    });
    return intercepting;
  };

  return {
    interceptor,
    inFlight: () => current().inFlight,
    stats: () => {
      sample();
      return { ...current(), latencySumMs, cpuUtilization, eventLoopUtilization, rps, eps };
    },
    currentReport,
    onCall: calls.event,
    close: () => {
      closed = true;
      calls.clear();
    },
  };
}
