import * as grpc from '@grpc/grpc-js';
import {
  InvalidArgumentError,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  describeValue,
} from '@shoal/core';
import { POLICY_NAMES } from './policy-config.js';
import type { ShoalPolicyConfigJson, ShoalPolicyName } from './policy-config.js';
import { perTryTimeoutInterceptor, resolvePerTryTimeoutConfig } from './per-try-timeout.js';
import type { PerTryTimeoutConfig } from './per-try-timeout.js';
import { currentRegistration, isRegistered, register } from './register.js';
import { Activator, resolveActivatorOptions } from '@shoal/consul';
import type { ActivatorOptions } from '@shoal/consul';
import { activatorInterceptor } from './activator-interceptor.js';
import { parseConsulTargetString } from './consul-target.js';
import { buildServiceConfig } from './service-config.js';
import type { HedgingConfig, RetryConfig } from './service-config.js';

/** HTTP/2 keepalive of the client's connections (gRFC A8): a peer that stops answering pings is dropped. */
export interface KeepaliveConfig {
  /** Ping after this long without activity, ms. Default 30000. */
  timeMs?: number;
  /** Drop the connection when a ping is not answered within this time, ms. Default 10000. */
  timeoutMs?: number;
}

export const DEFAULT_KEEPALIVE: Readonly<Required<KeepaliveConfig>> = Object.freeze({
  timeMs: 30_000,
  timeoutMs: 10_000,
});

export interface CreateClientOptions {
  /** The Shoal policy. Default `shoal_peak_ewma`. */
  policy?: ShoalPolicyName;
  /** The policy's config (see the policies table). Default `{}`. */
  policyConfig?: ShoalPolicyConfigJson;
  /** gRPC retry policy for the client's methods; `false` = only grpc-js's transparent retries. Default `false`. */
  retry?: RetryConfig | false;
  /**
   * Hedging of idempotent methods (listed in `hedging.methods`): grpc-js starts another attempt after
   * `delayMs` without an answer; the first answer wins. Each extra attempt takes one retry from the policy's retry
   * budget. Default `false`.
   */
  hedging?: HedgingConfig | false;
  /**
   * Per-attempt timeout of idempotent unary methods (listed in `perTryTimeout.methods`): an attempt without an
   * answer after `timeoutMs` (default 1000) is abandoned and the call sent again, to another replica, up to
   * `maxAttempts` (default 3) in all, within the call's deadline; each extra attempt takes one retry from the
   * policy's retry budget. Retries and hedging below it work per attempt. Default `false` (gRPC cannot tell which
   * methods are idempotent: list them).
   */
  perTryTimeout?: PerTryTimeoutConfig | false;
  /** HTTP/2 keepalive; `false` = grpc-js's default (none). Default `{ timeMs: 30000, timeoutMs: 10000 }`. */
  keepalive?: KeepaliveConfig | false;
  /** Extra channel options (`grpc.service_config` is set by this helper and must not be given). */
  channelOptions?: grpc.ChannelOptions;
  /** Default `grpc.credentials.createInsecure()`. */
  credentials?: grpc.ChannelCredentials;
  /**
   * Wake from zero (`consul:` targets): a call to a service with no healthy instance waits up to `maxWaitMs`
   * (default 30000) while the coordinator is told how many calls wait, and goes out as soon as an instance passes;
   * else it fails UNAVAILABLE `SHOAL_ERR_COLD_START_TIMEOUT: ...`. Options (`{ coordinator, token, maxWaitMs }`: the
   * client builds an `Activator` and closes it with `client.close()`), an `Activator` (shared), or `false`.
   * Default: `register({ activator })`'s, if any; else off.
   */
  activator?: ActivatorOptions | Activator | false;
}

type ClientConstructor<T> = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => T;

/**
 * Creates a grpc-js client whose channel balances with a Shoal policy:
 * `createClient(GreeterClient, 'consul:///greeter', { policy: 'shoal_peak_ewma' })`. Calls `register()` with
 * defaults if nothing registered yet. Throws `InvalidArgumentError` naming the field for a bad policy config.
 */
