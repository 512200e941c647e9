import { createHash, timingSafeEqual } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { EventEmitter, realClock, type Clock, type Disposable } from '@shoal/core';

/** Path of the KEDA external-scaler proto shipped with this package. */
export const EXTERNAL_SCALER_PROTO_PATH = fileURLToPath(new URL('../proto/externalscaler.proto', import.meta.url));

/** What the scaler reads of a call to authorize it (its peer's verified certificate, under mutual TLS). */
export type KedaCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext' | 'getPeer'>;

interface ScaledObjectRef {
  name: string;
  namespace: string;
  scalerMetadata: Record<string, string>;
}

/**
 * What KEDA is told about a service: plain numbers, computed from the instance views once per decision (or once
 * per `maxAgeMs` between decisions) and shared by every call and every `StreamIsActive` watcher.
 */
export interface KedaServiceSnapshot {
  desiredReplicas: number | undefined;
  /** Requests/s over the ready instances (for IsActive). */
  rps: number;
  /** Sum of each metric over the ready, non-missing, non-draining instances. */
  metricTotals: Readonly<Record<string, number>>;
  /** The policy's target value per metric. */
  targets: Readonly<Record<string, number>>;
}

/** What the scaler needs from the coordinator, per service. */
export interface KedaSource {
  /** Computes a service's snapshot (walks its instances); undefined for an unknown service. */
  compute(service: string): KedaServiceSnapshot | undefined;
  /** Fires with a service name after each of its decisions. */
  onUpdate(listener: (service: string) => void): Disposable;
  /** How long a snapshot may be served without a decision (the service's sync period). */
  maxAgeMs(service: string): number;
}

export interface KedaScalerOptions {
  source: KedaSource;
  /**
   * The token KEDA must send as `scalerMetadata.token`. Undefined: calls are authenticated by `authorize` alone
   * (a verified client certificate), or refused.
   */
  token?: string;
  /**
   * Extra check of a call (mutual TLS: whether its verified client certificate is KEDA's). Called before the token
   * check; a call passes when either accepts it. Undefined: only the token.
   */
  authorize?: (call: KedaCall) => boolean;
  /** `--insecure-dev` without a token or certificate: every call is accepted. */
  open?: boolean;
  /** `StreamIsActive` streams open at once; the next is refused with RESOURCE_EXHAUSTED. */
  maxWatchers: number;
  clock?: Clock;
  /** Called each time a snapshot is computed (metrics, tests). */
  onCompute?: (service: string) => void;
  /** Called with the number of open watchers when it changes. */
  onWatchers?: (count: number) => void;
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
  const s = ref?.scalerMetadata?.service || ref?.name || '';
  return typeof s === 'string' ? s : '';
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

interface Watcher {
  call: grpc.ServerWritableStream<ScaledObjectRef, unknown>;
  last: boolean;
}

interface Cached {
  snapshot: KedaServiceSnapshot | undefined;
  atMs: number;
}

/**
 * KEDA external scaler backed by the coordinator's decisions. `scalerMetadata.service` names the Shoal service
 * (default: the ScaledObject's name). With no `scalerMetadata.metric`, the metric is `shoal-<service>-replicas`:
 * its value is the desired replica count and its target 1, so KEDA's HPA (External, AverageValue:
 * `ceil(value / target)`) runs exactly the count Shoal decided. With `metric: <name>` (e.g. `inFlight`), the value
 * is the sum over ready instances and the target the policy's target for it (or `scalerMetadata.target`), so
 * the HPA does its own arithmetic on Shoal's signals.
 *
 * Every call is authenticated (`scalerMetadata.token`, or a verified client certificate) before it costs anything.
 * A service's answer is computed once per decision and fanned out: N watchers cost N writes of a boolean, not N
 * walks over the instances. Watchers are capped at `maxWatchers`.
 */
export class KedaScaler {
  private readonly clock: Clock;
  private tokenDigest: Buffer | undefined;
  private readonly cache = new Map<string, Cached>();
  private readonly watchers = new Map<string, Set<Watcher>>();
  private watcherCount = 0;
  private readonly subscription: Disposable;

  constructor(private readonly options: KedaScalerOptions) {
    this.clock = options.clock ?? realClock;
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
    this.subscription = options.source.onUpdate((service) => this.onDecision(service));
  }

  /** Swaps the token (config reload). */
  setToken(token: string | undefined): void {
    this.tokenDigest = token === undefined ? undefined : digest(token);
  }

  get watcherTotal(): number {
    return this.watcherCount;
  }

  /** The service's snapshot: cached until its next decision or for `maxAgeMs`. */
  snapshot(service: string): KedaServiceSnapshot | undefined {
    const now = this.clock.now();
    const hit = this.cache.get(service);
    if (hit && now - hit.atMs < this.options.source.maxAgeMs(service)) return hit.snapshot;
    const snapshot = this.options.source.compute(service);
    this.options.onCompute?.(service);
    if (snapshot) this.cache.set(service, { snapshot, atMs: now });
    else this.cache.delete(service);
    return snapshot;
  }

  private onDecision(service: string): void {
    this.cache.delete(service);
    const set = this.watchers.get(service);
    if (!set || set.size === 0) return;
    let snap: KedaServiceSnapshot | undefined;
    try {
      snap = this.snapshot(service);
    } catch {
      return; // no fresh view of the leader (a follower): watchers keep their last answer
    }
    const now = isActive(snap);
    for (const w of set) {
      if (w.last !== now) {
        w.last = now;
        w.call.write({ result: now });
      }
    }
  }

