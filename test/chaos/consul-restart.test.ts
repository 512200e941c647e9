/**
 * Chaos: Consul is SIGKILLed, stays down, and comes back EMPTY (a dev agent, or an agent that lost its data) while
 * steady traffic flows through `consul:///greeter` (@shoal/grpc) and `orders.service.consul` (@shoal/http) to two
 * real processes of each service. Every call is counted; the goal is 0 failed calls and 0 processes left.
 *
 * What makes it pass (packages/consul README, "Across a Consul restart"): watchers keep their last list while Consul
 * is down and retry at most 2 s apart; after the restart they hold that list until every instance is back (or the
 * 10 s settle grace ends); registrations retry their heartbeat at most 2 s apart and register again at once on the
 * 404 "unknown check" of the empty Consul.
 *
 * Figures (calls, failed, p99 before/during/after, recovery) are printed and recorded in docs/reliability.md:
 * `SHOAL_TEST=test/chaos/consul-restart.test.ts npx mocha`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { createClient, register } from '@shoal/grpc';
import { createDispatcher } from '@shoal/http';
import { freePort, survivors, waitFor } from '../kit/index.js';
import { Traffic } from './support/traffic.js';
import { GreeterClient } from '../../examples/grpc-greeter/dist/greeter.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONSUL_CLI = `${ROOT}packages/consul-dev/dist/cli.js`;
const GREETER = `${ROOT}examples/grpc-greeter/dist/server.js`;
const ORDERS = `${ROOT}examples/http-orders/dist/server.js`;
/**
 * How long Consul stays dead. The scenario is 30 s; 6 s exercises the same mechanism: watchers and
 * registrations retry at most 2 s apart, so after 6 s both sit at that cap holding their last state exactly as they
 * would after 30 s (nothing expires while Consul is gone: it is the clock of every TTL). A longer outage only adds
 * retries at the cap. `SHOAL_CHAOS_CONSUL_DOWN_MS=30000` runs the full outage (figures in docs/reliability.md).
 */
const DOWN_MS = Number(process.env.SHOAL_CHAOS_CONSUL_DOWN_MS ?? 6000);
const STEADY_MS = 3000;

async function firstLine(child: ChildProcess, what: string): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`${what} exited with ${String(code)} before printing`);
    }),
  ])) as [string];
  return line;
}

async function healthy(url: string, service: string): Promise<number> {
  const res = await fetch(`${url}/v1/health/service/${service}?passing=true`);
  return ((await res.json()) as unknown[]).length;
}

