/**
 * A small Shoal cluster for the chaos scenarios, all real processes: a Consul (`@shoal/consul-dev` in its own
 * process, or the real one at CONSUL_HTTP_ADDR), the real `shoal-coordinator` program (so a test can SIGKILL it)
 * whose local actuator runs two services of `fixtures/agent-replica.mjs` (`chaosgrpc` over gRPC, `chaoshttp` over
 * HTTP; each replica registers itself in Consul and reports to the coordinator), and clients with the documented
 * settings (./traffic.ts). Only the clients run in the test's process, so a busy control plane cannot stall them and
 * the latencies are the clients'. Every process the coordinator starts carries the test's mark, so `close()` finds
 * anything left behind, orphans included.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoordinatorConfigInput } from '@shoal/coordinator';
import { startTestConsul, type TestConsul } from '../../support/consul.js';
import { freePort, waitFor } from '../../kit/index.js';
import { MARK_VARIABLE, killMarked, markedProcesses, newMark } from './processes.js';
import { documentedClients, type DocumentedClients, type Traffic, type TrafficEvent } from './traffic.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/agent-replica.mjs', import.meta.url));
const CONSUL_CLI = fileURLToPath(new URL('../../../packages/consul-dev/dist/cli.js', import.meta.url));
const PROGRAM = fileURLToPath(new URL('../../../packages/coordinator/bin/shoal-coordinator.js', import.meta.url));
export const SERVICES = { grpc: 'chaosgrpc', http: 'chaoshttp' } as const;
const TOKEN = 'chaos-agent-token-0123456789';

export interface ClusterOptions {
  /** Replicas per service (min = max), changed later with `setReplicas`. */
  replicas: number;
  /** Keep guards' records here so a restarted coordinator adopts their replicas. */
  stateDir?: boolean;
}

export class ChaosCluster {
  readonly mark = newMark();
  consul!: TestConsul;
  program: ChildProcess | undefined;
  clients: DocumentedClients | undefined;
  private replicas: number;
  private stateDir: string | undefined;
  private configPath: string | undefined;
  private ports: { http: number; grpc: number } | undefined;
  private programLog: string[] = [];
  private programRuns = 0;
  private watching = false;
  private watches: Promise<void>[] = [];
  /** The coordinator's own account (its info log: replicas started, adopted, stopped; decisions), timed. */
  readonly programEvents: TrafficEvent[] = [];
  /** The scenario's traffic, once started (the hooks print its timeline when a test fails before its verdict). */
  traffic: Traffic | undefined;
  /** `host:port` → replica id, for every replica the coordinator started or adopted. */
  readonly replicaNames = new Map<string, string>();

  constructor(private readonly options: ClusterOptions) {
    this.replicas = options.replicas;
  }

