import { createRequire } from 'node:module';
import type { MetricsRegistry } from '@shoal/core';
import type * as shoalConsul from '@shoal/consul';
import type { ServiceRegistrationOptions } from '@shoal/consul';

/**
 * `@shoal/consul` (and the `consul` npm client it loads when it first talks to Consul) is loaded only by an agent
 * given a `consul` option. It is an ES module loaded synchronously through `require` (Node >= 20.19 loads ES
 * modules without top-level await that way), so createAgent() can validate the option on the spot.
 */
export function loadShoalConsul(): typeof shoalConsul {
  return createRequire(import.meta.url)('@shoal/consul') as typeof shoalConsul;
}

/** The part of `@shoal/consul`'s ServiceRegistration the agent drives. */
export interface RegistrationHandle {
  register(): Promise<void>;
  setStatus(status: 'passing' | 'warning' | 'critical', note?: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The instance's Consul registration, with a TTL check the agent controls (critical while starting and draining,
 * passing while ready), from the registration options `resolveAgentOptions` built and validated, plus what is
 * known only at start: the scrape Meta and the metrics registry.
 */
export function createRegistration(
  options: ServiceRegistrationOptions,
  meta: Record<string, string>,
  registry: MetricsRegistry | undefined,
): RegistrationHandle {
  return new (loadShoalConsul().ServiceRegistration)({
    ...options,
    meta: { ...options.meta, ...meta },
    ...(registry !== undefined ? { registry } : {}),
  });
}
