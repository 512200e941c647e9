/**
 * examples/http-orders as its README runs it: consul-dev, two servers as child processes, the client as a child
 * process; then one server is stopped (SIGTERM) while the client runs, with zero failed requests.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestConsul, type TestConsul } from '../support/consul.js';
import { freePort, waitFor } from '../kit/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER = join(root, 'examples', 'http-orders', 'dist', 'server.js');
const CLIENT = join(root, 'examples', 'http-orders', 'dist', 'client.js');

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function run(file: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [file, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out += c));
  return { child, output: () => out, exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]> };
}

async function passingIds(consul: TestConsul): Promise<string[]> {
  const res = await fetch(`${consul.url}/v1/health/service/orders?passing=1`, { signal: AbortSignal.timeout(2000) });
  const entries = (await res.json()) as Array<{ Service: { ID: string } }>;
  return entries.map((e) => e.Service.ID).sort();
}

describe('examples/http-orders', function () {
  this.timeout(60_000);
  let consul: TestConsul;
  const procs: Proc[] = [];

  beforeEach(async () => {
    assert.ok(existsSync(SERVER) && existsSync(CLIENT), 'build first: npm run build');
    consul = await startTestConsul();
  });

  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
    await consul.close();
  });

  it('balances the client over both instances and loses no request when one drains', async () => {
    const env = { CONSUL_HTTP_ADDR: consul.url };
    const [portA, portB] = [await freePort(), await freePort()];
    const a = run(SERVER, [], { ...env, PORT: String(portA) });
    const b = run(SERVER, [], { ...env, PORT: String(portB) });
    procs.push(a, b);
    await waitFor(async () => (await passingIds(consul)).length === 2, {
      timeoutMs: 20_000,
      what: () => `two passing instances (${a.output()}${b.output()})`,
    });
    // The default instance id (core's defaultInstanceId): <service>-<hostname>-<port>-<8 hex per process>.
    const ids = await passingIds(consul);
    const host =
      hostname()
        .replace(/[^A-Za-z0-9.-]/g, '-')
        .slice(0, 63) || 'host';
    const idOf = (port: number): string => {
      const pattern = new RegExp(`^orders-${host.replace(/[.]/g, '\\.')}-${port}-[0-9a-f]{8}$`);
      const matching = ids.filter((id) => pattern.test(id));
      assert.equal(matching.length, 1, `one id like ${pattern} in ${ids.join(', ')}`);
      return matching[0]!;
    };
    const [idA, idB] = [idOf(portA), idOf(portB)];

    // The README's client run: both instances take orders.
    const first = run(CLIENT, ['--requests', '40', '--json'], env);
    procs.push(first);
    const [code] = await first.exited;
    assert.equal(code, 0, first.output());
    const summary = JSON.parse(first.output().trim().split('\n').pop()!) as {
      failed: number;
      byInstance: Record<string, number>;
    };
    assert.equal(summary.failed, 0);
    assert.deepEqual(Object.keys(summary.byInstance).sort(), ids);
    assert.ok(
      Object.values(summary.byInstance).every((n) => n >= 5),
      JSON.stringify(summary.byInstance),
    );

    // The service validates its input and serves the agent's metrics on its own port.
    const bad = await fetch(`http://127.0.0.1:${portA}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'x', quantity: 0 }),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /quantity must be an integer 1-1000, got 0/);
    const metrics = await (await fetch(`http://127.0.0.1:${portA}/metrics`)).text();
    assert.match(metrics, /^shoal_agent_requests_total \d+/m);
    assert.match(metrics, /^shoal_agent_app_metric\{name="orders_stored"\} \d+/m);

    // Stop A while a longer client run is going on: it drains, nothing fails, B takes the rest. A is stopped once
    // it has taken orders from this run (not after a fixed sleep: a loaded machine may take longer than any fixed
    // time to start the client, and A would then be gone before the client ever saw it).
    const storedOnA = async () =>
      Number(
        /^shoal_agent_app_metric\{name="orders_stored"\} (\d+)/m.exec(
          await (await fetch(`http://127.0.0.1:${portA}/metrics`, { signal: AbortSignal.timeout(2000) })).text(),
        )?.[1] ?? NaN,
      );
    const beforeSecond = await storedOnA();
    const second = run(CLIENT, ['--requests', '3000', '--concurrency', '4', '--json'], env);
    procs.push(second);
    await waitFor(async () => (await storedOnA()) >= beforeSecond + 20 || second.child.exitCode !== null, {
      timeoutMs: 30_000,
      what: () => `A to take orders from the second client run (${second.output()})`,
    });
    assert.equal(second.child.exitCode, null, 'the client is still running when A is stopped');
    a.child.kill('SIGTERM');
    const [aCode] = await a.exited;
    assert.equal(aCode, 0, `server A exited with ${aCode}:\n${a.output()}`);
    assert.match(a.output(), /drained/);
    const [secondCode] = await second.exited;
    const after = JSON.parse(second.output().trim().split('\n').pop()!) as {
      failed: number;
      byInstance: Record<string, number>;
    };
    assert.equal(after.failed, 0, second.output());
    assert.equal(secondCode, 0);
    // A served its share until it drained; B took the rest.
    assert.ok((after.byInstance[idA] ?? 0) > 0, JSON.stringify(after.byInstance));
    assert.ok((after.byInstance[idB] ?? 0) > 1500, JSON.stringify(after.byInstance));
    assert.deepEqual(await passingIds(consul), [idB]);
  });
});
