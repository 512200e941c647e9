/**
 * Runs the real Prometheus (Debian's `prometheus` package; `.ci/run` installs it) as a child process of the test:
 * its own config, its own TSDB directory in a temp dir, its own port on 127.0.0.1. Never the system service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../kit/index.js';

/** The `prometheus` binary on PATH, or undefined. */
export function findPrometheus(pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'prometheus');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface PrometheusTarget {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  lastScrape: string;
}

export interface RunningPrometheus {
  url: string;
  /** GET a Prometheus HTTP API path (`/api/v1/targets`) and return `data`. */
  api<T>(path: string): Promise<T>;
  activeTargets(): Promise<PrometheusTarget[]>;
  /** Its stderr so far (Prometheus logs there), for failure messages. */
  log(): string;
  close(): Promise<void>;
}

/** `files`: more files beside its config (a token file the config names by a relative path). */
export async function startPrometheus(
  binary: string,
  configYaml: string,
  files: Record<string, string> = {},
): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, configYaml);
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content, { mode: 0o600 });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=info',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const exited = once(child, 'exit');

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? res.status}`);
    return body.data;
  };

  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${stderr}`);
      }
      try {
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready within 30 s:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (err) {
    await close();
    throw err;
  }

  return {
    url,
    api,
    activeTargets: async () => (await api<{ activeTargets: PrometheusTarget[] }>('/api/v1/targets')).activeTargets,
    log: () => stderr,
    close,
  };
}
