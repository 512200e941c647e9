/**
 * A small real system to monitor: @shoal/consul-dev, the coordinator (local actuator) running replicas of the
 * http-orders example (each with the agent, /metrics on its service port), as the monitoring tests need it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { startConsulDev, type ConsulDevServer } from '@shoal/consul-dev';
import { createCoordinator, type Coordinator, type CoordinatorConfigInput } from '@shoal/coordinator';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ORDERS_SERVER = join(root, 'examples', 'http-orders', 'dist', 'server.js');

export interface RunningStack {
  consul: ConsulDevServer;
  coordinator: Coordinator;
  registry: Registry;
  coordinatorUrl: string;
  config: (minReplicas: number) => CoordinatorConfigInput;
  /** Polls the coordinator's /v1/sd until `n` replicas of orders are listed; returns their groups. */
  waitForReplicas(n: number, timeoutMs: number): Promise<SdGroup[]>;
  sd(): Promise<SdGroup[]>;
  close(): Promise<void>;
}

export interface SdGroup {
  targets: string[];
  labels: Record<string, string>;
}

export interface RunningStackOptions {
  /** The coordinator's API tokens: with a read token, /v1/sd and /metrics need it (`sd()` sends it). */
  api?: { readToken: string; token?: string };
}

export async function startRunningStack(minReplicas = 1, options: RunningStackOptions = {}): Promise<RunningStack> {
  if (!existsSync(ORDERS_SERVER)) throw new Error(`${ORDERS_SERVER} is missing: build first (npm run build)`);
  // With a registry: consul-dev serves /metrics too (the metrics reference test scrapes it).
  const consul = await startConsulDev({ host: '127.0.0.1', port: 0, registry: new Registry() });
  const token = randomBytes(24).toString('hex');
  const config = (min: number): CoordinatorConfigInput => ({
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: 500,
    consul: { url: consul.url },
    ...(options.api ? { api: options.api } : {}),
    services: [
      {
        name: 'orders',
        token,
        minReplicas: min,
        maxReplicas: 4,
        reportIntervalMs: 500,
        policy: { targets: [{ metric: 'inFlight', type: 'average', value: 50 }] },
        actuator: {
          type: 'local',
          command: process.execPath,
          args: [ORDERS_SERVER],
          env: { CONSUL_HTTP_ADDR: consul.url, HOST: '127.0.0.1' },
          stopTimeoutMs: 5000,
        },
      },
    ],
  });
  const registry = new Registry();
  const coordinator = createCoordinator(config(minReplicas), { registry });
  try {
    await coordinator.start();
  } catch (err) {
    await coordinator.close().catch(() => {});
    await consul.close();
    throw err;
  }
  const coordinatorUrl = coordinator.urls().http;
  const sd = async (): Promise<SdGroup[]> => {
    const res = await fetch(`${coordinatorUrl}/v1/sd`, {
      signal: AbortSignal.timeout(2000),
      ...(options.api ? { headers: { authorization: `Bearer ${options.api.readToken}` } } : {}),
    });
    if (!res.ok) throw new Error(`GET /v1/sd: ${res.status}`);
    return (await res.json()) as SdGroup[];
  };
  return {
    consul,
    coordinator,
    registry,
    coordinatorUrl,
    config,
    sd,
    async waitForReplicas(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const groups = (await sd()).filter((g) => g.labels.service === 'orders');
        if (groups.length >= n) return groups;
        if (Date.now() > deadline) {
          throw new Error(`coordinator lists ${groups.length} orders replicas after ${timeoutMs} ms, expected ${n}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async close() {
      await coordinator.close();
      await consul.close();
    },
  };
}
