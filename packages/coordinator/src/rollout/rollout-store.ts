import { componentLogger, type Logger } from '@shoal/core';
import type { ConsulKv } from '@shoal/consul';
import type { LocalReplicaSpec } from './replica-spec.js';
import { RolloutError } from './rollout-error.js';

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
  /** Why the last rollback happened. */
  rollbackCause?: 'errors' | 'latency' | 'crash_loop' | 'not_ready' | 'manual';
  /** Set on a rollout that converges replicas of mixed versions no record explained (see `warning`). */
  converge?: string;
  /** What a restarted coordinator found and did (mixed versions without a readable record). */
  warning?: string;
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

  /** The service's record; undefined when there is none; throws `SHOAL_ERR_ROLLOUT_RECORD` when it is unreadable. */
  async load(service: string): Promise<PersistedRollout | undefined> {
    const key = this.key(service);
    const item = await this.kv.get(key);
    if (!item?.Value) return undefined;
    let problem: string | undefined;
    let parsed: PersistedRollout | undefined;
    try {
      parsed = JSON.parse(item.Value) as PersistedRollout;
      problem = recordProblem(parsed, service);
    } catch (error) {
      problem = `not JSON (${(error as Error).message})`;
    }
    if (problem || !parsed) {
      this.log.error({ service, key }, `the rollout record in Consul is unreadable: ${problem}`);
      throw new RolloutError('SHOAL_ERR_ROLLOUT_RECORD', `Consul key ${key}: ${problem}`);
    }
    return parsed;
  }

  async save(record: PersistedRollout): Promise<void> {
    await this.kv.set(this.key(record.service), JSON.stringify(record));
  }
}

const STATES = new Set(['rolling-out', 'rolling-back', 'completed', 'rolled-back']);

function specProblem(spec: unknown): boolean {
  const s = spec as LocalReplicaSpec | undefined;
  return (
    typeof s !== 'object' ||
    s === null ||
    typeof s.command !== 'string' ||
    !Array.isArray(s.args) ||
    !s.args.every((a) => typeof a === 'string') ||
    typeof s.env !== 'object' ||
    s.env === null ||
    !Object.values(s.env).every((v) => typeof v === 'string') ||
    (s.cwd !== undefined && typeof s.cwd !== 'string')
  );
}

/** What is wrong with a parsed record (undefined: nothing). Values are never quoted: specs may hold secrets. */
function recordProblem(r: PersistedRollout, service: string): string | undefined {
  if (typeof r !== 'object' || r === null) return 'not a rollout record (not an object)';
  if (r.service !== service) return 'not a rollout record of this service ("service" differs)';
  if (!STATES.has(r.state)) return 'not a rollout record ("state" is not a rollout state)';
  if (specProblem(r.fromSpec) || specProblem(r.toSpec)) return 'not a rollout record ("fromSpec"/"toSpec" malformed)';
  if (typeof r.fromVersion !== 'string' || typeof r.toVersion !== 'string') return 'not a rollout record (versions)';
  if (typeof r.startedAtMs !== 'number') return 'not a rollout record ("startedAtMs")';
  return undefined;
}
