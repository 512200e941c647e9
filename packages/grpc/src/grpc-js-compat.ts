/**
 * Everything that depends on the shape of `@grpc/grpc-js`'s experimental extension API lives here, so that the
 * next grpc-js minor release (which has changed this API at almost every minor so far) is a change to this one
 * file. The rest of the package talks to grpc-js only through the names exported below.
 *
 * Written against grpc-js 1.14 (resolver listener is a function returning a boolean, `updateAddressList` takes a
 * `StatusOr<Endpoint[]>` and a resolution note, `onCallEnded` receives the trailers, `LeafLoadBalancer` takes a
 * resolution note). `assertSupportedGrpcJs()` refuses older copies with a clear error instead of failing later
 * inside a channel.
 */
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import type {
  ChannelOptions,
  Metadata,
  ServiceConfig,
  StatusObject,
  status as GrpcStatus,
  experimental as Experimental,
} from '@grpc/grpc-js';
import { InvalidArgumentError } from '@shoal/core';

export type LoadBalancer = Experimental.LoadBalancer;
export type ChannelControlHelper = Experimental.ChannelControlHelper;
export type TypedLoadBalancingConfig = Experimental.TypedLoadBalancingConfig;
export type Picker = Experimental.Picker;
export type PickArgs = Experimental.PickArgs;
export type PickResult = Experimental.PickResult;
export type Endpoint = Experimental.Endpoint;
export type SubchannelAddress = Experimental.SubchannelAddress;
export type GrpcUri = Experimental.GrpcUri;
export type Resolver = Experimental.Resolver;
export type StatusOr<T> = Experimental.StatusOr<T>;
export type { ChannelOptions, Metadata, ServiceConfig, StatusObject };

const experimental = grpc.experimental;

/** The minimum grpc-js version whose extension API this file speaks. */
export const MIN_GRPC_JS_VERSION = '1.14.0';

/** The version of the application's `@grpc/grpc-js` (the peer dependency Shoal registers into). */
export function grpcJsVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('@grpc/grpc-js/package.json') as { version: string }).version;
}

/** Throws when the installed grpc-js is older than the extension API this package is written for. */
export function assertSupportedGrpcJs(version = grpcJsVersion()): void {
  const [major, minor] = version.split('.').map(Number);
  if (major !== 1 || minor === undefined || !(minor >= 14)) {
    throw new InvalidArgumentError(
      `@shoal/grpc needs @grpc/grpc-js >= ${MIN_GRPC_JS_VERSION} < 2 (its load-balancing extension API changes at every minor), got ${JSON.stringify(version)}`,
    );
  }
}

export const ConnectivityState = grpc.connectivityState;
export type ConnectivityState = grpc.connectivityState;
export const Status: typeof GrpcStatus = grpc.status;
export const PickResultType = experimental.PickResultType;
export const QueuePicker = experimental.QueuePicker;
export const UnavailablePicker = experimental.UnavailablePicker;

/**
 * Key of the resolver attribute that carries per-address instance data (weight, zone, meta) to the LB policy.
 * grpc-js 1.14 passes resolver attributes to `updateAddressList` merged into the channel options; keys with the
 * `SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX` prefix are kept out of subchannel arguments, so a changing attribute does
 * not defeat subchannel reuse.
 */
export const INSTANCES_ATTRIBUTE = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.shoal.instances`;
/** Key of the resolver attribute carrying the client's zone from the target URI (`?zone=`). */
export const LOCAL_ZONE_ATTRIBUTE = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.shoal.local_zone`;

/** The trailer in which servers send an `xds.data.orca.v3.OrcaLoadReport` (per-call ORCA). */
export const ORCA_TRAILER = 'endpoint-load-metrics-bin';

export interface ResolverClass {
  new (target: GrpcUri, listener: ResolverListenerFn, options: ChannelOptions): Resolver;
  getDefaultAuthority(target: GrpcUri): string;
}

export function registerResolver(scheme: string, ctor: ResolverClass): void {
  experimental.registerResolver(scheme, ctor);
}

export function registerLoadBalancerType(
  name: string,
  lb: new (helper: ChannelControlHelper) => LoadBalancer,
  config: { new (...args: never[]): TypedLoadBalancingConfig; createFromJson(obj: unknown): TypedLoadBalancingConfig },
): void {
  experimental.registerLoadBalancerType(name, lb, config as never);
}

