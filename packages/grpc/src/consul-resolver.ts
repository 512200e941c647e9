/**
 * The `consul:` name resolver. Each channel's resolver subscribes to a `ServiceWatcher` watch (a Consul blocking
 * query shared by every channel for the same service) and pushes each change to grpc-js as it arrives: no polling.
 * Weight, zone, tags and meta of each address travel to the LB policy in a resolver attribute.
 */
import type { ServiceWatcher, Watch } from '@shoal/consul';
import { errorFields } from '@shoal/core';
import type { Disposable, Instance, Logger } from '@shoal/core';
import {
  INSTANCES_ATTRIBUTE,
  LOCAL_ZONE_ATTRIBUTE,
  Status,
  pushEndpoints,
  pushResolutionError,
  subchannelAddressToString,
} from './grpc-js-compat.js';
import type {
  ChannelOptions,
  Endpoint,
  GrpcUri,
  Resolver,
  ResolverClass,
  ResolverListenerFn,
} from './grpc-js-compat.js';
import { parseConsulTarget } from './consul-target.js';
import type { ConsulTarget } from './consul-target.js';
import { validateServiceConfigJson } from './service-config.js';

/** A watcher borrowed for the life of one resolver. */
export interface WatcherLease {
  readonly watcher: ServiceWatcher;
  release(): void;
}

export interface ResolverEnvironment {
  readonly logger: Logger;
  /** Returns the watcher for `consulUrl` (undefined = the default from `register()`), counted until released. */
  acquireWatcher(consulUrl: string | undefined): WatcherLease;
}

export function instancesToResolution(instances: readonly Instance[]): {
  endpoints: Endpoint[];
  byAddress: Map<string, Instance>;
} {
  const endpoints: Endpoint[] = [];
  const byAddress = new Map<string, Instance>();
  for (const instance of instances) {
    const address = { host: instance.address, port: instance.port };
    const key = subchannelAddressToString(address);
    if (byAddress.has(key)) continue;
    byAddress.set(key, instance);
    endpoints.push({ addresses: [address] });
  }
  return { endpoints, byAddress };
}

export function createConsulResolverClass(env: ResolverEnvironment): ResolverClass {
  return class ConsulResolver implements Resolver {
    private readonly target: ConsulTarget;
    private readonly lease: WatcherLease;
    private readonly watch: Watch;
    private readonly disposers: Disposable[] = [];
    private readonly serviceConfigError: { code: number; details: string } | null;
    private readonly logger: Logger;
    private destroyed = false;
    private scheduled = false;
    private latest: readonly Instance[] | undefined;

    static getDefaultAuthority(target: GrpcUri): string {
      return parseConsulTarget(target).service;
    }

    constructor(
      target: GrpcUri,
      private readonly listener: ResolverListenerFn,
      options: ChannelOptions,
    ) {
      this.target = parseConsulTarget(target);
      this.logger = env.logger.child({ component: 'grpc-consul-resolver', service: this.target.service });
      this.serviceConfigError = checkChannelServiceConfig(options);
      this.lease = env.acquireWatcher(this.target.consulUrl);
      this.watch = this.lease.watcher.watch(this.target.service, {
        ...(this.target.tag !== undefined ? { tag: this.target.tag } : {}),
        ...(this.target.dc !== undefined ? { dc: this.target.dc } : {}),
      });
      this.disposers.push(
        this.watch.onChange((instances) => {
          this.latest = instances;
          this.push();
        }),
        this.watch.onError((error) => {
          this.logger.warn(errorFields(error), 'consul watch failed; keeping the last instance list');
          if (this.watch.current() === undefined && !this.destroyed) {
            pushResolutionError(
              this.listener,
              { code: Status.UNAVAILABLE, details: `consul:${this.target.service}: ${error.message}` },
              `consul watch of ${this.target.service} failed`,
            );
          }
        }),
      );
      this.watch.ready().then(
        (instances) => {
          if (this.latest === undefined) {
            this.latest = instances;
            this.push();
          }
        },
        () => {
          // Errors reach us through onError; a watch closed before its first list rejects here, harmlessly.
        },
      );
    }

    /** grpc-js asks again (e.g. a connection dropped): answer from the watch, asynchronously as the API requires. */
    updateResolution(): void {
      if (this.destroyed || this.scheduled) return;
      const current = this.watch.current();
      if (current === undefined) return;
      this.latest = current;
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.push();
      });
    }

    private push(): void {
      if (this.destroyed || this.latest === undefined) return;
      const { endpoints, byAddress } = instancesToResolution(this.latest);
      const attributes: Record<string, unknown> = { [INSTANCES_ATTRIBUTE]: byAddress };
      if (this.target.zone !== undefined) attributes[LOCAL_ZONE_ATTRIBUTE] = this.target.zone;
      const note = `consul service ${this.target.service}${this.watch.stale ? ' (stale list: Consul unreachable)' : ''}`;
      pushEndpoints(this.listener, endpoints, attributes, this.serviceConfigError, note);
    }

    destroy(): void {
      if (this.destroyed) return;
      this.destroyed = true;
      for (const dispose of this.disposers.splice(0)) dispose();
      this.watch.close();
      this.lease.release();
    }
  };
}

/**
 * Checks the `shoal_*` entries of the channel's own `grpc.service_config`. grpc-js silently falls back to
 * pick_first when a policy's config does not parse; for `consul:` channels we fail the channel with the reason.
 */
function checkChannelServiceConfig(options: ChannelOptions): { code: number; details: string } | null {
  const raw = options['grpc.service_config'];
  if (typeof raw !== 'string') return null;
  try {
    validateServiceConfigJson(JSON.parse(raw));
    return null;
  } catch (error) {
    return { code: Status.UNAVAILABLE, details: `invalid grpc.service_config: ${(error as Error).message}` };
  }
}
