/**
 * End to end over loopback: real gRPC servers registered in a real Consul HTTP API (@shoal/consul-dev, or the
 * Consul at CONSUL_HTTP_ADDR), real grpc-js channels on `consul://` targets with Shoal policies.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { ServiceRegistration, ServiceWatcher } from '@shoal/consul';
import { createClient, createLoadReporter, openConsulWatchers, register } from '@shoal/grpc';
import type { CreateClientOptions, LoadReporter, ShoalPolicyName } from '@shoal/grpc';
import { startTestConsul } from '../support/consul.js';
import type { TestConsul } from '../support/consul.js';
import { EchoClient, distribution, echo, startEchoServer } from '../../packages/grpc/test/support/echo.js';
import type { EchoClientInstance, EchoError, EchoServer } from '../../packages/grpc/test/support/echo.js';

const SERVICE = 'echo';

interface Backend {
  server: EchoServer;
  registration: ServiceRegistration;
  reporter?: LoadReporter;
}

describe('gRPC over consul: targets (end to end)', function () {
  this.timeout(30_000);
  let consul: TestConsul;
  let backends: Backend[] = [];
  let clients: EchoClientInstance[] = [];
  let service: string;
  let counter = 0;

  before(() => register({ registry: new Registry() }));

  beforeEach(async () => {
    consul = await startTestConsul();
    service = `${SERVICE}-${++counter}-${process.pid}`;
  });

  afterEach(async () => {
    for (const c of clients) c.close();
    clients = [];
    await Promise.all(
      backends.map(async (b) => {
        await b.registration.close().catch(() => {});
        b.reporter?.close();
        await b.server.close();
      }),
    );
    backends = [];
    await consul.close();
  });

  async function addBackend(
    name: string,
    extra: { zone?: string; weight?: number; utilization?: number } = {},
  ): Promise<Backend> {
    const reporter =
      extra.utilization !== undefined
        ? createLoadReporter({
            registry: new Registry(),
            customReport: () => ({ applicationUtilization: extra.utilization, rpsFractional: 100 }),
          })
        : undefined;
    const server = await startEchoServer(
      name,
      reporter ? { serverOptions: { interceptors: [reporter.interceptor] } } : {},
    );
    const registration = new ServiceRegistration({
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      service,
      id: `${service}-${name}`,
      address: '127.0.0.1',
      port: server.port,
      ...(extra.zone ? { zone: extra.zone } : {}),
      ...(extra.weight ? { weight: extra.weight } : {}),
      check: { ttlMs: 30_000 },
    });
    await registration.register();
    const backend: Backend = { server, registration, ...(reporter ? { reporter } : {}) };
    backends.push(backend);
    return backend;
  }

  function target(query = ''): string {
    return `consul://${consul.host}:${consul.port}/${service}${query}`;
  }

  function client(
    policy: ShoalPolicyName,
    options: Omit<CreateClientOptions, 'policy'> = {},
    query = '',
  ): EchoClientInstance {
    const c = createClient(EchoClient, target(query), {
      policy,
      ...options,
      policyConfig: { slowStart: false, ...options.policyConfig },
    });
    clients.push(c);
    return c;
  }

  it('sends calls to every instance Consul lists (shoal_round_robin)', async () => {
    await Promise.all(['a', 'b', 'c'].map((n) => addBackend(n)));
    const c = client('shoal_round_robin');
    await echo(c, 'warm', { waitForReady: true });
    const counts = await distribution(c, 150);
    assert.deepEqual(Object.keys(counts).sort(), ['a', 'b', 'c'], JSON.stringify(counts));
    for (const n of Object.values(counts)) assert.ok(n >= 40, JSON.stringify(counts));
  });

  it('passes instance weights to shoal_weighted_round_robin', async () => {
    await addBackend('a', { weight: 1 });
    await addBackend('b', { weight: 1 });
    await addBackend('c', { weight: 4 });
    const c = client('shoal_weighted_round_robin');
    await echo(c, 'warm', { waitForReady: true });
    const counts = await distribution(c, 300);
    const share = (counts.c ?? 0) / 300;
    assert.ok(share > 0.55 && share < 0.8, `weight-4 instance share ${share}: ${JSON.stringify(counts)}`);
  });

  it('prefers the zone named in the target (?zone=) in every policy', async () => {
    await addBackend('a', { zone: 'z1' });
    await addBackend('b', { zone: 'z2' });
    await addBackend('c', { zone: 'z2' });
    for (const policy of ['shoal_round_robin', 'shoal_peak_ewma', 'shoal_least_request'] as const) {
      const c = client(policy, {}, '?zone=z1');
      await echo(c, 'warm', { waitForReady: true });
      const counts = await distribution(c, 60, 2);
      assert.ok((counts.a ?? 0) >= 54, `${policy}: ${JSON.stringify(counts)}`);
    }
  });

  it('routes a new instance traffic within 1 s of its registration (default slow start on)', async () => {
    await addBackend('a');
    await addBackend('b');
    // The default slow start (30 s window, starting at 10 % of a share) ramps the newcomer in, but not to zero.
    const c = client('shoal_round_robin', { policyConfig: { slowStart: { windowMs: 30_000 } } });
    await echo(c, 'warm', { waitForReady: true });
    const server = await startEchoServer('d');
    const registration = new ServiceRegistration({
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
      service,
      id: `${service}-d`,
      address: '127.0.0.1',
      port: server.port,
      check: { ttlMs: 30_000 },
    });
    backends.push({ server, registration });
    await registration.register();
    const registeredAt = Date.now();
    while (server.calls === 0) {
      assert.ok(Date.now() - registeredAt < 1000, 'the new instance got no call within 1 s');
      await echo(c);
    }
  });

  /** Runs calls from 8 workers until `during` resolves; returns the errors seen. */
  async function callsDuring(c: EchoClientInstance, during: () => Promise<void>): Promise<string[]> {
    let stop = false;
    const errors: string[] = [];
    const load = Promise.all(
      Array.from({ length: 8 }, async () => {
        while (!stop) {
          await echo(c).catch((e: EchoError) =>
            errors.push(`${e.code} ${e.details}${e.afterResponseHeaders ? ' (after response headers)' : ''}`),
          );
        }
      }),
    );
    try {
      await during();
    } finally {
      stop = true;
      await load;
    }
    return errors;
  }

  it('loses no call when a server shuts down gracefully and deregisters, and recovers', async () => {
    const [, b] = await Promise.all(['a', 'b', 'c'].map((n) => addBackend(n)));
    const c = client('shoal_round_robin');
    await echo(c, 'warm', { waitForReady: true });
    for (const backend of backends) backend.server.delay = 5;
    const errors = await callsDuring(c, async () => {
      await sleep(150);
      await b!.registration.close();
      await b!.server.close();
      await sleep(300);
    });
    assert.deepEqual(errors, []);
    const counts = await distribution(c, 60);
    assert.deepEqual(Object.keys(counts).sort(), ['a', 'c'], JSON.stringify(counts));
  });

  it('loses no idempotent call with retry enabled when a server process crashes, and recovers', async () => {
    await Promise.all(['a', 'c'].map((n) => addBackend(n)));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./fixtures/echo-server-process.ts', import.meta.url)), 'b', '5'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const port = (JSON.parse(line) as { port: number }).port;
      const registration = new ServiceRegistration({
        consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
        service,
        id: `${service}-b`,
        address: '127.0.0.1',
        port,
        check: { ttlMs: 30_000 },
      });
      await registration.register();
      const c = client('shoal_round_robin', { retry: { maxAttempts: 3 } });
      await echo(c, 'warm', { waitForReady: true });
      for (const backend of backends) backend.server.delay = 5;
      const before = await distribution(c, 30, 3);
      assert.ok((before.b ?? 0) > 0, `the child server got no traffic: ${JSON.stringify(before)}`);
      const errors = await callsDuring(c, async () => {
        await sleep(150);
        child.kill('SIGKILL');
        await sleep(300);
        await registration.close();
        await sleep(200);
      });
      // Every call the dead server had not begun answering was retried elsewhere. A call whose response headers
      // had arrived when the process died (between its headers and its trailers) is committed and, by gRPC's
      // retry design (A6), not retried: at most one per worker, and only in that window (seen about 1 run in 40
      // on a loaded machine).
      const lost = errors.filter((e) => !e.endsWith('(after response headers)'));
      assert.deepEqual(lost, []);
      assert.ok(errors.length <= 8, `more committed calls failed than were in flight: ${JSON.stringify(errors)}`);
      const counts = await distribution(c, 60);
      assert.deepEqual(Object.keys(counts).sort(), ['a', 'c'], JSON.stringify(counts));
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
  });

  it('keeps calling the cached instances while Consul is down', async function () {
    await Promise.all(['a', 'b'].map((n) => addBackend(n)));
    const c = client('shoal_peak_ewma');
    await echo(c, 'warm', { waitForReady: true });
    await distribution(c, 20);
    if (consul.isReal) this.skip();
    await consul.close();
    const counts = await distribution(c, 100, 4);
    assert.equal((counts.a ?? 0) + (counts.b ?? 0), 100);
  });

  it('sends less traffic to a slow server under shoal_peak_ewma', async () => {
    const [a] = await Promise.all(['a', 'b', 'c'].map((n) => addBackend(n)));
    a!.server.delay = 100;
    const c = client('shoal_peak_ewma');
    await echo(c, 'warm', { waitForReady: true });
    const counts = await distribution(c, 300, 6);
    // Relative to the fast servers (round robin would give all three 100): on a loaded machine the fast ones are
    // slower too, so an absolute share would measure the machine, not the policy.
    const fast = Math.min(counts.b ?? 0, counts.c ?? 0);
    assert.ok(
      (counts.a ?? 0) * 2 < fast,
      `the slow server a got more than half of a fast one's calls: ${JSON.stringify(counts)}`,
    );
  });

  it('uses ORCA load from trailers in shoal_weighted_least_load', async () => {
    await addBackend('busy', { utilization: 0.9 });
    await addBackend('idle', { utilization: 0.1 });
    const c = client('shoal_weighted_least_load', {
      policyConfig: { strategyOptions: { blackoutPeriodMs: 0, weightUpdatePeriodMs: 100 } },
    });
    await echo(c, 'warm', { waitForReady: true });
    // Weights are recomputed on the balancer's 1 s tick: keep traffic flowing past one.
    const until = Date.now() + 1200;
    while (Date.now() < until) await distribution(c, 20, 4);
    const counts = await distribution(c, 300, 4);
    assert.ok((counts.busy ?? 0) < (counts.idle ?? 0) / 2, JSON.stringify(counts));
  });

  it('fails the channel with a clear error for a bad Shoal service config', async () => {
    await addBackend('a');
    const c = new EchoClient(target(), grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({
        loadBalancingConfig: [{ shoal_peak_ewma: { slowStart: { windowMs: -1 } } }],
      }),
    });
    clients.push(c);
    await assert.rejects(echo(c, 'x', { deadlineMs: 3000 }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /loadBalancingConfig\[0\]\.shoal_peak_ewma\.slowStart\.windowMs must be/);
      return true;
    });
  });

  it('fails calls to a service with no healthy instance with UNAVAILABLE', async () => {
    const c = client('shoal_round_robin');
    await assert.rejects(echo(c, 'x', { deadlineMs: 3000 }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /no addresses resolved/);
      return true;
    });
  });

  it('uses the watcher given to register() for consul:/// targets, and leaves it open', async () => {
    await addBackend('a');
    const watcher = new ServiceWatcher({
      consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) },
    });
    try {
      register({ watcher, registry: new Registry() });
      const c = createClient(EchoClient, `consul:///${service}`, { policy: 'shoal_round_robin' });
      clients.push(c);
      assert.equal((await echo(c, 'x', { waitForReady: true })).server, 'a');
      c.close();
      clients = [];
      assert.equal(watcher.activeQueries, 0, 'the channel released its watch');
      // Still usable: Shoal did not close it.
      const watch = watcher.watch(service);
      assert.equal((await watch.ready()).length, 1);
      watch.close();
    } finally {
      register({ registry: new Registry() });
      await watcher.close();
    }
  });

  it('releases its Consul watch when the channel closes', async () => {
    await addBackend('a');
    const before = openConsulWatchers();
    const c = client('shoal_round_robin');
    await echo(c, 'warm', { waitForReady: true });
    assert.equal(openConsulWatchers(), before + 1);
    c.close();
    clients = [];
    assert.equal(openConsulWatchers(), before);
  });
});
