/**
 * Coordinators in high availability for the chaos scenarios: real `shoal-coordinator` processes sharing one lock in
 * Consul, serving TLS (a test CA, a certificate issued to `SERVER_NAME` only, so every client and follower checks
 * that name), and replicas started by the test (as a platform would: they outlive any coordinator) whose agents
 * report over TLS to a coordinator of the test's choosing. Every process carries the cluster's mark, so
 * `ChaosCluster.close()` finds anything left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoordinatorConfigInput } from '@shoal/coordinator';
import { freePort, waitFor } from '../../kit/index.js';
import { tlsGet, type TestCa } from '../../support/test-ca.js';
import { SERVICES, type ChaosCluster } from './cluster.js';
import { MARK_VARIABLE } from './processes.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/agent-replica.mjs', import.meta.url));
const PROGRAM = fileURLToPath(new URL('../../../packages/coordinator/bin/shoal-coordinator.js', import.meta.url));
/** The only name in the coordinators' certificate: followers, agents and the test all check it. */
export const SERVER_NAME = 'shoal-coordinator.shoal.svc';
const TOKEN = 'chaos-ha-token-0123456789';

export interface HaOptions {
  ca: TestCa;
  sessionTtlMs: number;
  lockDelayMs: number;
  /** Mutual TLS: agents and followers show client certificates (`ha.relay` names the followers'). */
  mtls?: { relayCertFile: string; relayKeyFile: string; relayName: string };
  /** Replicas per service, the coordinators' bounds (min = max: decisions keep the count the test runs). */
  replicas: number;
}

export interface RunningCoordinator {
  id: string;
  child: ChildProcess;
  http: string;
  grpc: string;
  log: string[];
}

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form JSON answers

