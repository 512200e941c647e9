import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { LocalReplicaSpec } from './replica-spec.js';
import { RolloutError } from './rollout-error.js';

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses a new version that cannot start before any replica is touched: its `cwd` must be a directory and its
 * `command` an executable file (a path, resolved against `cwd`, or a name found on the replicas' `PATH` — the
 * coordinator's environment plus the spec's `env`). Throws `SHOAL_ERR_ROLLOUT_INVALID` naming the field and the
 * value; env values are never quoted.
 *
 * @param env the environment replicas inherit (the coordinator's); without it a bare command name is not checked.
 */
export async function checkRolloutSpec(
  service: string,
  spec: LocalReplicaSpec,
  env?: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  const where = `service "${service}": cannot roll out the new version`;
  const cwd = spec.cwd ?? process.cwd();
  if (spec.cwd !== undefined) {
    const dir = await stat(spec.cwd).catch(() => undefined);
    if (!dir?.isDirectory()) {
      throw new RolloutError(
        'SHOAL_ERR_ROLLOUT_INVALID',
        `${where}: actuator.cwd ${JSON.stringify(spec.cwd)} is not a directory`,
      );
    }
  }
  const command = spec.command;
  if (command.includes('/')) {
    const path = isAbsolute(command) ? command : resolve(cwd, command);
    if (!(await isExecutableFile(path))) {
      throw new RolloutError(
        'SHOAL_ERR_ROLLOUT_INVALID',
        `${where}: actuator.command ${JSON.stringify(command)} is not an executable file${isAbsolute(command) ? '' : ` (resolved against ${JSON.stringify(cwd)})`}`,
      );
    }
    return;
  }
  const path = spec.env.PATH ?? env?.PATH;
  if (path === undefined) return;
  for (const dir of path.split(delimiter)) {
    if (dir && (await isExecutableFile(join(resolve(cwd, dir), command)))) return;
  }
  throw new RolloutError(
    'SHOAL_ERR_ROLLOUT_INVALID',
    `${where}: actuator.command ${JSON.stringify(command)} is not an executable found on the replicas' PATH`,
  );
}