  async startConsul(): Promise<void> {
    if (process.env.CONSUL_HTTP_ADDR) this.consul = await startTestConsul();
    else {
      const port = await freePort();
      const child = spawn(process.execPath, [CONSUL_CLI, '--port', String(port)], { stdio: 'ignore' });
      const url = `http://127.0.0.1:${port}`;
      this.consul = {
        url,
        host: '127.0.0.1',
        port,
        isReal: false,
        close: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        },
      };
      await waitFor(() => fetch(`${url}/v1/status/leader`).then((r) => r.ok), {
        what: 'consul-dev to answer',
        timeoutMs: 30_000,
        intervalMs: 100,
        retryErrors: true,
      });
    }
    if (this.options.stateDir) this.stateDir = mkdtempSync(join(tmpdir(), 'shoal-c-'));
  }

  config(): CoordinatorConfigInput {
    const n = this.replicas;
    const consul = { url: this.consul.url, ...(this.consul.token ? { token: this.consul.token } : {}) };
    return {
      listen: {
        http: `127.0.0.1:${this.ports?.http ?? 0}`,
        grpc: `127.0.0.1:${this.ports?.grpc ?? 0}`,
      },
      syncPeriodMs: 500,
      consul,
      ...(this.stateDir ? { stateDir: this.stateDir } : {}),
      services: Object.entries(SERVICES).map(([mode, name]) => ({
        name,
        token: `${TOKEN}-${name}`,
        minReplicas: n,
        maxReplicas: n,
        reportIntervalMs: 500,
        drainTimeoutMs: 10_000,
        policy: {
          // Never the reason to scale: the bounds are (an operator's scale step).
          targets: [{ metric: 'inFlight', value: 1000 }],
          panic: false,
          forecast: false,
          behavior: {
            // At most 2 new replicas of each service a second: a scale step starts node processes, and 14 at once
            // starve a 2-core machine (and the replicas already serving) for seconds.
            scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: 'Pods', value: 2, periodSeconds: 1 }] },
            scaleDown: {
              stabilizationWindowSeconds: 0,
              policies: [{ type: 'Percent', value: 100, periodSeconds: 1 }],
            },
          },
        },
        actuator: {
          type: 'local' as const,
          command: process.execPath,
          args: [FIXTURE],
          env: { MODE: mode, CONSUL_URL: this.consul.url },
          stopTimeoutMs: 5000,
          orphanGraceMs: 30_000,
          restartBackoff: { baseMs: 200, capMs: 2000 },
        },
      })),
    };
  }

  private env(): Record<string, string> {
    return { ...(process.env as Record<string, string>), [MARK_VARIABLE]: this.mark };
  }

  /** The real `shoal-coordinator` program, config file and all (SIGKILL it with `killProgram`). */
  async startProgram(): Promise<void> {
    this.ports ??= { http: await freePort(), grpc: await freePort() };
    this.configPath ??= join(this.stateDir ?? mkdtempSync(join(tmpdir(), 'shoal-c-')), 'shoal.json');
    writeFileSync(this.configPath, JSON.stringify(this.config()));
    const child = spawn(
      process.execPath,
      [PROGRAM, '--config', this.configPath, '--log-level', process.env.SHOAL_TEST_LOG ?? 'info'],
      { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.programLog.push(line);
        // SHOAL_CHAOS_PROGRAM_LOG=<file> keeps the coordinator's whole log (--log-level from SHOAL_TEST_LOG).
        if (process.env.SHOAL_CHAOS_PROGRAM_LOG) appendFileSync(process.env.SHOAL_CHAOS_PROGRAM_LOG, `${line}\n`);
        if (this.programLog.length > 200) this.programLog.shift();
        this.readProgramLine(line);
      });
    }
    this.program = child;
    this.programRuns++;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`shoal-coordinator exited: ${this.programLog.join('\n')}`);
        return (await fetch(`http://127.0.0.1:${this.ports!.http}/healthz`)).ok;
      },
      { what: 'shoal-coordinator to answer /healthz', timeoutMs: 30_000, retryErrors: true },
    );
  }

  /** Turns the coordinator's log lines about replicas and decisions into timed events. */
  private readProgramLine(line: string): void {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { msg, replica, port, time } = entry;
    if (typeof msg !== 'string' || typeof time !== 'number') return;
    if (typeof replica === 'string' && typeof port === 'number') this.replicaNames.set(`127.0.0.1:${port}`, replica);
    const interesting =
      typeof replica === 'string' || msg === 'decision' || msg === 'coordinator started' || msg.includes('reload');
    if (!interesting || (entry.stream !== undefined && entry.level !== 40)) return;
    const fields = ['replica', 'port', 'current', 'desired', 'code', 'signal', 'stream']
      .filter((k) => entry[k] !== undefined && entry[k] !== null)
      .map((k) => `${k}=${String(entry[k])}`);
    const service = typeof entry.service === 'string' ? `${entry.service}: ` : '';
    this.programEvents.push({
      name: `coordinator #${this.programRuns}: ${service}${msg} ${fields.join(' ')}`.slice(0, 200),
      atMs: time - performance.timeOrigin,
    });
  }

  async killProgram(): Promise<void> {
    const child = this.program;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** A scale step, as an operator makes it: new bounds written to the config file, then SIGHUP. */
  async setReplicas(n: number): Promise<void> {
    this.replicas = n;
    if (this.program && this.configPath) {
      writeFileSync(this.configPath, JSON.stringify(this.config()));
      this.program.kill('SIGHUP');
    }
  }

  /**
   * Records every change of each service's passing list in Consul as an event (blocking queries, as a client's
   * watcher makes them), so a failure can be read against what the clients' watchers were told.
   */
  watchConsul(): void {
    if (this.watching) return;
    this.watching = true;
    for (const service of Object.values(SERVICES)) {
      this.watches.push(
        (async () => {
          let index = '0';
          let last = '';
          while (this.watching) {
            try {
              const res = await fetch(
                `${this.consul.url}/v1/health/service/${service}?passing=true&index=${index}&wait=2s`,
                { headers: this.consul.token ? { 'x-consul-token': this.consul.token } : {} },
              );
              index = res.headers.get('x-consul-index') ?? '0';
              const list = ((await res.json()) as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID).sort();
              const now = list.join(' ');
              if (now !== last)
                this.programEvents.push({ name: `consul: ${service} passing [${now}]`, atMs: performance.now() });
              last = now;
            } catch {
              await new Promise((r) => setTimeout(r, 200));
            }
          }
        })(),
      );
    }
  }

  /** Ids of the guards recorded in the state directory (every service), a cheap sign that guards are starting. */
  guardRecords(): string[] {
    if (!this.stateDir) return [];
    return Object.values(SERVICES).flatMap((service) => {
      try {
        return readdirSync(join(this.stateDir!, service))
          .filter((name) => name.endsWith('.json') && name !== 'owner.json')
          .map((name) => name.slice(0, -'.json'.length));
      } catch {
        return [];
      }
    });
  }

  /** Replicas passing in Consul, per service. */
  async passing(): Promise<{ grpc: number; http: number }> {
    const count = async (name: string) => {
      const res = await fetch(`${this.consul.url}/v1/health/service/${name}?passing=true`, {
        headers: this.consul.token ? { 'x-consul-token': this.consul.token } : {},
      });
      return ((await res.json()) as unknown[]).length;
    };
    return { grpc: await count(SERVICES.grpc), http: await count(SERVICES.http) };
  }

  async waitForPassing(n: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        const p = await this.passing();
        return p.grpc === n && p.http === n;
      },
      { what: `${n} replicas of each service passing in Consul`, timeoutMs, intervalMs: 200, retryErrors: true },
    );
  }

  /** Replica processes of this cluster (not their guards), by reading /proc; `mode` is `grpc` or `http`. */
  replicaProcesses(): Array<{ pid: number; command: string; mode: string }> {
    return markedProcesses(this.mark)
      .filter((p) => p.command.endsWith('agent-replica.mjs') && !/guard/.test(p.command))
      .map((p) => {
        let mode = '?';
        try {
          mode = /(?:^|\0)MODE=(\w+)/.exec(readFileSync(`/proc/${p.pid}/environ`, 'latin1'))?.[1] ?? '?';
        } catch {
          // gone meanwhile
        }
        return { ...p, mode };
      });
  }

  /** Ids of a service's instances passing in Consul. */
  async passingIds(service: string): Promise<string[]> {
    const res = await fetch(`${this.consul.url}/v1/health/service/${service}?passing=true`, {
      headers: this.consul.token ? { 'x-consul-token': this.consul.token } : {},
    });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`Consul answered ${res.status}: ${body.slice(0, 200)}`);
    return (JSON.parse(body) as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID);
  }

  /**
   * A replica started as a Kubernetes pod would be, not by the coordinator: the same program (`mode` `grpc` or
   * `http`, instance `id`, a free port) with no coordinator to report to, carrying the test's mark. `env` adds to
   * its environment (`TERMINATION_DELAY_MS`).
   */
  async startPod(mode: 'grpc' | 'http', id: string, env: Record<string, string> = {}): Promise<ChildProcess> {
    return spawn(process.execPath, [FIXTURE], {
      env: {
        ...this.env(),
        ...env,
        MODE: mode,
        PORT: String(await freePort()),
        SHOAL_SERVICE: SERVICES[mode],
        SHOAL_INSTANCE_ID: id,
        CONSUL_URL: this.consul.url,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }

  openClients(): DocumentedClients {
    this.clients = documentedClients({
      consul: { url: this.consul.url, ...(this.consul.token ? { token: this.consul.token } : {}) },
      grpcService: SERVICES.grpc,
      httpService: SERVICES.http,
      onLog: (event) => this.programEvents.push(event),
    });
    return this.clients;
  }

  /** Closes clients, coordinator (stopping its replicas) and Consul; returns what was left behind. */
  async close(): Promise<Array<{ pid: number; command: string }>> {
    await this.clients?.close();
    this.watching = false;
    await Promise.all(this.watches.splice(0));
    if (this.program && this.program.exitCode === null && this.program.signalCode === null) {
      const exited = once(this.program, 'exit');
      this.program.kill('SIGTERM');
      await exited;
    }
    // Guards exit right after their replica; give the last ones a moment to be reaped.
    let left = markedProcesses(this.mark);
    try {
      await waitFor(() => (left = markedProcesses(this.mark)).length === 0, {
        what: 'every process of the cluster gone',
        timeoutMs: 10_000,
      });
    } catch {
      killMarked(this.mark);
    }
    await this.consul?.close();
    if (this.stateDir) rmSync(this.stateDir, { recursive: true, force: true });
    return left;
  }
}