export class HaCluster {
  readonly coordinators = new Map<string, RunningCoordinator>();
  readonly replicas: ChildProcess[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'shoal-ha-'));

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly options: HaOptions,
  ) {}

  config(id: string, http: number, grpc: number): CoordinatorConfigInput {
    const { ca, mtls } = this.options;
    const n = this.options.replicas;
    return {
      listen: { http: `127.0.0.1:${http}`, grpc: `127.0.0.1:${grpc}` },
      tls: {
        certFile: ca.certFile,
        keyFile: ca.keyFile,
        caFile: ca.caFile,
        serverName: SERVER_NAME,
        ...(mtls ? { requireClientCert: true } : {}),
      },
      syncPeriodMs: 500,
      consul: { url: this.cluster.consul.url, requestTimeoutMs: 3000 },
      ha: {
        enabled: true,
        id,
        sessionTtlMs: this.options.sessionTtlMs,
        lockDelayMs: this.options.lockDelayMs,
        ...(mtls ? { relay: { certFile: mtls.relayCertFile, keyFile: mtls.relayKeyFile, name: mtls.relayName } } : {}),
      },
      services: Object.values(SERVICES).map((name) => ({
        name,
        token: `${TOKEN}-${name}`,
        minReplicas: n,
        maxReplicas: n,
        reportIntervalMs: 500,
        policy: { targets: [{ metric: 'inFlight', value: 1000 }], panic: false, forecast: false },
        // The platform's part (a command that accepts the count): the replicas are the test's, as pods would be.
        actuator: { type: 'command' as const, command: process.execPath, args: ['-e', ''] },
      })),
    };
  }

  /** Starts a `shoal-coordinator` program with this id; resolves once it answers /healthz. */
  async start(id: string): Promise<RunningCoordinator> {
    const http = await freePort();
    const grpc = await freePort();
    const configPath = join(this.dir, `${id}.json`);
    writeFileSync(configPath, JSON.stringify(this.config(id, http, grpc)));
    const child = spawn(
      process.execPath,
      [PROGRAM, '--config', configPath, '--log-level', process.env.SHOAL_TEST_LOG ?? 'warn'],
      { env: { ...process.env, [MARK_VARIABLE]: this.cluster.mark }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const c: RunningCoordinator = {
      id,
      child,
      http: `https://127.0.0.1:${http}`,
      grpc: `grpcs://127.0.0.1:${grpc}`,
      log: [],
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (d: Buffer) => {
        c.log.push(d.toString());
        if (c.log.length > 100) c.log.shift();
      });
    }
    this.coordinators.set(id, c);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`shoal-coordinator ${id} exited: ${c.log.join('')}`);
        return (await this.get(c, '/healthz')).status === 200;
      },
      { what: `shoal-coordinator ${id} to answer /healthz`, timeoutMs: 30_000, intervalMs: 100, retryErrors: true },
    );
    return c;
  }

  /** `GET` over TLS, trusting the test CA and checking SERVER_NAME (with a client certificate under mTLS). */
  get(c: RunningCoordinator, path: string): Promise<{ status: number; body: Json }> {
    const client = this.options.mtls
      ? { cert: this.options.ca.cert, key: this.options.ca.key } // the HTTP port asks but does not insist
      : {};
    return tlsGet(new URL(path, c.http), {
      ca: this.options.ca.ca,
      servername: SERVER_NAME,
      ...client,
      timeoutMs: 3000,
    });
  }

  /** Whether `c` says it leads (its own answer, not a proxied one). */
  async leads(c: RunningCoordinator): Promise<boolean> {
    const r = await this.get(c, '/readyz');
    return r.status === 200 && r.body?.reason === 'leader';
  }

  /** Whom `c` follows (undefined: nobody, or it leads). */
  async follows(c: RunningCoordinator): Promise<string | undefined> {
    const r = await this.get(c, '/readyz');
    return /^following (.+)$/.exec(String(r.body?.reason ?? ''))?.[1];
  }

  /**
   * A replica process of `mode` (grpc/http) whose agent reports to `to` over TLS; its instance id is `instance`.
   * It registers itself in Consul and keeps serving whatever happens to coordinators.
   */
  async startReplica(mode: 'grpc' | 'http', instance: string, to: RunningCoordinator): Promise<ChildProcess> {
    const service = SERVICES[mode];
    const { ca, mtls } = this.options;
    const client = mtls ? this.agentCertificate(service) : undefined;
    const child = spawn(process.execPath, [FIXTURE], {
      env: {
        ...process.env,
        [MARK_VARIABLE]: this.cluster.mark,
        MODE: mode,
        PORT: String(await freePort()),
        CONSUL_URL: this.cluster.consul.url,
        SHOAL_SERVICE: service,
        SHOAL_INSTANCE_ID: instance,
        SHOAL_COORDINATOR_URL: to.grpc,
        SHOAL_COORDINATOR_TOKEN: `${TOKEN}-${service}`,
        SHOAL_COORDINATOR_CA_FILE: ca.caFile,
        SHOAL_COORDINATOR_SERVER_NAME: SERVER_NAME,
        ...(client ? { SHOAL_COORDINATOR_CERT_FILE: client.certFile, SHOAL_COORDINATOR_KEY_FILE: client.keyFile } : {}),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.replicas.push(child);
    return child;
  }

  /** Under mTLS: the agents' certificates, one per service, named after it. */
  agentCertificates: Record<string, { certFile: string; keyFile: string }> = {};
  private agentCertificate(service: string): { certFile: string; keyFile: string } | undefined {
    return this.agentCertificates[service];
  }

  /** SIGKILLs a coordinator (no lock released, no goodbye) and waits for it to exit. */
  async kill(c: RunningCoordinator): Promise<void> {
    if (c.child.exitCode !== null || c.child.signalCode !== null) return;
    const exited = once(c.child, 'exit');
    c.child.kill('SIGKILL');
    await exited;
  }

  /** Stops replicas (SIGTERM: they drain and deregister), then coordinators (SIGTERM), each waited for. */
  async close(): Promise<void> {
    const stop = async (child: ChildProcess) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    };
    await Promise.all(this.replicas.map(stop));
    await Promise.all([...this.coordinators.values()].map((c) => stop(c.child)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
