/**
 * A Docker daemon for the container tests: the one DOCKER_HOST (or the default socket) names if it answers,
 * else Debian's `dockerd` started here as root on a private socket and data root (vfs storage, no iptables, no
 * bridge: a container has its own network namespace with loopback only, or the host's with `--network host`), at
 * `nice 10` (it and everything it starts: builds and containers) on a machine shared with other work, and stopped
 * again by `close()`. `unavailable` says plainly why none can be had, for the test to skip with.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../kit/index.js';

const exec = promisify(execFile);

/** The Docker CLI that matches Debian's daemon when it is installed (another one may come first on the PATH). */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export interface DockerDaemon {
  /** Environment for the docker CLI (DOCKER_HOST). */
  readonly env: NodeJS.ProcessEnv;
  /** Runs the docker CLI; rejects with its stderr on a non-zero exit. */
  docker(args: string[], options?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<string>;
  /** Whether this process started the daemon (then close() removes its data root with every image in it). */
  readonly owned: boolean;
  /** Stops the daemon if this process started it (and removes its data root). */
  close(): Promise<void>;
}

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function cli(env: NodeJS.ProcessEnv) {
  return async (args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> => {
    try {
      const { stdout } = await exec(DOCKER_CLI, args, {
        env: { ...env, ...options.env },
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string };
      const output = [e.stdout?.trim().split('\n').slice(-15).join('\n'), e.stderr?.trim() || e.message];
      throw new Error(`docker ${args[0]} failed: ${output.filter(Boolean).join('\n')}`);
    }
  };
}

async function answers(env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    await exec(DOCKER_CLI, ['version', '--format', '{{.Server.Version}}'], { env, timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** A daemon to use, or the reason there is none. */
export async function startDocker(): Promise<DockerDaemon | { unavailable: string }> {
  if (DOCKER_CLI === 'docker' && !which('docker')) {
    return { unavailable: 'no docker CLI (apt-get install docker.io)' };
  }
  const inherited = { ...process.env };
  if (await answers(inherited)) {
    return { env: inherited, owned: false, docker: cli(inherited), close: async () => {} };
  }
  const dockerd = which('dockerd');
  if (!dockerd)
    return { unavailable: 'no Docker daemon answers and dockerd is not installed (apt-get install docker.io)' };
  if (process.getuid?.() !== 0) return { unavailable: 'no Docker daemon answers and dockerd needs root to start' };
  const dir = await mkdtemp(join(tmpdir(), 'shoal-dockerd-'));
  const socket = join(dir, 'docker.sock');
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  const child: ChildProcess = spawn(
    'nice',
    [
      '-n',
      '10',
      dockerd,
      '--storage-driver=vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      `--data-root=${join(dir, 'data')}`,
      `--exec-root=${join(dir, 'exec')}`,
      `--pidfile=${join(dir, 'dockerd.pid')}`,
      `--host=unix://${socket}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    // vfs layers are plain directories, gone with the data root. The daemon leaves its default network namespace
    // bound at exec/netns/default (an nsfs mount, even with --bridge=none): unmount it, or the folder stays.
    await exec('umount', [join(dir, 'exec', 'netns', 'default')], { timeout: 10_000 }).catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    await waitFor(() => child.exitCode === null && answers(env), {
      timeoutMs: 60_000,
      intervalMs: 500,
      what: 'dockerd to answer',
    });
  } catch {
    const reason = child.exitCode === null ? 'did not answer within 60 s' : `exited with ${child.exitCode}`;
    await stop();
    return { unavailable: `dockerd ${reason}: ${log.trim().split('\n').slice(-3).join(' | ')}` };
  }
  return { env, owned: true, docker: cli(env), close: stop };
}
