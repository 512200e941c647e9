/**
 * `register()`: installs the `consul:` resolver and the `shoal_*` load-balancing policies into the application's
 * `@grpc/grpc-js` (a peer dependency: grpc-js keeps these registries in module-level maps, so registering into a
 * second copy would silently do nothing). Importing this package registers nothing.
 */
import {
  Activator,
  DEFAULT_CONSUL_URL,
  ServiceWatcher,
  resolveActivatorOptions,
  resolveConsulConnectionOptions,
} from '@shoal/consul';
import type { ActivatorOptions, ConsulConnectionOptions } from '@shoal/consul';
import {
  InvalidArgumentError,
  assertKnownKeys,
  assertObject,
  componentLogger,
  describeValue,
  errorFields,
  realClock,
} from '@shoal/core';
import type { Clock, Logger, MetricsRegistry } from '@shoal/core';
import { createPolicyClass } from './balancer-policy.js';
import type { PolicyEnvironment } from './balancer-policy.js';
import { createConsulResolverClass } from './consul-resolver.js';
import type { ResolverEnvironment, WatcherLease } from './consul-resolver.js';
import { assertSupportedGrpcJs, registerLoadBalancerType, registerResolver } from './grpc-js-compat.js';
import { POLICY_NAMES } from './policy-config.js';

export interface RegisterOptions {
  /** Consul agent used by `consul:///service` targets (no authority). Default `http://127.0.0.1:8500`. */
  consul?: ConsulConnectionOptions;
  /** Use this watcher for `consul:///service` targets instead of creating one (it is not closed by Shoal). */
  watcher?: ServiceWatcher;
  logger?: Logger;
  /** Registry for balancer and watcher metrics. Default: a fresh registry per component. */
  registry?: MetricsRegistry;
  clock?: Clock;
  /**
   * The default activator of clients made by `createClient` afterwards (wake from zero: calls to a `consul:`
   * service with no healthy instance wait and the coordinator is told). Options (one `Activator` is built, with this
   * registration's logger, registry and clock, and closed by the next `register()`), an `Activator`, or `false`.
   * Default `false`.
   */
  activator?: ActivatorOptions | Activator | false;
}

/** The URI scheme of the resolver. */
export const CONSUL_SCHEME = 'consul';

interface SharedWatcher {
  watcher: ServiceWatcher;
  refs: number;
}

export class Registration implements PolicyEnvironment, ResolverEnvironment {
  logger: Logger = componentLogger(undefined, 'grpc');
  registry: MetricsRegistry | undefined;
  clock: Clock = realClock;
  consul: ConsulConnectionOptions = {};
  watcher: ServiceWatcher | undefined;
  /** The default activator of new clients, and whether this registration built it (and so closes it). */
  activator: { activator: Activator; owned: boolean } | undefined;
  private readonly shared = new Map<string, SharedWatcher>();

  configure(options: RegisterOptions): void {
    this.logger = componentLogger(options.logger, 'grpc');
    this.registry = options.registry;
    this.clock = options.clock ?? realClock;
    this.consul = options.consul ?? {};
    this.watcher = options.watcher;
    const previous = this.activator;
    const a = options.activator;
    this.activator =
      a === undefined || a === false
        ? undefined
        : a instanceof Activator
          ? { activator: a, owned: false }
          : {
              activator: new Activator({
                logger: this.logger,
                ...(this.registry ? { registry: this.registry } : {}),
                clock: this.clock,
                ...a,
              }),
              owned: true,
            };
    if (previous?.owned && previous.activator !== this.activator?.activator) {
      previous.activator.close().catch(() => {});
    }
  }

  acquireWatcher(consulUrl: string | undefined): WatcherLease {
    if (consulUrl === undefined && this.watcher) {
      return { watcher: this.watcher, release: () => {} };
    }
    const url = consulUrl ?? this.consul.url ?? DEFAULT_CONSUL_URL;
    let entry = this.shared.get(url);
    if (!entry) {
      const watcher = new ServiceWatcher({
        consul: { ...this.consul, url },
        logger: this.logger,
        ...(this.registry ? { registry: this.registry } : {}),
        clock: this.clock,
      });
      entry = { watcher, refs: 0 };
      this.shared.set(url, entry);
    }
    entry.refs++;
    const held = entry;
    let released = false;
    return {
      watcher: held.watcher,
      release: () => {
        if (released) return;
        released = true;
        held.refs--;
        if (held.refs === 0 && this.shared.get(url) === held) {
          this.shared.delete(url);
          held.watcher.close().catch((error: unknown) => {
            this.logger.warn(errorFields(error), 'closing a consul watcher failed');
          });
        }
      },
    };
  }

  /** Watchers currently shared by open channels (for diagnostics and tests). */
  openWatchers(): number {
    return this.shared.size;
  }
}

const registration = new Registration();
let registered = false;

function resolveRegisterOptions(input: RegisterOptions): RegisterOptions {
  assertObject('options', input as unknown);
  assertKnownKeys('options', input as Record<string, unknown>, [
    'consul',
    'watcher',
    'logger',
    'registry',
    'clock',
    'activator',
  ]);
  if (input.activator !== undefined && input.activator !== false && !(input.activator instanceof Activator)) {
    resolveActivatorOptions(input.activator, 'activator');
  }
  // Validates now (errors name `consul.<option>`); the watcher resolves them again when it is created.
  if (input.consul !== undefined) resolveConsulConnectionOptions(input.consul);
  if (input.watcher !== undefined && typeof (input.watcher as { watch?: unknown }).watch !== 'function') {
    throw new InvalidArgumentError(`watcher must be a ServiceWatcher, got ${describeValue(input.watcher)}`);
  }
  return input;
}

/**
 * Registers the `consul:` resolver and the Shoal policies into `@grpc/grpc-js`. Idempotent: the first call
 * registers; every call (re)sets the defaults (Consul address, watcher, logger, registry, clock) used by channels
 * created afterwards.
 */
export function register(options: RegisterOptions = {}): void {
  assertSupportedGrpcJs();
  registration.configure(resolveRegisterOptions(options));
  if (registered) return;
  registerResolver(CONSUL_SCHEME, createConsulResolverClass(registration));
  for (const name of POLICY_NAMES) {
    const { LoadBalancer, Config } = createPolicyClass(name, registration);
    registerLoadBalancerType(name, LoadBalancer, Config);
  }
  registered = true;
}

/** @internal The registration createClient reads its defaults (watchers, activator) from. */
export function currentRegistration(): Registration {
  return registration;
}

/** True once `register()` has run in this process. */
export function isRegistered(): boolean {
  return registered;
}

/** Number of Consul watchers held open by `consul:` channels right now. */
export function openConsulWatchers(): number {
  return registration.openWatchers();
}
