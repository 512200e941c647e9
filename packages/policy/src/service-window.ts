import { latencyQuantile, type Hello, type LoadReport } from '@shoal/protocol';
import type { Observation, ObservedInstance } from '@shoal/policy';
import { RingBuffer } from '@shoal/core/internal';

/** One report, reduced to what decisions use. */
interface Sample {
  at: number;
  eventLoopUtilization: number;
  cpu: number;
  inFlight: number;
  rps: number;
  errorsPerSecond: number;
  eventLoopDelayP99Ms: number;
  latencyP50Ms: number | undefined;
  latencyP99Ms: number | undefined;
  rssBytes: number;
  heapUsedBytes: number;
  buckets: readonly number[];
  custom: Readonly<Record<string, number>>;
}

/** What the status API shows about one instance. */
export interface InstanceView {
  id: string;
  service: string;
  address: string;
  port: number;
  /** Where Prometheus scrapes the instance, from its hello (defaults: `port`, '/metrics'). */
  metricsPort?: number;
  metricsPath?: string;
  zone?: string;
  version?: string;
  startedAtMs: number;
  firstSeenAtMs: number;
  lastReportAtMs?: number;
  ready: boolean;
  draining: boolean;
  connected: boolean;
  /** No report for `missingAfterIntervals` report intervals: its metrics count as missing (HPA rules). */
  missing: boolean;
  /** The last report, as received. */
  lastReport?: LoadReport;
  /** Averages over the window, as the policy sees them. */
  metrics: Record<string, number>;
}

export interface ServiceWindowOptions {
  reportIntervalMs: number;
  /** Reports averaged into one observation. Default: the sync period. */
  windowMs: number;
  /** Samples kept per instance. */
  maxSamples: number;
  maxInstances: number;
  /** An instance that did not report for this many intervals is missing. Default 3. */
  missingAfterIntervals?: number;
  /** A disconnected instance silent this long is forgotten. Default max(10 intervals, 60 s). */
  forgetAfterMs?: number;
  /**
   * Resource requests of every instance, for `utilization` targets (e.g. `{ cpu: 1 }`, as a Kubernetes pod
   * declares them). Default none: a `utilization` target then has no usable metric.
   */
  requests?: Readonly<Record<string, number>>;
}

/**
 * The window options the coordinator uses for a service: reports averaged over one sync period, and only as many
 * samples per instance as one window holds (plus slack for jitter), so memory stays small at 10,000 agents.
 */
export function serviceWindowOptions(options: {
  reportIntervalMs: number;
  syncPeriodMs: number;
  windowSize: number;
  maxInstances: number;
}): ServiceWindowOptions {
  const windowMs = options.syncPeriodMs;
  return {
    reportIntervalMs: options.reportIntervalMs,
    windowMs,
    maxSamples: Math.min(options.windowSize, Math.ceil(windowMs / options.reportIntervalMs) + 2),
    maxInstances: options.maxInstances,
  };
}

class InstanceState {
  readonly samples: RingBuffer<Sample>;
  lastReport: LoadReport | undefined;
  lastReportAt: number | undefined;
  lastActivityAt: number;
  ready = false;
  readySince: number | undefined;
  draining = false;
  connections = 0;
  /** Highest `seq` accepted from this process (its hello's `startedAtMs`); 0 = none yet. */
  lastSeq = 0;

  constructor(
    public hello: Hello,
    readonly firstSeenAt: number,
    maxSamples: number,
  ) {
    this.samples = new RingBuffer(maxSamples);
    this.lastActivityAt = firstSeenAt;
  }
}

export class CapacityError extends Error {}

/** A report whose `seq` is lower than one already accepted from the same process (replayed or forged). */
export class StaleSequenceError extends Error {}

/** A service-wide metric as last reported: taken once per service, never summed. */
interface ServiceMetricSample {
  value: number;
  at: number;
  instanceId: string;
}

const EMPTY: readonly number[] = Object.freeze([]);
const EMPTY_CUSTOM: Readonly<Record<string, number>> = Object.freeze({});

/**
 * `n` zeros in an array V8 stores as unboxed doubles (what `new Array(n).fill(0)` is not: a holey array of small
 * integers that changes representation at the first fractional count). The same values; faster to add into.
 */
