import * as grpc from '@grpc/grpc-js';
import {
  InvalidArgumentError,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  describeValue,
} from '@shoal/core';
import { POLICY_NAMES } from './policy-config.js';
import type { ShoalPolicyConfigJson, ShoalPolicyName } from './policy-config.js';
import { isRegistered, register } from './register.js';
import { buildServiceConfig } from './service-config.js';
import type { RetryConfig } from './service-config.js';

export interface CreateClientOptions {
  /** The Shoal policy. Default `shoal_peak_ewma`. */
  policy?: ShoalPolicyName;
  /** The policy's config (see the policies table). Default `{}`. */
  policyConfig?: ShoalPolicyConfigJson;
  /** gRPC retry policy for the client's methods; `false` = only grpc-js's transparent retries. Default `false`. */
  retry?: RetryConfig | false;
  /** Extra channel options (`grpc.service_config` is set by this helper and must not be given). */
  channelOptions?: grpc.ChannelOptions;
  /** Default `grpc.credentials.createInsecure()`. */
  credentials?: grpc.ChannelCredentials;
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
    'channelOptions',
    'credentials',
  ]);
  const policy = options.policy ?? 'shoal_peak_ewma';
  assertOneOf('policy', policy, POLICY_NAMES);
  const channelOptions = options.channelOptions ?? {};
  assertObject('channelOptions', channelOptions as unknown);
  if ('grpc.service_config' in channelOptions) {
    throw new InvalidArgumentError(
      'channelOptions["grpc.service_config"] must not be set: createClient builds it from policy, policyConfig and retry',
    );
  }
  const serviceConfig = buildServiceConfig(policy, options.policyConfig ?? {}, options.retry ?? false);
  if (!isRegistered()) register();
  return new ctor(target, options.credentials ?? grpc.credentials.createInsecure(), {
    ...channelOptions,
    'grpc.service_config': serviceConfig,
  });
}
