/**
 * The simulated agents: each ready replica accounts its share of every simulated second exactly as
 * `@shoal/agent`'s load tracker does — completed requests (not offered load), time-weighted in-flight, a latency
 * histogram in the wire's buckets, event-loop utilization and CPU — and sends a `LoadReport` every report interval
 * (counted from its start). Reports reach the coordinator's `ServiceWindow` after `metricLagMs`, batched at
 * `metricResolutionMs` instants when set (how metrics-server publishes), and the controller observes that window.
 */
import { LATENCY_BUCKET_COUNT, PROTOCOL_VERSION, type Hello, type LoadReport } from '@shoal/protocol';
import { zeros, type ServiceWindow } from '../service-window.js';
import type { SimInstance } from './fleet.js';
import type { SimulationModel } from './model.js';

/** One simulated second of the pool, per ready replica. */
export interface SecondShare {
  /** Requests completed by one replica. */
  completed: number;
  /** Mean requests in flight on one replica (time-weighted). */
  inFlight: number;
  /** Busy fraction, 0..1 (ELU and CPU). */
  utilization: number;
  /** Share of the second's completions per latency bucket (sums to 1; LATENCY_BUCKET_COUNT entries). */
  latencyShares: readonly number[];
}

/** Simulated agents report no custom metrics: one frozen empty record shared by every report (never written). */
const NO_CUSTOM: Record<string, number> = Object.freeze({}) as Record<string, number>;

interface Accumulator {
  seq: number;
  requests: number;
  inFlightArea: number;
  busyArea: number;
  seconds: number;
  buckets: number[];
  lastInFlight: number;
  helloSent: boolean;
}

interface Pending {
  deliverAt: number;
  id: string;
  report: LoadReport;
}

/** The agents of a simulated fleet, feeding one `ServiceWindow`. Times in simulated seconds. */
export class SimAgents {
  private readonly acc = new Map<string, Accumulator>();
  /** Reports sent and not yet delivered, in delivery order from `head`. */
  private pending: Pending[] = [];
  private head = 0;
  private readonly intervalS: number;

  constructor(
    private readonly model: SimulationModel,
    private readonly window: ServiceWindow,
    private readonly startAtMs: number,
    private readonly service = 'sim',
    /** Called with every report as the window receives it (the equality test replays them into a coordinator). */
    private readonly onReport?: (atMs: number, hello: Hello | undefined, id: string, report: LoadReport) => void,
  ) {
    this.intervalS = Math.max(1, Math.round(model.reportIntervalMs / 1000));
  }

  private hello(i: SimInstance): Hello {
    return {
      protocolVersion: PROTOCOL_VERSION,
      service: this.service,
      instanceId: i.id,
      address: '127.0.0.1',
      port: 1,
      startedAtMs: this.startAtMs + i.readyAt * 1000,
    };
  }

  /** Accounts second `t` (from t to t+1) on every ready instance; sends the reports due at t+1. */
  second(t: number, instances: readonly SimInstance[], share: SecondShare): void {
    const m = this.model;
    for (const i of instances) {
      if (i.readyAt > t) continue;
      let a = this.acc.get(i.id);
      if (!a) {
        a = {
          seq: 0,
          requests: 0,
          inFlightArea: 0,
          busyArea: 0,
          seconds: 0,
          buckets: zeros(LATENCY_BUCKET_COUNT),
          lastInFlight: 0,
          helloSent: false,
        };
        this.acc.set(i.id, a);
      }
      const f = 1 + m.metricNoise * i.noise;
      const completed = share.completed * f;
      a.requests += completed;
      a.inFlightArea += share.inFlight * f;
      a.lastInFlight = share.inFlight * f;
      a.busyArea += Math.min(1, share.utilization * f);
      a.seconds++;
      for (let b = 0; b < LATENCY_BUCKET_COUNT; b++)
        a.buckets[b] = (a.buckets[b] as number) + completed * (share.latencyShares[b] as number);
      if ((t + 1 - i.readyAt) % this.intervalS !== 0) continue;
      const elu = a.busyArea / a.seconds;
      // Every field spelled out (not a spread of emptyLoadReport()): one object shape for every report, which
      // keeps the window's reads of it fast.
      const report: LoadReport = {
        seq: ++a.seq,
        intervalMs: a.seconds * 1000,
        ready: true,
        inFlight: Math.round(a.lastInFlight),
        inFlightAvg: a.inFlightArea / a.seconds,
        requests: a.requests,
        errors: 0,
        latencyBuckets: a.buckets,
        eventLoopUtilization: elu,
        eventLoopDelayP99Ms: 0,
        cpu: elu * m.cpuPerReplica,
        rssBytes: 0,
        heapUsedBytes: 0,
        custom: NO_CUSTOM,
        sentAtMs: this.startAtMs + (t + 1) * 1000,
        droppedReports: 0,
      };
      const hello = a.helloSent ? undefined : this.hello(i);
      a.helloSent = true;
      this.queue(t + 1, i.id, report, hello);
      a.requests = 0;
      a.inFlightArea = 0;
      a.busyArea = 0;
      a.seconds = 0;
      a.buckets = zeros(LATENCY_BUCKET_COUNT);
    }
  }

  private queue(sentS: number, id: string, report: LoadReport, hello: Hello | undefined): void {
    const m = this.model;
    let deliverMs = sentS * 1000 + m.metricLagMs;
    if (m.metricResolutionMs > 0) {
      // Published at the next scrape; scrapes are half a resolution out of phase with the sync period, so a
      // decision sees metrics 0 to one resolution old (half a resolution on average), as with metrics-server.
      const r = m.metricResolutionMs;
      const phase = r / 2;
      deliverMs = Math.ceil((deliverMs - phase) / r) * r + phase;
    }
    if (hello) this.helloFor.set(id, hello);
    // Sent in time order with one lag, so delivery times never decrease: a FIFO, delivered from its head.
    this.pending.push({ deliverAt: deliverMs, id, report });
  }

  private readonly helloFor = new Map<string, Hello>();

  /** Hands the window every report delivered by `tMs` (simulated ms from the start), oldest first. */
  deliver(tMs: number): void {
    const pending = this.pending;
    let k = this.head;
    for (; k < pending.length; k++) {
      const p = pending[k] as Pending;
      if (p.deliverAt > tMs) break;
      // A removed replica's reports still in flight are dropped here (ids are never reused).
      if (!this.acc.has(p.id)) continue;
      const at = this.startAtMs + p.deliverAt;
      const hello = this.helloFor.get(p.id);
      if (hello) {
        this.window.hello(hello, at);
        this.window.connected(p.id, 1);
        this.helloFor.delete(p.id);
      }
      this.window.report(p.id, p.report, at);
      this.onReport?.(at, hello, p.id, p.report);
    }
    if (k === pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (k > 4096 && k * 2 > pending.length) {
      this.pending = pending.slice(k);
      this.head = 0;
    } else this.head = k;
  }

  /** A replica removed by a scale-down: it stops reporting and disconnects. */
  remove(id: string): void {
    this.acc.delete(id);
    this.helloFor.delete(id);
    this.window.remove(id);
  }
}
