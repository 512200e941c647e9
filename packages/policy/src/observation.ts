/**
 * What the coordinator knows about a service at one instant, built from agent reports.
 */
import { checkObject } from './check.js';
import { assertFiniteNumber, assertInteger, InvalidArgumentError } from '@shoal/core';

export interface ObservedInstance {
  /** Instance id (the agent's instanceId). */
  id: string;
  /** The instance passes its readiness check (the agent's `ready`). */
  ready: boolean;
  /** Default `'running'`; `'pending'` while starting (no report yet), `'failed'` if it crashed. */
  phase?: 'running' | 'pending' | 'failed';
  /** Being drained/removed: dropped from every calculation. Default false. */
  deleting?: boolean;
  /** Process start, epoch ms (the agent's `startedAtMs`). Omitted: long ago. */
  startedAt?: number;
  /** Last readiness transition, epoch ms. Omitted: long ago. */
  readySince?: number;
  /** When the metrics below were sampled, epoch ms (the report time). Omitted: fresh. */
  sampledAt?: number;
  /**
   * Metric values: `eventLoopUtilization` (0..1), `cpu` (cores), `inFlight`, `rps`, `latencyP95Ms`,
   * `latencyP99Ms`, and custom business metrics by name. A metric that is absent is missing.
   */
  metrics: Readonly<Record<string, number>>;
  /** Requests for `utilization` targets, by metric name (e.g. `{ cpu: 1 }` for one core). */
  requests?: Readonly<Record<string, number>>;
}

export interface Observation {
  /** Decision time, epoch ms. `decide` reads no other clock. */
  now: number;
  /** Replicas the actuator currently runs (Kubernetes `scale.status.replicas`). */
  currentReplicas: number;
  instances: readonly ObservedInstance[];
  /** Service-level metrics (e.g. a broker's queue depth) for `total` targets. */
  metrics?: Readonly<Record<string, number>>;
}

/** Validates the shape cheaply (decide runs with 1,000 instances in well under a millisecond). */
export function validateObservation(o: Observation): void {
  checkObject('observation', o);
  assertFiniteNumber('observation.now', o.now);
  assertInteger('observation.currentReplicas', o.currentReplicas, 0);
  if (!Array.isArray(o.instances)) throw new InvalidArgumentError('observation.instances must be an array');
  for (let k = 0; k < o.instances.length; k++) {
    const i = o.instances[k] as ObservedInstance;
    if (typeof i !== 'object' || i === null || typeof i.id !== 'string') {
      throw new InvalidArgumentError(`observation.instances[${k}].id must be a string`);
    }
    if (typeof i.metrics !== 'object' || i.metrics === null) {
      throw new InvalidArgumentError(`observation.instances[${k}].metrics must be an object`);
    }
    if (typeof i.ready !== 'boolean') {
      throw new InvalidArgumentError(`observation.instances[${k}].ready must be a boolean, got ${typeof i.ready}`);
    }
    if (i.startedAt !== undefined) assertFiniteNumber(`observation.instances[${k}].startedAt`, i.startedAt);
    if (i.readySince !== undefined) assertFiniteNumber(`observation.instances[${k}].readySince`, i.readySince);
    if (i.sampledAt !== undefined) assertFiniteNumber(`observation.instances[${k}].sampledAt`, i.sampledAt);
  }
  if (o.metrics !== undefined) checkObject('observation.metrics', o.metrics);
}

/** A metric value that is usable: a finite, non-negative number. */
export function metricValue(metrics: Readonly<Record<string, number>> | undefined, name: string): number | undefined {
  const v = metrics?.[name];
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}
