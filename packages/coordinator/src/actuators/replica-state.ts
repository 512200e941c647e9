/**
 * The local actuator's state directory: one small JSON record per running replica guard, written by the guard
 * itself (so a record exists before its replica does), read by the next coordinator to adopt the guards of its
 * previous run. A record names processes by pid *and* start time, so a pid the system reused for another process is
 * never taken for a replica (nor signalled).
 *
 * Layout: `<stateDir>/<service>/owner.json` (the coordinator process that uses the directory now),
 * `<stateDir>/<service>/<id>.json` (one guard), `<stateDir>/<service>/g-<hex>.sock` (its Unix socket).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a guard writes about itself and its replica. */
export interface GuardRecord {
  readonly version: 1;
  readonly service: string;
  /** The replica's instance id (`SHOAL_INSTANCE_ID`). */
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** The guard's Unix socket. */
  readonly socket: string;
  /** Shared secret of this guard and its coordinators (the file is 0600 in a 0700 directory). */
  readonly token: string;
  readonly guardPid: number;
  /** Opaque process start time of the guard (Linux: clock ticks after boot from /proc/<pid>/stat). */
  readonly guardStartTime: string;
  readonly replicaPid?: number;
  readonly replicaStartTime?: string;
  /** Wall-clock ms the replica was first started (kept across guard restarts of the same id). */
  readonly startedAtMs: number;
  readonly restarts: number;
  /** The version (spec hash) the replica runs, for rollouts. */
  readonly specVersion?: string;
}

/** Longest Unix socket path we create (the kernel's limit is 107 bytes on Linux, 103 on macOS). */
export const MAX_SOCKET_PATH_BYTES = 100;

/**
 * The start time of a live process, as an opaque string to compare; undefined when there is no such process (or
 * only its zombie). Linux reads `/proc/<pid>/stat`; elsewhere `ps -o lstart=`.
 */
export function processStartTime(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (process.platform === 'linux') {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, starttime 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
    return fields[19];
  }
  try {
    const out = execFileSync('ps', ['-o', 'lstart=,stat=', '-p', String(pid)], {
      encoding: 'utf8',
      timeout: 2000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (!out || / Z\S*$/.test(out)) return undefined;
    return out.replace(/\s+\S+$/, '');
  } catch {
    return undefined;
  }
}

/** Whether `pid` is still the very process that had `startTime`. */
export function isSameProcess(pid: number | undefined, startTime: string | undefined): boolean {
  return pid !== undefined && startTime !== undefined && processStartTime(pid) === startTime;
}

/** Writes a file atomically (temp file + rename), readable by its owner only. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}

export function writeGuardRecord(dir: string, record: GuardRecord): void {
  writeFileAtomic(join(dir, `${record.id}.json`), `${JSON.stringify(record)}\n`);
}

export function removeGuardFiles(dir: string, record: Pick<GuardRecord, 'id' | 'socket'>): void {
  rmSync(join(dir, `${record.id}.json`), { force: true });
  rmSync(record.socket, { force: true });
}

/** Every well-formed guard record of `service` in `dir` (malformed files are skipped and returned by name). */
export function readGuardRecords(dir: string, service: string): { records: GuardRecord[]; malformed: string[] } {
  const records: GuardRecord[] = [];
  const malformed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return { records, malformed };
  }
  for (const name of names) {
    if (!name.endsWith('.json') || name === 'owner.json') continue;
    try {
      const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<GuardRecord>;
      if (
        r.version === 1 &&
        r.service === service &&
        typeof r.id === 'string' &&
        name === `${r.id}.json` &&
        typeof r.socket === 'string' &&
        r.socket.startsWith(dir) &&
        typeof r.token === 'string' &&
        Number.isInteger(r.guardPid) &&
        typeof r.guardStartTime === 'string' &&
        Number.isInteger(r.port) &&
        typeof r.host === 'string'
      ) {
        records.push(r as GuardRecord);
      } else {
        malformed.push(name);
      }
    } catch {
      malformed.push(name);
    }
  }
  return { records, malformed };
}

/** Creates `dir` (and parents) readable by this user only. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

interface Owner {
  pid: number;
  startTime: string;
}

/**
 * Claims `dir` for this process: fails (returns the other owner's pid) while another live process holds it, so two
 * coordinators never adopt the same replicas. A claim left by a dead process is taken over.
 */
export function claimDirectory(dir: string): { ok: true } | { ok: false; pid: number } {
  const path = join(dir, 'owner.json');
  const self: Owner = { pid: process.pid, startTime: processStartTime(process.pid) ?? 'unknown' };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(self), { flag: 'wx', mode: 0o600 });
      return { ok: true };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let owner: Partial<Owner> | undefined;
    try {
      owner = JSON.parse(readFileSync(path, 'utf8')) as Partial<Owner>;
    } catch {
      owner = undefined;
    }
    if (owner?.pid === process.pid && owner.startTime === self.startTime) return { ok: true };
    if (owner && typeof owner.pid === 'number' && isSameProcess(owner.pid, owner.startTime)) {
      return { ok: false, pid: owner.pid };
    }
    rmSync(path, { force: true });
  }
  return { ok: false, pid: -1 };
}

/** Gives up this process's claim on `dir`. */
export function releaseDirectory(dir: string): void {
  const path = join(dir, 'owner.json');
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as Partial<Owner>;
    if (owner.pid === process.pid) rmSync(path, { force: true });
  } catch {
    // not ours, or already gone
  }
}
