import { componentLogger, errorFields, type Logger } from '@shoal/core';
import { restoreState, type PolicyState } from '@shoal/policy';
import type { ConsulKv } from '@shoal/consul';

/** What is kept per service in Consul KV. */
export interface PersistedServiceState {
  policyState: PolicyState;
  desiredReplicas: number;
  lastScaleAtMs?: number;
  updatedAtMs: number;
  by: string;
}

/** Where policy state lives between restarts and across leaders. */
export interface StateStore {
  load(service: string): Promise<PersistedServiceState | undefined>;
  save(service: string, state: PersistedServiceState): Promise<void>;
}

/** Keeps nothing (no Consul configured): a restarted coordinator starts with fresh policy state. */
export class MemoryStateStore implements StateStore {
  private readonly map = new Map<string, PersistedServiceState>();
  async load(service: string): Promise<PersistedServiceState | undefined> {
    return this.map.get(service);
  }
  async save(service: string, state: PersistedServiceState): Promise<void> {
    this.map.set(service, state);
  }
}

/** Policy state in Consul KV under `<prefix>/<service>`, as JSON. A corrupt value is logged and ignored. */
export class ConsulStateStore implements StateStore {
  private readonly log: Logger;
  constructor(
    private readonly kv: ConsulKv,
    private readonly prefix: string,
    logger?: Logger,
  ) {
    this.log = componentLogger(logger, 'state-store');
  }

  private key(service: string): string {
    return `${this.prefix.replace(/\/+$/, '')}/${service}`;
  }

  async load(service: string): Promise<PersistedServiceState | undefined> {
    const item = await this.kv.get(this.key(service));
    if (!item?.Value) return undefined;
    try {
      const parsed = JSON.parse(item.Value) as PersistedServiceState;
      return { ...parsed, policyState: restoreState(parsed.policyState) };
    } catch (error) {
      this.log.warn({ service, ...errorFields(error) }, 'ignoring unreadable policy state in Consul');
      return undefined;
    }
  }

  async save(service: string, state: PersistedServiceState): Promise<void> {
    await this.kv.set(this.key(service), JSON.stringify(state));
  }
}
