import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { EventEmitter, type Disposable } from '@shoal/core';

/** Path of the KEDA external-scaler proto shipped with this package. */
export const EXTERNAL_SCALER_PROTO_PATH = fileURLToPath(new URL('../proto/externalscaler.proto', import.meta.url));

interface ScaledObjectRef {
  name: string;
  namespace: string;
  scalerMetadata: Record<string, string>;
}

/** What the scaler needs from the coordinator, per service. */
export interface KedaSource {
  /** Undefined for an unknown service. */
  snapshot(service: string): KedaServiceSnapshot | undefined;
  /** Fires with a service name whenever its desired count or activity may have changed. */
  onUpdate(listener: (service: string) => void): Disposable;
}

export interface KedaServiceSnapshot {
  desiredReplicas: number | undefined;
  /** Sum of a metric over the ready, non-missing instances. */
  metricTotal(metric: string): number | undefined;
  /** The policy's target value for a metric, if it has one. */
  targetFor(metric: string): number | undefined;
  /** Requests/s over the service (for IsActive). */
  rps: number;
}

let definition: grpc.ServiceDefinition | undefined;

/** The `externalscaler.ExternalScaler` service definition. */
export function externalScalerService(): grpc.ServiceDefinition {
  if (!definition) {
    const pkg = loadSync(EXTERNAL_SCALER_PROTO_PATH, { keepCase: true, longs: Number, defaults: true });
    const root = grpc.loadPackageDefinition(pkg) as unknown as {
      externalscaler: { ExternalScaler: { service: grpc.ServiceDefinition } };
    };
    definition = root.externalscaler.ExternalScaler.service;
  }
  return definition;
}

function serviceOf(ref: ScaledObjectRef | undefined): string {
  return ref?.scalerMetadata?.service || ref?.name || '';
}

/**
 * KEDA external scaler backed by the coordinator's decisions. `scalerMetadata.service` names the Shoal service
 * (default: the ScaledObject's name). With no `scalerMetadata.metric`, the metric is `shoal-<service>-replicas`:
 * its value is the desired replica count and its target 1, so KEDA's HPA (External, AverageValue:
 * `ceil(value / target)`) runs exactly the count Shoal decided. With `metric: <name>` (e.g. `inFlight`), the value
 * is the sum over ready instances and the target the policy's target for it (or `scalerMetadata.target`), so
 * the HPA does its own arithmetic on Shoal's signals.
 */
export function kedaScalerHandlers(source: KedaSource): grpc.UntypedServiceImplementation {
  const active = (ref: ScaledObjectRef): boolean => {
    const snap = source.snapshot(serviceOf(ref));
    if (!snap) return false;
    return (snap.desiredReplicas ?? 0) > 0 || snap.rps > 0;
  };
  const spec = (ref: ScaledObjectRef) => {
    const service = serviceOf(ref);
    const snap = source.snapshot(service);
    if (!snap) return undefined;
    const metric = ref.scalerMetadata?.metric;
    if (!metric)
      return { metricName: `shoal-${service}-replicas`, targetSize: 1, targetSizeFloat: 1, metric: undefined };
    const target = Number(ref.scalerMetadata?.target) || snap.targetFor(metric) || 1;
    return {
      metricName: `shoal-${service}-${metric}`,
      targetSize: Math.max(1, Math.round(target)),
      targetSizeFloat: target,
      metric,
    };
  };
  const notFound = (ref: ScaledObjectRef) => ({
    code: grpc.status.NOT_FOUND,
    details: `no Shoal service "${serviceOf(ref)}" (set scalerMetadata.service)`,
  });
  return {
    IsActive: (call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (!source.snapshot(serviceOf(call.request))) return cb(notFound(call.request));
      cb(null, { result: active(call.request) });
    },
    StreamIsActive: (call: grpc.ServerWritableStream<ScaledObjectRef, unknown>) => {
      const ref = call.request;
      const service = serviceOf(ref);
      if (!source.snapshot(service)) {
        call.emit('error', notFound(ref));
        return;
      }
      let last = active(ref);
      call.write({ result: last });
      const dispose = source.onUpdate((s) => {
        if (s !== service) return;
        const now = active(ref);
        if (now !== last) {
          last = now;
          call.write({ result: now });
        }
      });
      const stop = () => dispose();
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('error', stop);
    },
    GetMetricSpec: (call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const s = spec(call.request);
      if (!s) return cb(notFound(call.request));
      cb(null, {
        metricSpecs: [{ metricName: s.metricName, targetSize: s.targetSize, targetSizeFloat: s.targetSizeFloat }],
      });
    },
    GetMetrics: (
      call: grpc.ServerUnaryCall<{ scaledObjectRef: ScaledObjectRef; metricName: string }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => {
      const ref = call.request.scaledObjectRef;
      const s = spec(ref);
      const snap = source.snapshot(serviceOf(ref));
      if (!s || !snap) return cb(notFound(ref));
      const value = s.metric === undefined ? (snap.desiredReplicas ?? 0) : (snap.metricTotal(s.metric) ?? 0);
      cb(null, {
        metricValues: [{ metricName: s.metricName, metricValue: Math.round(value), metricValueFloat: value }],
      });
    },
  };
}

/** A tiny event hub the coordinator uses to tell StreamIsActive watchers about new decisions. */
export class UpdateHub {
  private readonly emitter = new EventEmitter<string>();
  readonly onUpdate = (listener: (service: string) => void): Disposable => this.emitter.event(listener);
  emit(service: string): void {
    this.emitter.emit(service);
  }
  clear(): void {
    this.emitter.clear();
  }
}