export function zeros(n: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(0.5);
  for (let k = 0; k < n; k++) out[k] = 0;
  return out;
}

/** Whether an object has an own enumerable key, without building the list of keys (this runs on every report). */
function hasKeys(o: Readonly<Record<string, number>>): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/**
 * The sliding windows of one service: per instance, the last few reports reduced to samples. `observe(now)` turns
 * them into the `Observation` `decide()` takes: averages over `windowMs`, instances silent for 3 intervals listed
 * with no metrics (missing, connected or not, until forgotten), draining instances marked `deleting`.
 */
export class ServiceWindow {
  private readonly instances = new Map<string, InstanceState>();
  /** Service-wide metrics (reports' `serviceMetrics`): the freshest value of each, whoever reported it. */
  private readonly serviceMetrics = new Map<string, ServiceMetricSample>();
  private readonly missingAfterMs: number;
  private readonly forgetAfterMs: number;

  constructor(
    readonly service: string,
    private readonly options: ServiceWindowOptions,
  ) {
    this.missingAfterMs = (options.missingAfterIntervals ?? 3) * options.reportIntervalMs;
    this.forgetAfterMs = options.forgetAfterMs ?? Math.max(10 * options.reportIntervalMs, 60_000);
  }

  get size(): number {
    return this.instances.size;
  }

  /** The report interval agents of this service are asked to use. */
  get reportIntervalMs(): number {
    return this.options.reportIntervalMs;
  }

  has(id: string): boolean {
    return this.instances.has(id);
  }

  /** Records an agent's hello. Throws `CapacityError` when the service already has `maxInstances` instances. */
  hello(hello: Hello, now: number): void {
    const existing = this.instances.get(hello.instanceId);
    if (existing) {
      // A new process under the same id (restart) starts its sequence again.
      if (existing.hello.startedAtMs !== hello.startedAtMs) existing.lastSeq = 0;
      existing.hello = hello;
      existing.lastActivityAt = now;
      return;
    }
    if (this.instances.size >= this.options.maxInstances) {
      this.prune(now);
      if (this.instances.size >= this.options.maxInstances) this.evictSilent(now);
      if (this.instances.size >= this.options.maxInstances) {
        throw new CapacityError(`service "${this.service}" already has ${this.options.maxInstances} instances`);
      }
    }
    this.instances.set(hello.instanceId, new InstanceState(hello, now, this.options.maxSamples));
  }

  connected(id: string, delta: 1 | -1): void {
    const s = this.instances.get(id);
    if (s) s.connections = Math.max(0, s.connections + delta);
  }

  /**
   * Adds a validated report for an instance that said hello. Returns false for an unknown instance. Throws
   * `StaleSequenceError` when `seq` went backwards (the same `seq` again is a retried report and is taken; 0 means
   * not set and is not checked).
   */
  report(id: string, report: LoadReport, now: number): boolean {
    const s = this.instances.get(id);
    if (!s) return false;
    if (report.seq !== 0) {
      if (report.seq < s.lastSeq) {
        throw new StaleSequenceError(`report.seq went backwards (${report.seq} after ${s.lastSeq})`);
      }
      s.lastSeq = report.seq;
    }
    const seconds = report.intervalMs / 1000;
    s.samples.push({
      at: now,
      eventLoopUtilization: report.eventLoopUtilization,
      cpu: report.cpu,
      inFlight: report.inFlightAvg ?? report.inFlight,
      rps: report.requests / seconds,
      errorsPerSecond: report.errors / seconds,
      eventLoopDelayP99Ms: report.eventLoopDelayP99Ms,
      latencyP50Ms: report.latencyP50Ms,
      latencyP99Ms: report.latencyP99Ms,
      rssBytes: report.rssBytes,
      heapUsedBytes: report.heapUsedBytes,
      buckets: report.latencyBuckets.length > 0 ? report.latencyBuckets : EMPTY,
      custom: hasKeys(report.custom) ? report.custom : EMPTY_CUSTOM,
    });
    if (report.serviceMetrics) {
      for (const name in report.serviceMetrics) {
        this.serviceMetrics.set(name, { value: report.serviceMetrics[name] as number, at: now, instanceId: id });
      }
    }
    if (report.ready && !s.ready) s.readySince = now;
    if (!report.ready && s.ready) s.readySince = now;
    s.ready = report.ready;
    s.lastReport = report;
    s.lastReportAt = now;
    s.lastActivityAt = now;
    return true;
  }