  /** Why a call is refused, or undefined when it may go on. */
  private refusal(call: KedaCall, ref: ScaledObjectRef | undefined): grpc.ServiceError | undefined {
    if (this.options.authorize?.(call)) return undefined;
    const presented = ref?.scalerMetadata?.token;
    if (this.tokenDigest) {
      if (typeof presented === 'string' && presented.length <= 4096) {
        if (timingSafeEqual(this.tokenDigest, digest(presented))) return undefined;
      }
      return error(grpc.status.UNAUTHENTICATED, 'scalerMetadata.token is missing or not valid');
    }
    if (this.options.open) return undefined;
    return error(
      grpc.status.UNAUTHENTICATED,
      this.options.authorize
        ? 'a client certificate for KEDA is required'
        : 'the KEDA scaler is not configured: set keda.token (and scalerMetadata.token) or tls.requireClientCert',
    );
  }

  private spec(ref: ScaledObjectRef, snap: KedaServiceSnapshot) {
    const service = serviceOf(ref);
    const metric = ref.scalerMetadata?.metric;
    if (!metric)
      return { metricName: `shoal-${service}-replicas`, targetSize: 1, targetSizeFloat: 1, metric: undefined };
    const asked = Number(ref.scalerMetadata?.target);
    const target = (Number.isFinite(asked) && asked > 0 ? asked : undefined) ?? snap.targets[metric] ?? 1;
    return {
      metricName: `shoal-${service}-${metric}`,
      targetSize: Math.max(1, Math.round(target)),
      targetSizeFloat: target,
      metric,
    };
  }

  /** The gRPC handlers of `externalscaler.ExternalScaler`. */
  handlers(): grpc.UntypedServiceImplementation {
    const notFound = (ref: ScaledObjectRef | undefined) =>
      error(
        grpc.status.NOT_FOUND,
        `no Shoal service ${JSON.stringify(serviceOf(ref).slice(0, 100))} (set scalerMetadata.service)`,
      );
    /** The snapshot; or UNAVAILABLE when it cannot be had now (a follower without a fresh view of the leader). */
    const lookup = (service: string): KedaServiceSnapshot | undefined | grpc.ServiceError => {
      try {
        return this.snapshot(service);
      } catch (e) {
        return error(grpc.status.UNAVAILABLE, (e as Error).message);
      }
    };
    return {
      IsActive: (call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const refused = this.refusal(call, call.request);
        if (refused) return cb(refused);
        const snap = lookup(serviceOf(call.request));
        if (snap instanceof Error) return cb(snap);
        if (!snap) return cb(notFound(call.request));
        cb(null, { result: isActive(snap) });
      },
      StreamIsActive: (call: grpc.ServerWritableStream<ScaledObjectRef, unknown>) => {
        const ref = call.request;
        const refused = this.refusal(call, ref) ?? this.capacity();
        if (refused) {
          call.emit('error', refused);
          return;
        }
        const service = serviceOf(ref);
        const snap = lookup(service);
        if (!snap || snap instanceof Error) {
          call.emit('error', snap ?? notFound(ref));
          return;
        }
        const watcher: Watcher = { call, last: isActive(snap) };
        let set = this.watchers.get(service);
        if (!set) this.watchers.set(service, (set = new Set()));
        set.add(watcher);
        this.watcherCount++;
        this.options.onWatchers?.(this.watcherCount);
        call.write({ result: watcher.last });
        let stopped = false;
        const stop = () => {
          if (stopped) return;
          stopped = true;
          set.delete(watcher);
          if (set.size === 0 && this.watchers.get(service) === set) this.watchers.delete(service);
          this.watcherCount--;
          this.options.onWatchers?.(this.watcherCount);
        };
        call.on('cancelled', stop);
        call.on('close', stop);
        call.on('error', stop);
        call.on('finish', stop);
      },
      GetMetricSpec: (call: grpc.ServerUnaryCall<ScaledObjectRef, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const refused = this.refusal(call, call.request);
        if (refused) return cb(refused);
        const snap = lookup(serviceOf(call.request));
        if (snap instanceof Error) return cb(snap);
        if (!snap) return cb(notFound(call.request));
        const s = this.spec(call.request, snap);
        cb(null, {
          metricSpecs: [{ metricName: s.metricName, targetSize: s.targetSize, targetSizeFloat: s.targetSizeFloat }],
        });
      },
      GetMetrics: (
        call: grpc.ServerUnaryCall<{ scaledObjectRef: ScaledObjectRef; metricName: string }, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) => {
        const ref = call.request.scaledObjectRef;
        const refused = this.refusal(call, ref);
        if (refused) return cb(refused);
        const snap = lookup(serviceOf(ref));
        if (snap instanceof Error) return cb(snap);
        if (!snap) return cb(notFound(ref));
        const s = this.spec(ref, snap);
        const value = s.metric === undefined ? (snap.desiredReplicas ?? 0) : (snap.metricTotals[s.metric] ?? 0);
        cb(null, {
          metricValues: [{ metricName: s.metricName, metricValue: Math.round(value), metricValueFloat: value }],
        });
      },
    };
  }

  private capacity(): grpc.ServiceError | undefined {
    if (this.watcherCount < this.options.maxWatchers) return undefined;
    return error(grpc.status.RESOURCE_EXHAUSTED, `too many StreamIsActive watchers (${this.options.maxWatchers})`);
  }

  /** Ends every watcher and stops listening for decisions. */
  close(): void {
    this.subscription();
    for (const set of this.watchers.values()) {
      for (const w of set) w.call.end();
    }
    this.watchers.clear();
    this.cache.clear();
  }
}

function isActive(snap: KedaServiceSnapshot | undefined): boolean {
  if (!snap) return false;
  return (snap.desiredReplicas ?? 0) > 0 || snap.rps > 0;
}

function error(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** A tiny event hub the coordinator uses to tell the KEDA scaler about new decisions. */
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