export function createClient<T>(ctor: ClientConstructor<T>, target: string, options: CreateClientOptions = {}): T {
  if (typeof ctor !== 'function')
    throw new InvalidArgumentError(`ctor must be a client constructor, got ${describeValue(ctor)}`);
  assertString('target', target);
  assertObject('options', options as unknown);
  assertKnownKeys('options', options as Record<string, unknown>, [
    'policy',
    'policyConfig',
    'retry',
    'hedging',
    'perTryTimeout',
    'keepalive',
    'channelOptions',
    'credentials',
    'activator',
  ]);
  if (options.activator !== undefined && options.activator !== false && !(options.activator instanceof Activator)) {
    resolveActivatorOptions(options.activator, 'activator');
  }
  const policy = options.policy ?? 'shoal_peak_ewma';
  assertOneOf('policy', policy, POLICY_NAMES);
  const channelOptions = options.channelOptions ?? {};
  assertObject('channelOptions', channelOptions as unknown);
  if ('grpc.service_config' in channelOptions) {
    throw new InvalidArgumentError(
      'channelOptions["grpc.service_config"] must not be set: createClient builds it from policy, policyConfig and retry',
    );
  }
  const serviceConfig = buildServiceConfig(
    policy,
    options.policyConfig ?? {},
    options.retry ?? false,
    options.hedging ?? false,
  );
  const keepalive: Record<string, number> = {};
  if (options.keepalive !== false) {
    const k = options.keepalive ?? {};
    assertObject('keepalive', k as unknown);
    assertKnownKeys('keepalive', k as Record<string, unknown>, ['timeMs', 'timeoutMs']);
    const timeMs = k.timeMs ?? DEFAULT_KEEPALIVE.timeMs;
    const timeoutMs = k.timeoutMs ?? DEFAULT_KEEPALIVE.timeoutMs;
    assertInteger('keepalive.timeMs', timeMs, 1000, 86_400_000);
    assertInteger('keepalive.timeoutMs', timeoutMs, 100, 86_400_000);
    keepalive['grpc.keepalive_time_ms'] = timeMs;
    keepalive['grpc.keepalive_timeout_ms'] = timeoutMs;
  }
  const perTry = options.perTryTimeout
    ? perTryTimeoutInterceptor(resolvePerTryTimeoutConfig(options.perTryTimeout))
    : undefined;
  if (!isRegistered()) register();
  const wake = wakeSetup(target, options.activator);
  // The activator holds the whole call (outside the per-try attempts): one wait, then the attempts.
  const interceptors = [...(wake ? [wake.interceptor] : []), ...(perTry ? [perTry] : [])];
  const clientOptions = interceptors.length > 0 ? withInterceptors(channelOptions, interceptors) : {};
  let client: T;
  try {
    client = new ctor(target, options.credentials ?? grpc.credentials.createInsecure(), {
      ...keepalive,
      ...channelOptions,
      ...clientOptions,
      'grpc.service_config': serviceConfig,
    });
  } catch (error) {
    wake?.release();
    throw error;
  }
  if (wake) {
    // The client's watch (and an activator it built) live as long as the client.
    const c = client as unknown as { close: () => void };
    const close = c.close.bind(client);
    c.close = () => {
      wake.release();
      close();
    };
  }
  return client;
}

/** The activator interceptor of a client, with what to release when it closes; undefined when off. */
function wakeSetup(
  target: string,
  given: ActivatorOptions | Activator | false | undefined,
): { interceptor: grpc.Interceptor; release: () => void } | undefined {
  if (given === false) return undefined;
  const registration = currentRegistration();
  const fallback = given === undefined ? registration.activator?.activator : undefined;
  if (given === undefined && !fallback) return undefined;
  if (!target.startsWith('consul:')) {
    if (given === undefined) return undefined; // register()'s default applies to consul: targets only
    throw new InvalidArgumentError(
      `activator needs a consul: target (it waits on the service's instances), got ${describeValue(target)}`,
    );
  }
  const parsed = parseConsulTargetString(target);
  let activator: Activator;
  let owned = false;
  if (given instanceof Activator) activator = given;
  else if (given !== undefined) {
    activator = new Activator({
      logger: registration.logger,
      ...(registration.registry ? { registry: registration.registry } : {}),
      clock: registration.clock,
      ...given,
    });
    owned = true;
  } else activator = fallback as Activator;
  const lease = registration.acquireWatcher(parsed.consulUrl);
  const watch = lease.watcher.watch(parsed.service, {
    ...(parsed.tag !== undefined ? { tag: parsed.tag } : {}),
    ...(parsed.dc !== undefined ? { dc: parsed.dc } : {}),
  });
  let released = false;
  return {
    interceptor: activatorInterceptor(activator, watch),
    release: () => {
      if (released) return;
      released = true;
      watch.close();
      lease.release();
      if (owned) activator.close().catch(() => {});
    },
  };
}

/**
 * Client options that put `interceptor` innermost on every call: after the caller's client interceptors, and after
 * a call's own interceptors too (grpc-js lets a call's interceptors replace the client's, so a call-level
 * interceptor would otherwise switch it off).
 */
function withInterceptors(channelOptions: grpc.ChannelOptions, added: grpc.Interceptor[]): grpc.ClientOptions {
  const given = channelOptions as grpc.ClientOptions;
  if (given.interceptor_providers !== undefined) {
    throw new InvalidArgumentError(
      'channelOptions.interceptor_providers cannot be combined with perTryTimeout or activator: pass channelOptions.interceptors instead',
    );
  }
  const userTransformer = given.callInvocationTransformer;
  return {
    interceptors: [...(given.interceptors ?? []), ...added],
    callInvocationTransformer: (properties) => {
      const p = userTransformer ? userTransformer(properties) : properties;
      const callOptions = p.callOptions;
      if (callOptions.interceptor_providers?.length) {
        return {
          ...p,
          callOptions: {
            ...callOptions,
            interceptor_providers: [...callOptions.interceptor_providers, ...added.map((i) => () => i)],
          },
        };
      }
      if (callOptions.interceptors?.length) {
        return { ...p, callOptions: { ...callOptions, interceptors: [...callOptions.interceptors, ...added] } };
      }
      return p;
    },
  };
}
