/**
 * A 4-replica service deployed by the coordinator's local actuator, twice over (gRPC through `consul:///` + a
 * Shoal policy, HTTP through `@shoal/http`), under steady load, with everything a rollout test or benchmark
 * counts: every call's outcome, the replicas passing in Consul, the rollout's status. Real processes throughout.
 */
import { fileURLToPath } from 'node:url';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';
import { ServiceWatcher, type Watch } from '@shoal/consul';
import { createClient, register } from '@shoal/grpc';
import { createDispatcher, type ShoalDispatcher } from '@shoal/http';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { startTestConsul, type TestConsul } from '../../support/consul.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/versioned-service.mjs', import.meta.url));
export const SERVICES = ['rollgrpc', 'rollhttp'] as const;
export type ServiceName = (typeof SERVICES)[number];
const TOKEN = 'rollout-agent-token-0123456789';
export const API_TOKEN = 'rollout-api-token-0123456789';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as never,
};
const EchoClient = grpc.makeGenericClientConstructor(
  {
    echo: {
      path: '/shoal.test.Echo/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: json.serialize,
      requestDeserialize: json.deserialize,
      responseSerialize: json.serialize,
      responseDeserialize: json.deserialize,
      originalName: 'Echo',
    },
  },
  'shoal.test.Echo',
);

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
  /** Consul coordinates (default: a fresh @shoal/consul-dev). */
  logLevel?: string;
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

  constructor(private readonly options: HarnessOptions = {}) {
    this.env = { rollgrpc: versionEnv('v1'), rollhttp: versionEnv('v1') };
  }

  get replicas(): number {
    return this.options.replicas ?? 4;
  }

  config(): CoordinatorConfigInput {
    const n = this.replicas;
    return {
      listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
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
        },
        ...(this.options.rollout ? { rollout: this.options.rollout } : {}),
      })),
    };
  }

  async start(): Promise<void> {
    this.consul = await startTestConsul();
    const logger = pino({ level: this.options.logLevel ?? process.env.SHOAL_TEST_LOG ?? 'silent' });
    this.coordinator = createCoordinator(this.config(), { logger, env: process.env });
    await this.coordinator.start();
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
    const res = await fetch(`${this.coordinator.urls().http}/v1/services/${service}/rollout`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    return (await res.json()) as { state: string };
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
    await this.consul?.close();
  }
}
