/**
 * The grpc-js load-balancing policy behind every `shoal_*` name: one `@shoal/balancer` `Balancer` per channel picks
 * the endpoint, grpc-js's pick_first leaf per endpoint owns the connection (the "petiole" pattern round_robin
 * uses), and each call's start, end, status, latency and ORCA trailer are fed back into the balancer.
 */
import { Balancer } from '@shoal/balancer';
import type { PickHandle } from '@shoal/balancer';
import { createInstance, errorFields } from '@shoal/core';
import type { Clock, Instance, Logger, MetricsRegistry } from '@shoal/core';
import {
  ConnectivityState,
  INSTANCES_ATTRIBUTE,
  LOCAL_ZONE_ATTRIBUTE,
  ORCA_TRAILER,
  PickResultType,
  QueuePicker,
  Status,
  UnavailablePicker,
  createChildChannelControlHelper,
  createLeaf,
  decoratePick,
  endpointListResult,
  failPick,
  queuePick,
  subchannelAddressToString,
} from './grpc-js-compat.js';
import type {
  ChannelControlHelper,
  ChannelOptions,
  Endpoint,
  Leaf,
  LoadBalancer,
  Metadata,
  PickArgs,
  PickResult,
  Picker,
  StatusOr,
  TypedLoadBalancingConfig,
} from './grpc-js-compat.js';
import { decodeOrcaLoadReport } from './orca.js';
import type { OrcaLoadReport } from './orca.js';
import { resolvePolicyConfig } from './policy-config.js';
import type { ResolvedPolicyConfig, ShoalPolicyName } from './policy-config.js';

/** Metadata grpc-js adds to every retry and hedge attempt after the first (gRFC A6). */
const PREVIOUS_ATTEMPTS = 'grpc-previous-rpc-attempts';

/** What every policy instance shares: set by `register()`. */
export interface PolicyEnvironment {
  readonly logger: Logger;
  readonly registry: MetricsRegistry | undefined;
  readonly clock: Clock;
}

/** grpc-js's typed config object for one `shoal_*` policy. */
export abstract class ShoalPolicyConfigBase implements TypedLoadBalancingConfig {
  constructor(
    readonly resolved: ResolvedPolicyConfig,
    readonly raw: unknown,
  ) {}
  getLoadBalancerName(): string {
    return this.resolved.policy;
  }
  toJsonObject(): object {
    return { [this.resolved.policy]: this.raw ?? {} };
  }
}

/** Builds the config class grpc-js needs for `name` (a constructor with a static `createFromJson`). */
export interface PolicyConfigClass {
  new (resolved: ResolvedPolicyConfig, raw: unknown): ShoalPolicyConfigBase;
  createFromJson(obj: unknown): ShoalPolicyConfigBase;
}

export function configClassFor(name: ShoalPolicyName): PolicyConfigClass {
  return class extends ShoalPolicyConfigBase {
    static createFromJson(obj: unknown): ShoalPolicyConfigBase {
      return new this(resolvePolicyConfig(name, obj), obj);
    }
  };
}

interface Child {
  instance: Instance;
  key: string;
  leaf: Leaf;
  state: ConnectivityState;
}

/** Instances for endpoints the resolver gave no data for (e.g. an `ipv4:` target). */
function syntheticInstance(key: string, endpoint: Endpoint): Instance {
  const first = endpoint.addresses[0] as { host?: string; port?: number; path?: string } | undefined;
  return createInstance({
    id: key,
    service: 'grpc',
    address: first?.host ?? first?.path ?? key,
    port: first?.port ?? 0,
  });
}

export function loadFromOrca(report: OrcaLoadReport): {
  utilization?: number;
  cpu?: number;
  rps?: number;
  eps?: number;
} {
  const load: { utilization?: number; cpu?: number; rps?: number; eps?: number } = {};
  const util = report.applicationUtilization || report.cpuUtilization;
  if (util !== undefined) load.utilization = util;
  if (report.cpuUtilization !== undefined) load.cpu = report.cpuUtilization;
  if (report.rpsFractional !== undefined) load.rps = report.rpsFractional;
  if (report.eps !== undefined) load.eps = report.eps;
  return load;
}

