/**
 * Finding the processes a test started, however they were started: every child of a chaos test carries a unique
 * mark in its environment (`SHOAL_TEST_MARK=<mark>`, inherited by guards, replicas and anything they spawn), and
 * `markedProcesses(mark)` lists the live ones by reading `/proc/<pid>/environ` (Linux). A test asserts the list is
 * empty when it ends — the check "by pid after the test" that nothing was left behind, orphans included.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';

export const MARK_VARIABLE = 'SHOAL_TEST_MARK';

/** A fresh mark: put `{ [MARK_VARIABLE]: mark }` into the environment of what the test starts. */
export function newMark(): string {
  return `chaos-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Whether `markedProcesses` can see anything here (it needs Linux's /proc). */
export const canScanProcesses = process.platform === 'linux';

/** Live (not zombie) processes whose environment holds `SHOAL_TEST_MARK=<mark>`, with their command lines. */
export function markedProcesses(mark: string): Array<{ pid: number; command: string }> {
  const needle = `${MARK_VARIABLE}=${mark}\u0000`;
  const found: Array<{ pid: number; command: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const environ = readFileSync(`/proc/${name}/environ`, 'latin1');
      if (!`${environ}\u0000`.includes(needle)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\u0000').join(' ').trim();
      found.push({ pid: Number(name), command });
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return found;
}

/** SIGKILLs what `markedProcesses` finds (an afterEach safety net; the test itself must already have failed). */
export function killMarked(mark: string): number {
  const left = markedProcesses(mark);
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  return left.length;
}