export function isLoadBalancerNameRegistered(name: string): boolean {
  return experimental.isLoadBalancerNameRegistered(name);
}

export function createChildChannelControlHelper(
  parent: ChannelControlHelper,
  overrides: Partial<ChannelControlHelper>,
): ChannelControlHelper {
  return experimental.createChildChannelControlHelper(parent, overrides);
}

export function subchannelAddressToString(address: SubchannelAddress): string {
  return experimental.subchannelAddressToString(address);
}

/** A resolver listener in the 1.14 shape: a function that returns whether the LB policy accepted the update. */
export type ResolverListenerFn = Experimental.ResolverListener;

/** Hands a successful resolution (endpoints plus attributes) to the channel. */
export function pushEndpoints(
  listener: ResolverListenerFn,
  endpoints: Endpoint[],
  attributes: Record<string, unknown>,
  serviceConfig: ServiceConfig | { code: number; details: string } | null,
  note: string,
): boolean {
  let config: StatusOr<ServiceConfig> | null = null;
  if (serviceConfig !== null) {
    config =
      'code' in serviceConfig
        ? experimental.statusOrFromError({ code: serviceConfig.code, details: serviceConfig.details })
        : experimental.statusOrFromValue(serviceConfig);
  }
  return listener(experimental.statusOrFromValue(endpoints), attributes, config, note);
}

/** Hands a resolution failure to the channel. */
export function pushResolutionError(listener: ResolverListenerFn, error: Partial<StatusObject>, note: string): boolean {
  return listener(
    experimental.statusOrFromError({ code: error.code ?? Status.UNAVAILABLE, details: error.details ?? note }),
    {},
    null,
    note,
  );
}

/** One endpoint's connection management, delegated to grpc-js's pick_first leaf (happy eyeballs, sticky TF). */
export interface Leaf {
  startConnecting(): void;
  updateEndpoint(endpoint: Endpoint, options: ChannelOptions): void;
  getConnectivityState(): ConnectivityState;
  getPicker(): Picker;
  getEndpoint(): Endpoint;
  exitIdle(): void;
  destroy(): void;
}

export function createLeaf(
  endpoint: Endpoint,
  helper: ChannelControlHelper,
  options: ChannelOptions,
  resolutionNote: string,
): Leaf {
  return new experimental.LeafLoadBalancer(endpoint, helper, options, resolutionNote);
}

/** The value `updateAddressList` receives: endpoints or an error status. */
export function endpointListResult(
  list: StatusOr<Endpoint[]>,
): { ok: true; endpoints: Endpoint[] } | { ok: false; error: StatusObject } {
  return list.ok ? { ok: true, endpoints: list.value } : { ok: false, error: list.error };
}

/** Hook called when a call ends: status code, details and (in 1.14) the trailers. */
export type CallEndedHook = (code: number, details: string, trailers: Metadata | undefined) => void;

/**
 * Wraps the leaf's pick result so Shoal sees the call start and end. `onCallEnded` is adapted to the 1.14 signature
 * `(code, details, trailers)`; the leaf's own hooks (if any) still run.
 */
export function decoratePick(result: PickResult, onStarted: () => void, onEnded: CallEndedHook): PickResult {
  const innerStarted = result.onCallStarted;
  const innerEnded = result.onCallEnded;
  return {
    pickResultType: result.pickResultType,
    subchannel: result.subchannel,
    status: result.status,
    onCallStarted: () => {
      onStarted();
      if (innerStarted) innerStarted();
    },
    onCallEnded: (code, details, trailers) => {
      onEnded(code, details, trailers);
      if (innerEnded) innerEnded(code, details, trailers);
    },
  };
}

export function queuePick(): PickResult {
  return {
    pickResultType: PickResultType.QUEUE,
    subchannel: null,
    status: null,
    onCallStarted: null,
    onCallEnded: null,
  };
}

export function failPick(code: number, details: string): PickResult {
  return {
    pickResultType: PickResultType.TRANSIENT_FAILURE,
    subchannel: null,
    status: { code, details, metadata: new grpc.Metadata() },
    onCallStarted: null,
    onCallEnded: null,
  };
}
