/**
 * The tiny parent of every local replica: `node replica-guard.js <graceMs> <command> [args...]`.
 *
 * It runs `command`, forwards SIGTERM/SIGINT to it, and exits with its exit code. It is connected to the
 * coordinator by an IPC channel; when that channel closes — the coordinator exited, crashed or was SIGKILLed — the
 * guard sends SIGTERM to the replica, SIGKILL after `graceMs`, and exits. So no replica outlives its coordinator,
 * even though the replica's own code knows nothing about it.
 *
 * This file is a program (not library code): it reads its own argv.
 */
import { spawn } from 'node:child_process';

const [graceArg, command, ...args] = process.argv.slice(2);
const graceMs = Number(graceArg);
if (!command || !Number.isFinite(graceMs) || graceMs < 0) {
  process.stderr.write('usage: replica-guard <graceMs> <command> [args...]\n');
  process.exit(64);
}

// The coordinator reads our stdout/stderr; once it is gone, writes fail with EPIPE. That must not kill the guard
// before it has stopped the replica.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let exiting = false;

function stopChild(): void {
  if (exiting) return;
  exiting = true;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      process.exit(137);
    }, graceMs);
    timer.unref();
  } else {
    process.exit(0);
  }
}

child.on('error', (error) => {
  process.stderr.write(`replica-guard: cannot start ${command}: ${error.message}\n`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal === 'SIGTERM' ? 143 : signal === 'SIGKILL' ? 137 : 1));
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (!exiting) child.kill(sig);
  });
}

if (typeof process.send === 'function') {
  process.on('disconnect', () => stopChild());
  // The IPC channel must not keep the guard alive by itself once the replica exits.
  process.channel?.unref();
} else {
  process.stderr.write('replica-guard: no IPC channel to the coordinator; refusing to run unsupervised\n');
  stopChild();
}
