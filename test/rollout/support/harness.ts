/**
 * A 4-replica service deployed by the coordinator's local actuator, twice over (gRPC through `consul:///` + a
 * Shoal policy, HTTP through `@shoal/http`), under steady load, with everything a rollout test or benchmark
 * counts: every call's outcome, the replicas passing in Consul, the rollout's status. Real processes throughout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { ServiceWatcher, type Watch } from '@shoal/consul';
import { createClient, register } from '@shoal/grpc';
import { createDispatcher, type ShoalDispatcher } from '@shoal/http';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { startTestConsul, type TestConsul } from '../../support/consul.js';
import { freePort } from '../../kit/index.js';
import { EchoClient } from '../../../packages/grpc/test/support/echo.js';
import { MARK_VARIABLE, markedProcesses, newMark } from '../../chaos/support/processes.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/versioned-service.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../../packages/coordinator/dist/cli.js', import.meta.url));
export const SERVICES = ['rollgrpc', 'rollhttp'] as const;
export type ServiceName = (typeof SERVICES)[number];
const TOKEN = 'rollout-agent-token-0123456789';
export const API_TOKEN = 'rollout-api-token-0123456789';

export interface Call {
  atMs: number;
  service: ServiceName;
  ok: boolean;
  /** `instance/version` that answered, or the error. */
  detail: string;
}

export interface HarnessOptions {
  replicas?: number;
  /** Calls per second per protocol. Default 50 (100 in all). */
  ratePerService?: number;
  /** The service's `rollout` section. */
  rollout?: Record<string, unknown>;
  /** Client slow-start window (ms). Default 30000 (the balancers' default). */
  slowStartMs?: number;
  logLevel?: string;
  /**
   * Run the coordinator as the real `shoal-coordinator` program (a child process with a config file, a
   * `stateDir`, `ha.id` and fixed ports) instead of in this process, so a test can SIGKILL and restart it.
   */
  coordinatorProcess?: boolean;
}

/** A pino line the coordinator program printed. */
export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** Version-specific environment: APP_VERSION plus FAIL_HALF / NEVER_READY for the bad ones. */
export function versionEnv(version: string, extra: Record<string, string> = {}): Record<string, string> {
  return { APP_VERSION: version, ...extra };
}

export class RolloutHarness {
  consul!: TestConsul;
  coordinator!: Coordinator;
  readonly calls: Call[] = [];
  /** Per 200 ms sample: replicas passing in Consul, per service. */
  readonly passing: { atMs: number; counts: Record<ServiceName, number> }[] = [];
  private watcher!: ServiceWatcher;
  private watches = new Map<ServiceName, Watch>();
  private grpcClient: grpc.Client | undefined;
  private dispatcher: ShoalDispatcher | undefined;
  private running = false;
  private loops: Promise<void>[] = [];
  private env: Record<ServiceName, Record<string, string>>;
  private stopTimeoutMs = 15_000;
  /** Process mode: the program, its config file, ports, the mark its children carry, and what it printed. */
  cli: ChildProcess | undefined;
  readonly mark = newMark();
  readonly logLines: LogLine[] = [];
  private dir: string | undefined;
  private ports: { http: number; grpc: number } | undefined;

  constructor(private readonly options: HarnessOptions = {}) {
    this.env = { rollgrpc: versionEnv('v1'), rollhttp: versionEnv('v1') };
  }

  get replicas(): number {
    return this.options.replicas ?? 4;
  }

