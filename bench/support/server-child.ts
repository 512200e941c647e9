/**
 * The backend servers of the load benchmarks run in a child process (the same benchmark file started with
 * `--servers`), so the load generator and the servers do not share an event loop. The child prints its ports as
 * one JSON line and exits when its stdin ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Child side: announce the listening ports, then live until the parent closes stdin. */
export function announcePortsAndWait(ports: number[]): void {
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** Parent side: starts `script --servers n slowMs slowFraction` and waits for its ports. */
export async function startServers(
  script: string,
  n: number,
  slowMs = 0,
  slowFraction = 0,
): Promise<{ ports: number[]; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', script, '--servers', String(n), String(slowMs), String(slowFraction)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { ports: JSON.parse(line) as number[], child };
}

/** Parent side: closes the child's stdin and waits for it to exit. */
export async function stopServers(child: ChildProcess): Promise<void> {
  child.stdin!.end();
  if (child.exitCode === null) await once(child, 'exit');
}
