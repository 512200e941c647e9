/**
 * The standard `grpc.health.v1.Health` service (Check and Watch), wired to a status source: usually the
 * `ServiceRegistration` of this process, so the gRPC health answer and Consul agree. The two tiny messages are
 * encoded by hand, so no .proto file has to be found at run time.
 */
import * as grpc from '@grpc/grpc-js';
import type { Disposable } from '@shoal/core';
import { InvalidArgumentError, assertOneOf, describeValue } from '@shoal/core';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const STATUS_NUMBER: Record<ServingStatus, number> = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };
const SERVING_STATUSES = Object.keys(STATUS_NUMBER) as ServingStatus[];

/** Anything that can say whether this process is serving, and tell when that changes. */
export interface HealthStatusSource {
  /** Current status. */
  status(): ServingStatus;
  /** Subscribe to changes; returns a function that unsubscribes. */
  onChange(listener: (status: ServingStatus) => void): Disposable;
  /** True once the process is going away (draining): Watch streams are then ended after NOT_SERVING. */
  ending?(): boolean;
}

const SERVING_STATES = new Set(['registered', 'ready']);
const ENDING_STATES = new Set(['draining', 'drained', 'closed']);

/**
 * What the health service follows through `state` and `onStateChange`: `@shoal/consul`'s `ServiceRegistration`
 * (SERVING while `registered`) or `@shoal/agent`'s `Agent` (SERVING while `ready`). The states `draining`,
 * `drained` and `closed` end the service's life: open Watch streams get NOT_SERVING and are ended (status OK),
 * and a later Watch gets NOT_SERVING and ends at once, so a drain never waits for health watchers.
 */
export interface RegistrationLike {
  readonly instance?: { readonly service: string };
  readonly state?: string;
  onStateChange(listener: (state: string) => void): Disposable;
}

function encodeRequest(service: string): Buffer {
  const body = Buffer.from(service, 'utf8');
  if (body.length === 0) return Buffer.alloc(0);
  if (body.length > 127)
    return Buffer.concat([Buffer.from([0x0a, (body.length & 0x7f) | 0x80, body.length >> 7]), body]);
  return Buffer.concat([Buffer.from([0x0a, body.length]), body]);
}

function decodeRequest(buf: Buffer): { service: string } {
  let pos = 0;
  let service = '';
  while (pos < buf.length) {
    const tag = buf[pos++]!;
    let len = 0;
    let shift = 0;
    const wire = tag & 7;
    if (wire === 2) {
      for (;;) {
        const b = buf[pos++];
        if (b === undefined) throw new Error('truncated HealthCheckRequest');
        len |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
        shift += 7;
      }
      if (tag >> 3 === 1) service = buf.subarray(pos, pos + len).toString('utf8');
      pos += len;
    } else if (wire === 0) {
      while ((buf[pos++]! & 0x80) !== 0 && pos < buf.length);
    } else throw new Error(`unexpected wire type ${wire} in HealthCheckRequest`);
  }
  return { service };
}

function encodeResponse(res: { status: ServingStatus }): Buffer {
  const n = STATUS_NUMBER[res.status];
  return n === 0 ? Buffer.alloc(0) : Buffer.from([0x08, n]);
}

function decodeResponse(buf: Buffer): { status: ServingStatus } {
  let status: ServingStatus = 'UNKNOWN';
  if (buf.length >= 2 && buf[0] === 0x08) status = SERVING_STATUSES[buf[1]!] ?? 'UNKNOWN';
  return { status };
}

/** The service definition of `grpc.health.v1.Health`, usable with `server.addService` and `makeGenericClientConstructor`. */
export const HEALTH_SERVICE_DEFINITION = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: { service?: string }) => encodeRequest(v.service ?? ''),
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
    originalName: 'Check',
  },
  watch: {
    path: '/grpc.health.v1.Health/Watch',
    requestStream: false,
    responseStream: true,
    requestSerialize: (v: { service?: string }) => encodeRequest(v.service ?? ''),
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
    originalName: 'Watch',
  },
} satisfies grpc.ServiceDefinition;

/** A client for `grpc.health.v1.Health` (for probes and tests). */
export const HealthClient = grpc.makeGenericClientConstructor(HEALTH_SERVICE_DEFINITION, 'grpc.health.v1.Health');

export interface HealthServiceOptions {
  /** Service names answered besides `""` (the whole server). Default: the registration's service name, if any. */
  services?: string[];
}