  config(): CoordinatorConfigInput {
    const n = this.replicas;
    const ports = this.ports;
    return {
      listen: ports
        ? { http: `127.0.0.1:${ports.http}`, grpc: `127.0.0.1:${ports.grpc}` }
        : { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
      ...(this.dir ? { stateDir: join(this.dir, 'state'), ha: { id: 'rollout-coordinator' } } : {}),
      syncPeriodMs: 1000,
      consul: { url: this.consul.url, ...(this.consul.token ? { token: this.consul.token } : {}) },
      api: { token: API_TOKEN },
      services: SERVICES.map((name) => ({
        name,
        token: `${TOKEN}-${name}`,
        minReplicas: n,
        maxReplicas: n,
        reportIntervalMs: 500,
        drainTimeoutMs: 10_000,
        policy: { targets: [{ metric: 'inFlight', value: 1000 }] },
        actuator: {
          type: 'local' as const,
          command: process.execPath,
          args: [FIXTURE],
          env: {
            ...this.env[name],
            MODE: name === 'rollgrpc' ? 'grpc' : 'http',
            CONSUL_URL: this.consul.url,
          },
          stopTimeoutMs: this.stopTimeoutMs,
          ...(this.dir ? { orphanGraceMs: 60_000 } : {}),
        },
        ...(this.options.rollout ? { rollout: this.options.rollout } : {}),
      })),
    };
  }

  async start(): Promise<void> {
    this.consul = await startTestConsul();
    if (this.options.coordinatorProcess) {
      this.dir = mkdtempSync(join(tmpdir(), 'shoal-rollout-'));
      this.ports = { http: await freePort(), grpc: await freePort() };
      await this.startCoordinatorProcess();
    } else {
      const logger = pino({ level: this.options.logLevel ?? process.env.SHOAL_TEST_LOG ?? 'silent' });
      this.coordinator = createCoordinator(this.config(), { logger, env: process.env });
      await this.coordinator.start();
    }
    this.watcher = new ServiceWatcher({
      consul: { url: this.consul.url, ...(this.consul.token ? { token: this.consul.token } : {}) },
    });
    for (const s of SERVICES) this.watches.set(s, this.watcher.watch(s, { passing: true }));
    register({ watcher: this.watcher, registry: new Registry() });
    const slowStart = { windowMs: this.options.slowStartMs ?? 30_000 };
    this.grpcClient = createClient(EchoClient, 'consul:///rollgrpc', {
      policy: 'shoal_round_robin',
      policyConfig: { slowStart },
    }) as unknown as grpc.Client;
    this.dispatcher = createDispatcher({ watcher: this.watcher, strategy: 'round_robin', slowStart });
  }

  /** Replicas passing in Consul right now. */
  passingNow(service: ServiceName): number {
    return this.watches.get(service)?.current()?.length ?? 0;
  }

  /** Starts the steady load (and the 200 ms Consul samples). */
  startLoad(): void {
    this.running = true;
    const rate = this.options.ratePerService ?? 50;
    for (const s of SERVICES) this.loops.push(this.loadLoop(s, rate));
    this.loops.push(
      (async () => {
        while (this.running) {
          this.passing.push({
            atMs: Date.now(),
            counts: { rollgrpc: this.passingNow('rollgrpc'), rollhttp: this.passingNow('rollhttp') },
          });
          await new Promise((r) => setTimeout(r, 200));
        }
      })(),
    );
  }

  async stopLoad(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops.splice(0));
  }