  markDraining(id: string): void {
    const s = this.instances.get(id);
    if (s) s.draining = true;
  }

  isDraining(id: string): boolean {
    return this.instances.get(id)?.draining ?? false;
  }

  remove(id: string): void {
    this.instances.delete(id);
  }

  /**
   * Forgets disconnected instances that have been silent for `forgetAfterMs`, longest silent first, but keeps
   * `keep` instances: while the actuator still runs that many replicas, a silent one is a replica without metrics
   * (missing, as the HPA counts a pod it has no metrics for), not a replica that is gone.
   */
  prune(now: number, keep = 0): string[] {
    const stale: Array<[string, InstanceState]> = [];
    for (const [id, s] of this.instances) {
      if (s.connections === 0 && now - s.lastActivityAt > this.forgetAfterMs) stale.push([id, s]);
    }
    stale.sort((a, b) => a[1].lastActivityAt - b[1].lastActivityAt);
    const gone: string[] = [];
    for (const [id] of stale) {
      if (this.instances.size <= keep) break;
      this.instances.delete(id);
      gone.push(id);
    }
    return gone;
  }

  /**
   * At capacity, a new instance takes the place of the one silent longest, if any is disconnected and missing
   * (no report for `missingAfterIntervals` intervals): ids a token invented and stopped feeding cannot keep an
   * honest new replica out. Instances that keep reporting are never evicted (docs/security.md).
   */
  private evictSilent(now: number): void {
    let oldest: [string, InstanceState] | undefined;
    for (const entry of this.instances) {
      const s = entry[1];
      if (s.connections > 0 || s.draining || !this.isMissing(s, now)) continue;
      if (!oldest || s.lastActivityAt < oldest[1].lastActivityAt) oldest = entry;
    }
    if (oldest) this.instances.delete(oldest[0]);
  }

  private isMissing(s: InstanceState, now: number): boolean {
    return s.lastReportAt === undefined || now - s.lastReportAt > this.missingAfterMs;
  }

  private metricsOf(s: InstanceState, now: number): Record<string, number> {
    if (this.isMissing(s, now)) return {};
    // One pass over the samples in the window (newest first; at least the newest one). This runs for every
    // instance on every loop, so it avoids intermediate arrays.
    const samples = s.samples.toArray();
    const cutoff = now - this.options.windowMs;
    let n = 0;
    let elu = 0;
    let cpu = 0;
    let inFlight = 0;
    let rps = 0;
    let eps = 0;
    let loopDelay = 0;
    let rss = 0;
    let heap = 0;
    let p50 = 0;
    let p50n = 0;
    let p99 = 0;
    let p99n = 0;
    let merged: number[] | undefined;
    let custom: Map<string, { sum: number; n: number }> | undefined;
    for (let i = samples.length - 1; i >= 0; i--) {
      const x = samples[i] as Sample;
      if (n > 0 && x.at <= cutoff) break;
      n++;
      elu += x.eventLoopUtilization;
      cpu += x.cpu;
      inFlight += x.inFlight;
      rps += x.rps;
      eps += x.errorsPerSecond;
      loopDelay += x.eventLoopDelayP99Ms;
      rss += x.rssBytes;
      heap += x.heapUsedBytes;
      if (x.latencyP50Ms !== undefined) {
        p50 += x.latencyP50Ms;
        p50n++;
      }
      if (x.latencyP99Ms !== undefined) {
        p99 += x.latencyP99Ms;
        p99n++;
      }
      if (x.buckets.length > 0) {
        merged ??= zeros(x.buckets.length);
        for (let b = 0; b < x.buckets.length; b++) merged[b] = (merged[b] ?? 0) + (x.buckets[b] as number);
      }
      if (x.custom !== EMPTY_CUSTOM) {
        custom ??= new Map();
        for (const k in x.custom) {
          const c = custom.get(k);
          if (c) {
            c.sum += x.custom[k] as number;
            c.n++;
          } else custom.set(k, { sum: x.custom[k] as number, n: 1 });
        }
      }
    }
    const metrics: Record<string, number> = {};
    if (custom) for (const [k, c] of custom) metrics[k] = c.sum / c.n;
    if (n === 0) return metrics;
    metrics.eventLoopUtilization = elu / n;
    metrics.cpu = cpu / n;
    metrics.inFlight = inFlight / n;
    metrics.rps = rps / n;
    metrics.errorsPerSecond = eps / n;
    metrics.eventLoopDelayP99Ms = loopDelay / n;
    metrics.rssBytes = rss / n;
    metrics.heapUsedBytes = heap / n;
    if (p50n > 0) metrics.latencyP50Ms = p50 / p50n;
    if (p99n > 0) metrics.latencyP99Ms = p99 / p99n;
    if (merged) {
      const p95 = latencyQuantile(merged, 0.95);
      if (p95 !== undefined) metrics.latencyP95Ms = p95;
      if (metrics.latencyP99Ms === undefined) {
        const q = latencyQuantile(merged, 0.99);
        if (q !== undefined) metrics.latencyP99Ms = q;
      }
    }
    return metrics;
  }