/** Status per service name, Check/Watch handlers, and an optional binding to a status source. */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<
    string,
    Set<grpc.ServerWritableStream<{ service: string }, { status: ServingStatus }>>
  >();
  private unbind: Disposable | undefined;
  private closed = false;
  /** The source is going away: Watch streams get the current status and end. */
  private ending = false;

  constructor(source?: HealthStatusSource | RegistrationLike, options: HealthServiceOptions = {}) {
    const names = new Set(['', ...(options.services ?? [])]);
    if (source && isRegistration(source) && source.instance) names.add(source.instance.service);
    const status = source ? toSource(source) : undefined;
    for (const name of names) this.statuses.set(name, status ? status.status() : 'SERVING');
    this.ending = status?.ending?.() ?? false;
    if (status) {
      this.unbind = status.onChange((s) => {
        for (const name of names) this.setStatus(name, s);
        if (!this.ending && status.ending?.() === true) this.endWatches();
      });
    }
  }

  /** Sets the status of `service` (`""` = the whole server) and notifies Watch streams. */
  setStatus(service: string, status: ServingStatus): void {
    if (typeof service !== 'string') {
      throw new InvalidArgumentError(`service must be a string, got ${describeValue(service)}`);
    }
    assertOneOf('status', status, SERVING_STATUSES);
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const call of this.watchers.get(service) ?? []) call.write({ status });
  }

  getStatus(service = ''): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** The handlers for `server.addService(HEALTH_SERVICE_DEFINITION, health.implementation)`. */
  readonly implementation: grpc.UntypedServiceImplementation = {
    check: (
      call: grpc.ServerUnaryCall<{ service: string }, { status: ServingStatus }>,
      callback: grpc.sendUnaryData<{ status: ServingStatus }>,
    ) => {
      const status = this.statuses.get(call.request.service);
      if (status === undefined) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` });
        return;
      }
      callback(null, { status });
    },
    watch: (call: grpc.ServerWritableStream<{ service: string }, { status: ServingStatus }>) => {
      const service = call.request.service;
      if (this.closed) {
        call.end();
        return;
      }
      if (this.ending) {
        call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
        call.end();
        return;
      }
      let set = this.watchers.get(service);
      if (!set) this.watchers.set(service, (set = new Set()));
      set.add(call);
      call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
      const remove = () => set.delete(call);
      call.on('cancelled', remove);
      call.on('close', remove);
      call.on('error', remove);
    },
  };

  /** Adds the service to a server. */
  addTo(server: grpc.Server): this {
    server.addService(HEALTH_SERVICE_DEFINITION, this.implementation);
    return this;
  }

  /** Ends every open Watch stream (status OK) after the status it already got; later Watches end at once. */
  private endWatches(): void {
    this.ending = true;
    for (const set of this.watchers.values()) for (const call of set) call.end();
    this.watchers.clear();
  }

  /** Stops following the source and ends open Watch streams (so a server can shut down gracefully). */
  close(): void {
    this.closed = true;
    this.unbind?.();
    this.unbind = undefined;
    for (const set of this.watchers.values()) for (const call of set) call.end();
    this.watchers.clear();
  }
}

function isRegistration(source: HealthStatusSource | RegistrationLike): source is RegistrationLike {
  return typeof (source as RegistrationLike).onStateChange === 'function';
}

function toSource(source: HealthStatusSource | RegistrationLike): HealthStatusSource {
  if (!isRegistration(source)) {
    if (typeof source.status !== 'function' || typeof source.onChange !== 'function') {
      throw new InvalidArgumentError(
        `source must be a ServiceRegistration or an object with status() and onChange(), got ${describeValue(source)}`,
      );
    }
    return source;
  }
  const serving = (state: string | undefined): ServingStatus =>
    state !== undefined && SERVING_STATES.has(state) ? 'SERVING' : 'NOT_SERVING';
  let current = serving(source.state);
  let ending = source.state !== undefined && ENDING_STATES.has(source.state);
  return {
    status: () => current,
    ending: () => ending,
    onChange: (listener) =>
      source.onStateChange((state) => {
        current = serving(state);
        ending ||= ENDING_STATES.has(state);
        listener(current);
      }),
  };
}

/**
 * Adds `grpc.health.v1.Health` to `server`, answering from `source` (a `ServiceRegistration`: SERVING while
 * registered; an `Agent`: SERVING while ready, and Watch streams end when its drain starts; NOT_SERVING
 * otherwise; or any `HealthStatusSource`). Without a source everything is SERVING until
 * `setStatus` says otherwise.
 */
export function addHealthService(
  server: grpc.Server,
  source?: HealthStatusSource | RegistrationLike,
  options?: HealthServiceOptions,
): HealthService {
  return new HealthService(source, options).addTo(server);
}
