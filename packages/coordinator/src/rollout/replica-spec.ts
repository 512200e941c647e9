import { createHash } from 'node:crypto';

/** What a local replica runs: the parts of a `local` actuator's config a rollout changes. */
export interface LocalReplicaSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** The fields of a `local` actuator config that make a new version (a change of any other field restarts). */
export const ROLLOUT_FIELDS = ['command', 'args', 'env', 'cwd'] as const;

/**
 * A short, stable hash of a spec (12 hex characters of SHA-256 over its canonical JSON, env keys sorted): the
 * version a replica runs when its agent names none. Env values go into the hash, never into an answer.
 */
export function specVersion(spec: LocalReplicaSpec): string {
  const env = Object.keys(spec.env)
    .sort()
    .map((k) => [k, spec.env[k]]);
  const canonical = JSON.stringify([spec.command, spec.args, env, spec.cwd ?? null]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}

/** The spec of a `local` actuator config. */
export function specOf(config: {
  command: string;
  args?: readonly string[];
  env?: Readonly<Record<string, string>>;
  cwd?: string | undefined;
}): LocalReplicaSpec {
  return {
    command: config.command,
    args: [...(config.args ?? [])],
    env: { ...(config.env ?? {}) },
    ...(config.cwd ? { cwd: config.cwd } : {}),
  };
}

/**
 * True when `next` differs from `prev` only in `command`, `args`, `env` or `cwd` (and does in at least one): a
 * change a rollout applies. Anything else (type, host, stopTimeoutMs, restartBackoff) replaces the actuator.
 */
export function isRolloutChange(prev: Record<string, unknown>, next: Record<string, unknown>): boolean {
  if (prev.type !== 'local' || next.type !== 'local') return false;
  const rest = (o: Record<string, unknown>) =>
    JSON.stringify(
      Object.keys(o)
        .filter((k) => !(ROLLOUT_FIELDS as readonly string[]).includes(k))
        .sort()
        .map((k) => [k, o[k]]),
    );
  if (rest(prev) !== rest(next)) return false;
  return ROLLOUT_FIELDS.some((k) => JSON.stringify(prev[k]) !== JSON.stringify(next[k]));
}