  private async loadLoop(service: ServiceName, rate: number): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    const started = Date.now();
    let sent = 0;
    while (this.running) {
      // Open loop at `rate` calls/s, catching up after a slow tick.
      const due = Math.floor(((Date.now() - started) / 1000) * rate);
      while (sent < due && this.running) {
        sent++;
        const p = (service === 'rollgrpc' ? this.grpcCall() : this.httpCall()).then((call) => {
          this.calls.push({ ...call, service });
        });
        const tracked = p.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all(inFlight);
  }

  private grpcCall(): Promise<Omit<Call, 'service'>> {
    const atMs = Date.now();
    return new Promise((resolve) => {
      (this.grpcClient as unknown as Record<string, (...a: unknown[]) => void>).echo!(
        { msg: 'hi' },
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (err: grpc.ServiceError | null, res: { server: string }) =>
          resolve(
            err
              ? { atMs, ok: false, detail: `${grpc.status[err.code]}: ${err.details}` }
              : { atMs, ok: true, detail: res.server },
          ),
      );
    });
  }

  private async httpCall(): Promise<Omit<Call, 'service'>> {
    const atMs = Date.now();
    try {
      const res = await fetch('http://rollhttp.service.consul/', {
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(5000),
      } as unknown as RequestInit);
      await res.text();
      const who = res.headers.get('x-instance') ?? '?';
      return res.status === 200
        ? { atMs, ok: true, detail: who }
        : { atMs, ok: false, detail: `HTTP ${res.status} from ${who}` };
    } catch (error) {
      return { atMs, ok: false, detail: (error as Error).message };
    }
  }

  /**
   * Changes both services' version (a reloaded config, as SIGHUP does). `restart` also changes a field a rollout
   * does not cover (stopTimeoutMs), which replaces the actuator: every replica stops, new ones start (the
   * behaviour before rollouts, kept as the benchmark's baseline).
   */
  async deploy(version: string, extra: Record<string, string> = {}, restart = false): Promise<void> {
    for (const s of SERVICES) this.env[s] = versionEnv(version, extra);
    if (restart) this.stopTimeoutMs++;
    if (this.cli) {
      this.writeConfig();
      this.cli.kill('SIGHUP');
      return;
    }
    await this.coordinator.reload(this.config());
  }

  /** Waits until every service's rollout is in `state` (polls the HTTP API, as an operator would). */
  async waitForState(state: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(SERVICES.map(async (s) => (await this.rolloutStatus(s)).state));
      if (states.every((x) => x === state)) return;
      if (Date.now() > deadline) {
        const detail = await Promise.all(SERVICES.map((s) => this.rolloutStatus(s)));
        throw new Error(`timed out waiting for rollouts to be ${state}: ${JSON.stringify(detail, null, 1)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async rolloutStatus(service: ServiceName): Promise<{ state: string; reason?: string; [k: string]: unknown }> {
    return (await this.api(`/v1/services/${service}/rollout`)) as { state: string };
  }

  /** The coordinator's HTTP API base URL. */
  apiUrl(): string {
    return this.ports ? `http://127.0.0.1:${this.ports.http}` : this.coordinator.urls().http;
  }

  /** GETs a path of the coordinator's API with the operator token; the JSON answer. */
  async api(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.apiUrl()}${path}`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
      signal: AbortSignal.timeout(5000),
    });
    return (await res.json()) as Record<string, unknown>;
  }

  /** Every `reasons` line of a service's decision log (through the API). */
  async decisionReasons(service: ServiceName): Promise<string[]> {
    const body = (await this.api(`/v1/services/${service}/decisions`)) as { decisions: { reasons: string[] }[] };
    return body.decisions.flatMap((d) => d.reasons);
  }

  // ---- process mode -----------------------------------------------------------------------------------------------

  private writeConfig(): string {
    const file = join(this.dir as string, 'shoal.yaml');
    writeFileSync(file, JSON.stringify(this.config(), null, 2)); // YAML is a superset of JSON
    return file;
  }

  /** Starts `shoal-coordinator --config <file>` (the same file, state directory and ports every time). */
  async startCoordinatorProcess(): Promise<void> {
    const file = this.writeConfig();
    const child = spawn(process.execPath, [CLI, '--config', file, '--log-level', 'info'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, [MARK_VARIABLE]: this.mark },
    });
    this.cli = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const listening = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('"msg":"listening"') && !line.includes('"level"')) resolve();
        try {
          const parsed = JSON.parse(line) as LogLine;
          if (typeof parsed.level === 'number') this.logLines.push(parsed);
        } catch {
          // not a log line
        }
      });
      child.once('exit', (code, signal) =>
        reject(new Error(`shoal-coordinator exited (${signal ?? code}) before listening: ${stderr}`)),
      );
    });
    await listening;
  }

  /** SIGKILLs the coordinator program (no shutdown of any kind); resolves once it is gone. */
  async killCoordinator(): Promise<void> {
    const child = this.cli;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
  }

  /** The replica processes running now (this test's mark), with the version and service in their environment. */
  replicaProcesses(): { pid: number; service: string; version: string }[] {
    const out: { pid: number; service: string; version: string }[] = [];
    for (const p of markedProcesses(this.mark)) {
      if (!p.command.endsWith('versioned-service.mjs') || p.command.includes('replica-guard')) continue;
      try {
        const env = Object.fromEntries(
          readFileSync(`/proc/${p.pid}/environ`, 'latin1')
            .split('\u0000')
            .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
        ) as Record<string, string>;
        out.push({ pid: p.pid, service: env.SHOAL_SERVICE ?? '?', version: env.APP_VERSION ?? '?' });
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  /** Versions of a service's replica processes, sorted (process mode: read from /proc). */
  processVersions(service: ServiceName): string[] {
    return this.replicaProcesses()
      .filter((p) => p.service === service)
      .map((p) => p.version)
      .sort();
  }

  /** Every process this test started that is still alive (coordinator, guards, replicas). */
  leftover(): { pid: number; command: string }[] {
    return markedProcesses(this.mark);
  }

  /** Versions of the replicas the actuator runs (agents' `version` from the coordinator's view). */
  versions(service: ServiceName): string[] {
    const status = this.coordinator.services().find((s) => s.name === service);
    const ids = new Set(
      this.coordinator
        .actuator(service)
        ?.replicas()
        .map((r) => r.id),
    );
    return (status?.instances ?? [])
      .filter((i) => ids.has(i.id))
      .map((i) => i.version ?? '?')
      .sort();
  }

  /** Pids of every replica the actuators run (to check none is left behind). */
  pids(): number[] {
    return SERVICES.flatMap((s) => (this.coordinator.actuator(s)?.replicas() ?? []).map((r) => r.pid ?? 0)).filter(
      (p) => p > 0,
    );
  }

  /** Calls in [fromMs, toMs). */
  window(fromMs: number, toMs = Infinity): Call[] {
    return this.calls.filter((c) => c.atMs >= fromMs && c.atMs < toMs);
  }

  /** Lowest number of replicas passing in Consul over [fromMs, toMs), per service. */
  lowestPassing(fromMs: number, toMs = Infinity): Record<ServiceName, number> {
    const out = { rollgrpc: Infinity, rollhttp: Infinity } as Record<ServiceName, number>;
    for (const p of this.passing) {
      if (p.atMs < fromMs || p.atMs >= toMs) continue;
      for (const s of SERVICES) out[s] = Math.min(out[s], p.counts[s]);
    }
    return out;
  }

  /** Lowest count of distinct replicas that answered a call in any whole second of [fromMs, toMs), per service. */
  lowestAnsweringPerSecond(fromMs: number, toMs: number): Record<ServiceName, number> {
    const out = { rollgrpc: Infinity, rollhttp: Infinity } as Record<ServiceName, number>;
    for (const s of SERVICES) {
      for (let t = fromMs; t + 1000 <= toMs; t += 1000) {
        const who = new Set(
          this.calls.filter((c) => c.service === s && c.ok && c.atMs >= t && c.atMs < t + 1000).map((c) => c.detail),
        );
        out[s] = Math.min(out[s], who.size);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.stopLoad();
    this.grpcClient?.close();
    await this.dispatcher?.close();
    for (const w of this.watches.values()) w.close();
    await this.watcher?.close();
    await this.coordinator?.close();
    const child = this.cli;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await gone;
    }
    await this.consul?.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
