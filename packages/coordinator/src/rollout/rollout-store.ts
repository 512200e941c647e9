import { componentLogger, errorFields, type Logger } from '@shoal/core';
import type { ConsulKv } from '@shoal/consul';
import type { LocalReplicaSpec } from './replica-spec.js';

/** What is kept of a service's rollout, so a coordinator restart finishes it or rolls it back. */
export interface PersistedRollout {
  service: string;
  state: 'rolling-out' | 'rolling-back' | 'completed' | 'rolled-back';
  paused: boolean;
  /** The version being replaced (after a rollback: the bad one). */
  fromSpec: LocalReplicaSpec;
  /** The version being rolled to (after a rollback: the good one). */
  toSpec: LocalReplicaSpec;
  fromVersion: string;
  toVersion: string;
  reason?: string;
  /** The replica count the rollout keeps. */
  replicas?: number;
  startedAtMs: number;
  updatedAtMs: number;
  finishedAtMs?: number;
  by: string;
}

export interface RolloutStore {
  load(service: string): Promise<PersistedRollout | undefined>;
  save(record: PersistedRollout): Promise<void>;
}

/** Keeps rollouts in memory (no Consul configured): a restarted coordinator does not know about them. */
export class MemoryRolloutStore implements RolloutStore {
  private readonly map = new Map<string, PersistedRollout>();
  async load(service: string): Promise<PersistedRollout | undefined> {
    return this.map.get(service);
  }
  async save(record: PersistedRollout): Promise<void> {
    this.map.set(record.service, structuredClone(record));
  }
}

/**
 * Rollouts in Consul KV at `<prefix>/<service>/rollout`, as JSON, beside the policy state. The record holds the
 * two specs (command, args, env, cwd) so a new coordinator can finish a rollback to a version its config no
 * longer names: protect the prefix with a Consul ACL as you protect the config file.
 */
export class ConsulRolloutStore implements RolloutStore {
  private readonly log: Logger;
  constructor(
    private readonly kv: ConsulKv,
    private readonly prefix: string,
    logger?: Logger,
  ) {
    this.log = componentLogger(logger, 'rollout-store');
  }

  private key(service: string): string {
    return `${this.prefix.replace(/\/+$/, '')}/${service}/rollout`;
  }

  async load(service: string): Promise<PersistedRollout | undefined> {
    const item = await this.kv.get(this.key(service));
    if (!item?.Value) return undefined;
    try {
      const parsed = JSON.parse(item.Value) as PersistedRollout;
      if (parsed.service !== service || !parsed.fromSpec || !parsed.toSpec) throw new Error('not a rollout record');
      return parsed;
    } catch (error) {
      this.log.warn({ service, ...errorFields(error) }, 'ignoring an unreadable rollout record in Consul');
      return undefined;
    }
  }

  async save(record: PersistedRollout): Promise<void> {
    await this.kv.set(this.key(record.service), JSON.stringify(record));
  }
}