export function createPolicyClass(
  name: ShoalPolicyName,
  env: PolicyEnvironment,
): { LoadBalancer: new (helper: ChannelControlHelper) => LoadBalancer; Config: PolicyConfigClass } {
  const ConfigClass = configClassFor(name);

  class ShoalPolicy implements LoadBalancer {
    private readonly children = new Map<string, Child>();
    /** Instance ids whose connection is not READY: excluded from picks without changing the balancer's set. */
    private readonly notReady = new Set<string>();
    private balancer: Balancer | undefined;
    private balancerKey = '';
    private config: ResolvedPolicyConfig | undefined;
    private state: ConnectivityState = ConnectivityState.IDLE;
    private lastError: string | null = null;
    /** Set while the latest config could not build a balancer: the channel fails calls with it. */
    private configError: string | undefined;
    private paused = false;
    private destroyed = false;
    private readonly childHelper: ChannelControlHelper;
    private readonly logger: Logger;

    constructor(private readonly helper: ChannelControlHelper) {
      this.logger = env.logger.child({ component: 'grpc-policy', policy: name });
      this.childHelper = createChildChannelControlHelper(helper, {
        updateState: (_state, _picker, errorMessage) => {
          if (errorMessage) this.lastError = errorMessage;
          this.refresh();
        },
      });
    }

    updateAddressList(
      list: StatusOr<Endpoint[]>,
      lbConfig: TypedLoadBalancingConfig,
      options: ChannelOptions,
      note: string,
    ): boolean {
      if (!(lbConfig instanceof ConfigClass)) return false;
      const result = endpointListResult(list);
      if (!result.ok) {
        // Keep serving the endpoints we have; only report the error when there are none.
        if (this.children.size === 0) {
          this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker(result.error), result.error.details);
        }
        return true;
      }
      const config = lbConfig.resolved;
      const zoneFromTarget = (options as Record<string, unknown>)[LOCAL_ZONE_ATTRIBUTE];
      const localZone = config.localZone ?? (typeof zoneFromTarget === 'string' ? zoneFromTarget : undefined);
      const key = JSON.stringify([lbConfig.toJsonObject(), localZone ?? null]);
      if (!this.balancer || key !== this.balancerKey) {
        const previous = this.balancer;
        try {
          this.balancer = new Balancer(config.balancer, {
            ...(localZone !== undefined ? { localZone } : {}),
            name,
            logger: env.logger,
            ...(env.registry ? { registry: env.registry } : {}),
            clock: env.clock,
          });
        } catch (error) {
          const details = `${name}: ${(error as Error).message}`;
          this.logger.error(errorFields(error), 'invalid policy configuration');
          this.configError = details;
          this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
          // Accept the resolution so calls fail with this message instead of waiting for name resolution.
          return true;
        }
        this.configError = undefined;
        this.balancerKey = key;
        if (previous) previous.close().catch(() => {});
      }
      this.config = config;

      const attr = (options as Record<string, unknown>)[INSTANCES_ATTRIBUTE];
      const known = attr instanceof Map ? (attr as Map<string, Instance>) : undefined;
      const next = new Map<string, Child>();
      const fresh: Child[] = [];
      this.paused = true;
      for (const endpoint of result.endpoints) {
        const first = endpoint.addresses[0];
        if (!first) continue;
        const addrKey = subchannelAddressToString(first);
        const instance = known?.get(addrKey) ?? syntheticInstance(addrKey, endpoint);
        if (next.has(instance.id)) continue;
        const old = this.children.get(instance.id);
        if (old && old.key === addrKey) {
          old.instance = instance;
          old.leaf.updateEndpoint(endpoint, options);
          next.set(instance.id, old);
        } else {
          const child: Child = {
            instance,
            key: addrKey,
            leaf: createLeaf(endpoint, this.childHelper, options, note),
            state: ConnectivityState.IDLE,
          };
          next.set(instance.id, child);
          fresh.push(child);
        }
      }
      for (const [id, child] of this.children) {
        if (next.get(id) !== child) child.leaf.destroy();
      }
      this.children.clear();
      for (const [id, child] of next) this.children.set(id, child);
      this.balancer.setEndpoints([...next.values()].map((c) => c.instance));
      for (const child of fresh) child.leaf.startConnecting();
      this.paused = false;
      if (this.children.size === 0) {
        const details = `${name}: no addresses resolved${note ? ` (${note})` : ''}`;
        this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
        return true;
      }
      this.refresh();
      return true;
    }

    /** Recomputes the aggregate state from the children and hands grpc-js a fresh picker. */
    private refresh(): void {
      if (this.paused || this.destroyed) return;
      if (this.configError !== undefined) {
        const details = this.configError;
        this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
        return;
      }
      let ready = 0;
      let connecting = 0;
      let failing = 0;
      this.notReady.clear();
      for (const [id, child] of this.children) {
        const previous = child.state;
        child.state = child.leaf.getConnectivityState();
        if (previous === ConnectivityState.READY && child.state !== ConnectivityState.READY) {
          // A connection dropped: ask the resolver for news (our resolver answers from its watch, no extra load).
          this.helper.requestReresolution();
        }
        if (child.state === ConnectivityState.READY) ready++;
        else {
          this.notReady.add(id);
          if (child.state === ConnectivityState.CONNECTING) connecting++;
          else if (child.state === ConnectivityState.TRANSIENT_FAILURE) failing++;
          else child.leaf.exitIdle(); // keep every endpoint connected, as round_robin does
        }
      }
      if (ready > 0) this.publish(ConnectivityState.READY, new ShoalPicker(this), null);
      else if (connecting > 0 || failing < this.children.size)
        this.publish(ConnectivityState.CONNECTING, new QueuePicker(this), null);
      else {
        const details = `${name}: no connection established. Last error: ${this.lastError ?? 'none'}`;
        this.publish(ConnectivityState.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
      }
    }

    private publish(state: ConnectivityState, picker: Picker, errorMessage: string | null): void {
      if (this.destroyed) return;
      this.state = state;
      this.helper.updateState(state, picker, errorMessage);
    }

    /** Called by the picker: choose an endpoint with the balancer and delegate to its leaf's picker. */
    pick(args: PickArgs): PickResult {
      const balancer = this.balancer;
      const config = this.config;
      if (!balancer || !config) return queuePick();
      // grpc-js marks its retry and hedge attempts (gRFC A6): each takes one retry from the budget, or fails at once
      // without reaching any server. The budget's own pick below counts the attempt as a request.
      if (args.metadata.get(PREVIOUS_ATTEMPTS).length > 0 && !balancer.tryRetry()) {
        return failPick(Status.UNAVAILABLE, `${name}: retry budget spent, attempt not sent`);
      }
      let key: string | Buffer | undefined;
      if (config.hashHeader !== undefined) {
        const value = args.metadata.get(config.hashHeader)[0];
        if (value !== undefined) key = value;
      }
      let handle: PickHandle;
      try {
        handle = balancer.pick(key === undefined ? { exclude: this.notReady } : { key, exclude: this.notReady });
      } catch (error) {
        return failPick(Status.UNAVAILABLE, `${name}: ${(error as Error).message}`);
      }
      const child = this.children.get(handle.instance.id);
      const result = child?.leaf.getPicker().pick(args);
      if (!child || !result || result.pickResultType !== PickResultType.COMPLETE || !result.subchannel) {
        // The leaf changed state since the last refresh (a new picker is on its way). Release the handle at once
        // so it does not count as in flight; a zero-latency success barely moves a time-decayed EWMA.
        handle.complete('success', 0);
        return result ?? queuePick();
      }
      const clock = env.clock;
      let startedAt = -1;
      const failureCodes = config.failureCodes;
      return decoratePick(
        result,
        () => {
          startedAt = clock.monotonic();
        },
        (code: number, _details: string, trailers: Metadata | undefined) => {
          const latency = startedAt < 0 ? 0 : clock.monotonic() - startedAt;
          const outcome = failureCodes.has(code) ? 'failure' : 'success';
          const raw = trailers?.get(ORCA_TRAILER)[0];
          if (raw instanceof Buffer && raw.length > 0) {
            try {
              handle.complete(outcome, latency, loadFromOrca(decodeOrcaLoadReport(raw)));
              return;
            } catch (error) {
              this.logger.debug(errorFields(error), 'ignored a malformed ORCA trailer');
            }
          }
          handle.complete(outcome, latency);
        },
      );
    }

    exitIdle(): void {
      for (const child of this.children.values()) child.leaf.exitIdle();
    }

    resetBackoff(): void {
      // The leaves own connection backoff; nothing of ours to reset.
    }

    destroy(): void {
      this.destroyed = true;
      for (const child of this.children.values()) child.leaf.destroy();
      this.children.clear();
      const balancer = this.balancer;
      this.balancer = undefined;
      if (balancer) balancer.close().catch(() => {});
    }

    getTypeName(): string {
      return name;
    }

    /** For tests and debugging. */
    get connectivityState(): ConnectivityState {
      return this.state;
    }
  }

  class ShoalPicker implements Picker {
    constructor(private readonly policy: ShoalPolicy) {}
    pick(args: PickArgs): PickResult {
      return this.policy.pick(args);
    }
  }

  return { LoadBalancer: ShoalPolicy, Config: ConfigClass };
}