describe('chaos: Consul SIGKILLed and restarted empty under steady gRPC + HTTP traffic', function () {
  this.timeout(120_000 + DOWN_MS);
  const children: ChildProcess[] = [];
  const pids: number[] = [];

  const start = (args: string[], env: Record<string, string>) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.resume();
    children.push(child);
    pids.push(child.pid!);
    return child;
  };
  const stop = async (child: ChildProcess, signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  };

  afterEach(async () => {
    for (const c of children.splice(0)) await stop(c, 'SIGKILL');
    pids.length = 0;
  });

  it('costs no call: watchers hold their list, registrations come back at once', async () => {
    const consulPort = await freePort();
    const consulUrl = `http://127.0.0.1:${consulPort}`;
    const startConsul = async () => {
      const c = start([CONSUL_CLI, '--port', String(consulPort)], {});
      await waitFor(() => fetch(`${consulUrl}/v1/status/leader`).then((r) => r.ok), {
        what: 'consul-dev to answer',
        retryErrors: true,
      });
      return c;
    };
    let consul = await startConsul();

    const services: ChildProcess[] = [];
    for (let i = 0; i < 2; i++) {
      services.push(start([GREETER], { CONSUL_HTTP_ADDR: `127.0.0.1:${consulPort}`, PORT: '0' }));
      services.push(start([ORDERS], { CONSUL_HTTP_ADDR: consulUrl, PORT: String(await freePort()) }));
    }
    await Promise.all(services.map((s, i) => firstLine(s, `service ${i}`)));
    await waitFor(
      async () => (await healthy(consulUrl, 'greeter')) === 2 && (await healthy(consulUrl, 'orders')) === 2,
      {
        what: 'two greeters and two orders passing',
        timeoutMs: 20_000,
        retryErrors: true,
      },
    );

    register({ consul: { url: consulUrl } });
    const greeter = createClient(GreeterClient, 'consul:///greeter', {
      policy: 'shoal_round_robin',
      retry: { maxAttempts: 3 },
    });
    const dispatcher = createDispatcher({ consul: { url: consulUrl }, strategy: 'round_robin' });

    const grpcCall = () =>
      new Promise<string>((resolve, reject) =>
        greeter.sayHello(
          { name: 'chaos' },
          { deadline: Date.now() + 10_000 },
          (err: grpc.ServiceError | null, reply?: { instance?: string }) =>
            err ? reject(err) : resolve(reply?.instance ?? ''),
        ),
      );
    const httpCall = async () => {
      const res = await fetch('http://orders.service.consul/healthz', {
        dispatcher,
        signal: AbortSignal.timeout(10_000),
      } as unknown as RequestInit);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      return 'ok';
    };
    const traffic = new Traffic({ grpc: grpcCall, http: httpCall }, 40);
    traffic.start();

    try {
      await Traffic.pause(STEADY_MS);
      assert.ok(traffic.samples.length > 20, 'traffic flows before the kill');

      // A marker only this test writes: its absence after the restart proves Consul came back with no state, without
      // racing the registrations (which may well be back before the first look).
      const marker = await fetch(`${consulUrl}/v1/kv/chaos-restart-marker`, { method: 'PUT', body: 'before' });
      assert.equal(marker.status, 200, 'the marker is written before the kill');

      // A real kill: no shutdown, no deregistration; everything Consul knew is gone.
      traffic.phase = 'during';
      const killedAt = performance.now();
      await stop(consul, 'SIGKILL');
      await Traffic.pause(DOWN_MS);
      consul = await startConsul();
      const restartedAt = performance.now();
      const markerAfter = await fetch(`${consulUrl}/v1/kv/chaos-restart-marker`);
      assert.equal(markerAfter.status, 404, 'Consul came back empty');

      await waitFor(
        async () => (await healthy(consulUrl, 'greeter')) === 2 && (await healthy(consulUrl, 'orders')) === 2,
        { what: 'every instance registered again', timeoutMs: 20_000, retryErrors: true },
      );
      const reRegisteredMs = Math.round(performance.now() - restartedAt);
      // The watchers' next answer holds every instance again, which ends their settle grace (2 s = their retry cap,
      // in case a watch was between retries); the "after" phase then runs on what the new Consul says.
      await Traffic.pause(2000);
      traffic.phase = 'after';
      await Traffic.pause(STEADY_MS);
      await traffic.stop();

      const result = traffic.print('consul-restart', {
        consulDownMs: DOWN_MS,
        reRegisteredAfterRestartMs: reRegisteredMs,
        recoveryMs: traffic.recoveryMs(killedAt, 250),
      });
      const figures = traffic.figures();
      assert.deepEqual([...figures.grpc!.errors, ...figures.http!.errors], [], JSON.stringify(result));
      assert.equal(figures.grpc!.failed + figures.http!.failed, 0);
      assert.ok(figures.grpc!.calls > 100 && figures.http!.calls > 100, JSON.stringify(result));
    } finally {
      await traffic.stop();
      greeter.close();
      await dispatcher.close();
    }

    // The services stop cleanly (SIGTERM: deregister, drain, exit), then Consul; nothing is left.
    await Promise.all(services.map((s) => stop(s, 'SIGTERM')));
    await stop(consul, 'SIGKILL');
    assert.deepEqual(survivors(pids), [], 'no process left');
  });
});
