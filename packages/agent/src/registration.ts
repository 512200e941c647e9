import { ServiceRegistration, resolveServiceRegistrationOptions, type ServiceRegistrationOptions } from '@shoal/consul';
import type { ResolvedAgentOptions } from './agent-options.js';

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
): RegistrationHandle | undefined {
  if (options.consul === false) return undefined;
  return new ServiceRegistration(registrationOptions(options, meta));
}

/** Checks the registration settings at createAgent() time, so a bad tag fails there rather than in start(). */
export function validateRegistration(options: ResolvedAgentOptions): void {
  if (options.consul === false) return;
  resolveServiceRegistrationOptions(registrationOptions(options, { shoal_metrics_port: '1' }));
}

function registrationOptions(options: ResolvedAgentOptions, meta: Record<string, string>): ServiceRegistrationOptions {
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
    registry: options.registry,
    clock: options.clock,
  };
}
