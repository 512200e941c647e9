/**
 * How a local actuator takes over the replicas of the coordinator that ran before it: open (and claim) the
 * service's state directory, then adopt every guard whose record still names a live process that proves it knows
 * the record's token. Records of dead guards are removed, and a replica a dead guard left behind is stopped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { errorFields, type Clock, type Logger } from '@shoal/core';
import { adoptGuard, type GuardHandle } from './guard-handle.js';
import {
  claimDirectory,
  ensurePrivateDir,
  isSameProcess,
  readGuardRecords,
  releaseDirectory,
  removeGuardFiles,
  type GuardRecord,
} from './replica-state.js';

export interface StateDirectory {
  /** Where this service's guards keep their records and sockets. */
  readonly dir: string;
  /** True for a private directory made for this run only (no `stateDir`, or the configured one is in use). */
  readonly temporary: boolean;
  /** Gives up the claim (and removes a temporary directory). */
  release(): void;
}

/**
 * `<stateDir>/<service>`, claimed for this process; or, without a `stateDir` (or when another live coordinator
 * holds it), a private temporary directory whose replicas no later coordinator can adopt.
 */
export function openStateDirectory(stateDir: string | undefined, service: string, log: Logger): StateDirectory {
  if (stateDir !== undefined) {
    const dir = join(resolve(stateDir), service);
    ensurePrivateDir(dir);
    const claim = claimDirectory(dir);
    if (claim.ok) return { dir, temporary: false, release: () => releaseDirectory(dir) };
    log.warn(
      { stateDir: dir, ownerPid: claim.pid },
      'the state directory is in use by another live process: replicas of this run cannot be adopted after a restart',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'shoal-'));
  return { dir, temporary: true, release: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface AdoptOptions {
  service: string;
  stopTimeoutMs: number;
  clock: Clock;
  log: Logger;
  onLog(id: string, stream: 'stdout' | 'stderr', line: string): void;
}

export interface Adopted {
  record: GuardRecord;
  guard: GuardHandle;
}

/** Adopts the live guards recorded in `dir`; see the module comment. */
export async function adoptGuards(dir: string, options: AdoptOptions): Promise<Adopted[]> {
  const { records, malformed } = readGuardRecords(dir, options.service);
  for (const name of malformed) {
    options.log.warn({ file: join(dir, name) }, 'ignoring an unreadable replica record');
  }
  const adopted: Adopted[] = [];
  await Promise.all(
    records.map(async (record) => {
      try {
        const guard = await adoptGuard(
          dir,
          record,
          { onLog: (stream, line) => options.onLog(record.id, stream, line) },
          options.stopTimeoutMs,
          options.clock,
        );
        if (guard) {
          adopted.push({ record, guard });
          options.log.info(
            { replica: record.id, pid: guard.pid, replicaPid: guard.replicaPid, port: record.port },
            'adopted a replica of the previous run',
          );
        } else {
          options.log.info({ replica: record.id }, 'a replica of the previous run is gone; removed its record');
        }
      } catch (error) {
        // A live process we cannot verify: never adopt or signal it. A real guard stops its replica on its own
        // once its grace period ends without a coordinator.
        options.log.warn({ replica: record.id, ...errorFields(error) }, 'not adopting a replica that did not verify');
      }
    }),
  );
  return adopted;
}

/**
 * Stops the guards recorded in `dir` that this actuator does not hold (one a previous coordinator was still
 * starting when it died writes its record a moment after we looked): SIGTERM to a verified guard (pid + start
 * time), SIGKILL to its group after `stopTimeoutMs`. Resolves once they are gone.
 */
export async function stopStrayGuards(
  dir: string,
  service: string,
  held: ReadonlySet<string>,
  stopTimeoutMs: number,
  clock: Clock,
): Promise<void> {
  const { records } = readGuardRecords(dir, service);
  await Promise.all(
    records
      .filter((r) => !held.has(r.id))
      .map(async (r) => {
        if (isSameProcess(r.guardPid, r.guardStartTime)) {
          signal(r.guardPid, 'SIGTERM');
          const deadline = clock.now() + stopTimeoutMs;
          while (isSameProcess(r.guardPid, r.guardStartTime) && clock.now() < deadline) {
            await new Promise<void>((resolve) => clock.setTimeout(resolve, 50).unref());
          }
          if (isSameProcess(r.guardPid, r.guardStartTime)) signal(-r.guardPid, 'SIGKILL');
        } else if (isSameProcess(r.replicaPid, r.replicaStartTime)) {
          signal(-r.guardPid, 'SIGKILL');
        }
        removeGuardFiles(dir, r);
      }),
  );
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone
  }
}