  /** The observation `decide()` takes. `currentReplicas` comes from the actuator. */
  observe(now: number, currentReplicas: number): Observation {
    const instances: ObservedInstance[] = [];
    for (const [id, s] of this.instances) {
      // A silent instance stays listed with no metrics until it is forgotten (`forgetAfterMs`) or removed: the
      // engine counts it as missing with the HPA's rules (100 % of target on scale-down, 0 on scale-up), where
      // dropping it would size the service from the instances that still report.
      // Built field by field in this order (no spreads: this runs for every instance on every loop).
      const o: { -readonly [K in keyof ObservedInstance]: ObservedInstance[K] } = {
        id,
        ready: s.ready && !this.isMissing(s, now),
        startedAt: s.hello.startedAtMs,
      } as ObservedInstance;
      if (s.readySince !== undefined) o.readySince = s.readySince;
      if (s.lastReportAt !== undefined) o.sampledAt = s.lastReportAt;
      if (s.draining) o.deleting = true;
      if (this.options.requests) o.requests = this.options.requests;
      o.metrics = this.metricsOf(s, now);
      instances.push(o);
    }
    const metrics = this.serviceMetricValues(now);
    return metrics ? { now, currentReplicas, instances, metrics } : { now, currentReplicas, instances };
  }

  /**
   * The service-wide metrics, each the value of the most recent report that carried it (every replica reads the
   * same source, so the freshest reading wins; values are never summed or averaged over instances). A value older
   * than `missingAfterIntervals` report intervals is missing (HPA rules), and is forgotten.
   */
  serviceMetricValues(now: number): Record<string, number> | undefined {
    let out: Record<string, number> | undefined;
    for (const [name, m] of this.serviceMetrics) {
      if (now - m.at > this.missingAfterMs) {
        this.serviceMetrics.delete(name);
        continue;
      }
      (out ??= {})[name] = m.value;
    }
    return out;
  }

  views(now: number): InstanceView[] {
    const out: InstanceView[] = [];
    for (const [id, s] of this.instances) {
      out.push({
        id,
        service: this.service,
        address: s.hello.address,
        port: s.hello.port,
        ...(s.hello.metricsPort !== undefined ? { metricsPort: s.hello.metricsPort } : {}),
        ...(s.hello.metricsPath !== undefined ? { metricsPath: s.hello.metricsPath } : {}),
        ...(s.hello.zone ? { zone: s.hello.zone } : {}),
        ...(s.hello.version ? { version: s.hello.version } : {}),
        startedAtMs: s.hello.startedAtMs,
        firstSeenAtMs: s.firstSeenAt,
        ...(s.lastReportAt !== undefined ? { lastReportAtMs: s.lastReportAt } : {}),
        ready: s.ready,
        draining: s.draining,
        connected: s.connections > 0,
        missing: this.isMissing(s, now),
        ...(s.lastReport ? { lastReport: s.lastReport } : {}),
        metrics: this.metricsOf(s, now),
      });
    }
    return out;
  }
}
