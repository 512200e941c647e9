/**
 * The running system the demo shows: @shoal/consul-dev, the coordinator with the local actuator running
 * replicas of ./service.js, and a gRPC client calling them through consul:///greeter with shoal_peak_ewma.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { ServiceWatcher, type Watch } from '@shoal/consul';
import { startConsulDev, type ConsulDevServer } from '@shoal/consul-dev';
import { createCoordinator, type Coordinator } from '@shoal/coordinator';
import type { Logger } from '@shoal/core';
import { createClient, register } from '@shoal/grpc';
import { loadGreeter, type GreeterClient } from './greeter-proto.js';
import type { DemoStack } from './run.js';

export const SERVICE = 'greeter';
const SERVICE_JS = fileURLToPath(new URL('./service.js', import.meta.url));

export interface StackOptions {
  fast: boolean;
  runId: string;
  logger: Logger;
  /** Aborts the start-up (Ctrl-C while starting). */
  signal: AbortSignal;
}

export interface Stack extends DemoStack {
  readonly consulUrl: string;
  readonly coordinatorUrl: string;
  close(): Promise<void>;
}

/** The coordinator config the demo runs: one service, the local actuator, a policy on in-flight calls. */
export function demoCoordinatorConfig(options: { fast: boolean; consulUrl: string; token: string; runId: string }) {
  const { fast } = options;
  return {
    listen: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' },
    syncPeriodMs: fast ? 1000 : 2000,
    consul: { url: options.consulUrl },
    services: [
      {
        name: SERVICE,
        token: options.token,
        minReplicas: 1,
        maxReplicas: 8,
        reportIntervalMs: fast ? 500 : 1000,
        drainTimeoutMs: 10_000,
        policy: {
          // Each call holds a worker ~50 ms: 2 in flight per replica is ~40 req/s per replica.
          targets: [{ metric: 'inFlight', type: 'average' as const, value: 2 }],
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 0 },
            scaleDown: {
              stabilizationWindowSeconds: fast ? 4 : 15,
              policies: [{ type: 'Percent' as const, value: 100, periodSeconds: fast ? 2 : 5 }],
            },
          },
        },
        actuator: {
          type: 'local' as const,
          command: process.execPath,
          args: [SERVICE_JS, '--consul', options.consulUrl, '--demo-run', options.runId],
          stopTimeoutMs: 10_000,
        },
      },
    ],
  };
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const { logger } = options;
  const closers: Array<() => Promise<void> | void> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        logger.warn({ err }, 'demo: error while stopping');
      }
    }
  };
  try {
    const consul: ConsulDevServer = await startConsulDev({ host: '127.0.0.1', port: 0, logger });
    closers.push(() => consul.close());
    abortIf(options.signal);

    const token = randomBytes(24).toString('hex');
    const registry = new Registry();
    const coordinator: Coordinator = createCoordinator(
      demoCoordinatorConfig({ fast: options.fast, consulUrl: consul.url, token, runId: options.runId }),
      { logger, registry },
    );
    closers.push(() => coordinator.close());
    await coordinator.start();
    abortIf(options.signal);
    const coordinatorUrl = coordinator.urls().http;

    const watcher = new ServiceWatcher({ consul: { url: consul.url }, logger, registry });
    closers.push(() => watcher.close());
    const watch: Watch = watcher.watch(SERVICE);
    closers.push(() => watch.close());
    await waitForReplicas(watch, 1, 30_000, options.signal);

    register({ consul: { url: consul.url }, watcher, logger, registry });
    const { Client } = loadGreeter();
    const client: GreeterClient = createClient(Client, `consul:///${SERVICE}`, { policy: 'shoal_peak_ewma' });
    closers.push(() => client.close());

    const pids = new Set<number>();
    let lastDecisionAt = -Infinity;
    const notePids = (): void => {
      for (const r of coordinator.actuator(SERVICE)?.replicas() ?? []) if (r.pid !== undefined) pids.add(r.pid);
    };
    notePids();

    return {
      consulUrl: consul.url,
      coordinatorUrl,
      call: () =>
        new Promise<void>((resolve, reject) => {
          client.sayHello({ name: 'demo' }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null) =>
            err ? reject(err) : resolve(),
          );
        }),
      servingReplicas: () => watch.current()?.length ?? 0,
      desiredReplicas: () => coordinator.services().find((s) => s.name === SERVICE)?.desiredReplicas,
      takeDecisions: async () => {
        notePids();
        // The log is a ring buffer, newest first; take what is newer than the last one seen, oldest first.
        const fresh = (coordinator.decisions(SERVICE) ?? [])
          .filter((d) => d.atMs > lastDecisionAt)
          .sort((a, b) => a.atMs - b.atMs);
        if (fresh.length > 0) lastDecisionAt = fresh[fresh.length - 1]!.atMs;
        return fresh
          .filter((d) => d.desiredReplicas !== d.currentReplicas)
          .map((d) => ({ atMs: d.atMs, from: d.currentReplicas, to: d.desiredReplicas, reasons: d.reasons }));
      },
      replicaPids: () => {
        notePids();
        return [...pids];
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function abortIf(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('interrupted while starting');
}

async function waitForReplicas(watch: Watch, n: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((watch.current()?.length ?? 0) < n) {
    abortIf(signal);
    if (Date.now() > deadline) {
      throw new Error(`no healthy "${SERVICE}" replica in Consul after ${timeoutMs / 1000} s (see the log)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
