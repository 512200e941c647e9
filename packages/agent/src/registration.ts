import { createRequire } from 'node:module';
import type { MetricsRegistry } from '@shoal/core';
import type * as shoalConsul from '@shoal/consul';
import type { ServiceRegistrationOptions } from '@shoal/consul';
import type { ResolvedAgentOptions } from './agent-options.js';

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
 * The instance's Consul registration, with a TTL check the agent controls: critical while starting and draining,
 * passing while ready. `undefined` when the agent has no `consul` option.
 */
export function createRegistration(
  options: ResolvedAgentOptions,
  meta: Record<string, string>,
  registry: MetricsRegistry | undefined,
): RegistrationHandle | undefined {
  if (options.consul === false) return undefined;
  return new (loadShoalConsul().ServiceRegistration)(registrationOptions(options, meta, registry));
}

/** Checks the registration settings at createAgent() time, so a bad tag fails there rather than in start(). */
export function validateRegistration(options: ResolvedAgentOptions): void {
  if (options.consul === false) return;
  loadShoalConsul().resolveServiceRegistrationOptions(
    registrationOptions(options, { shoal_metrics_port: '1' }, options.registry),
  );
}

function registrationOptions(
  options: ResolvedAgentOptions,
  meta: Record<string, string>,
  registry: MetricsRegistry | undefined,
): ServiceRegistrationOptions {
  const r = options.registration;
  return {
    consul: options.consul === false ? {} : options.consul,
    service: options.service,
    id: options.instanceId,
    address: options.address,
    port: options.port,
    ...(r.tags !== undefined ? { tags: r.tags } : {}),
    meta: { ...r.meta, ...meta },
    ...(options.zone !== undefined ? { zone: options.zone } : {}),
    ...(options.version !== undefined ? { version: options.version } : {}),
    ...(r.weight !== undefined ? { weight: r.weight } : {}),
    check: { ttlMs: r.ttlMs ?? 15_000 },
    ...(r.deregisterCriticalServiceAfterMs !== undefined
      ? { deregisterCriticalServiceAfterMs: r.deregisterCriticalServiceAfterMs }
      : {}),
    logger: options.logger,
    ...(registry !== undefined ? { registry } : {}),
    clock: options.clock,
  };
}
