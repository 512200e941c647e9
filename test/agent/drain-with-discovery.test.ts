/**
 * End to end: two instances of a service register through their agents in Consul (@shoal/consul-dev, or a real
 * Consul with CONSUL_HTTP_ADDR), clients discover them with @shoal/consul's ServiceWatcher, and one instance is
 * drained under load. With a drain grace long enough for watchers to see the deregistration, no client request
 * fails and none even needs a retry.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createAgent, type Agent, type DrainResult } from '@shoal/agent';
import { ServiceWatcher, type Watch } from '@shoal/consul';
import { startTestConsul, type TestConsul } from '../support/consul.js';

function get(port: number, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('agent drain with Consul discovery (end to end)', () => {
  let consul: TestConsul | undefined;
  let watcher: ServiceWatcher | undefined;
  let watch: Watch | undefined;
  const agents: Agent[] = [];
  const servers: http.Server[] = [];
  const registries = new Map<string, Registry>();

  afterEach(async () => {
    watch?.close();
    await watcher?.close();
    for (const a of agents.splice(0)) await a.close();
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()));
    }
    await consul?.close();
    consul = watcher = watch = undefined;
  });

  async function instance(name: string, onDrained: (r: DrainResult) => void): Promise<Agent> {
    const server = http.createServer((_req, res) => setTimeout(() => res.end(name), 20));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const agent = createAgent({
      service: 'e2e-orders',
      port,
      address: '127.0.0.1',
      instanceId: `e2e-orders-${name}`,
      consul: { url: consul!.url, ...(consul!.token ? { token: consul!.token } : {}) },
      registry: registries.set(name, new Registry()).get(name)!,
      drainGraceMs: 500,
      onDrained,
    });
    agents.push(agent);
    agent.instrumentHttpServer(server);
    await agent.start();
    return agent;
  }

  it('drains one of two instances under load with no failed and no retried request', async function () {
    consul = await startTestConsul();
    let drained!: (r: DrainResult) => void;
    const drainedA = new Promise<DrainResult>((resolve) => (drained = resolve));
    const a = await instance('a', drained);
    await instance('b', () => {});
    watcher = new ServiceWatcher({ consul: { url: consul.url, ...(consul.token ? { token: consul.token } : {}) } });
    watch = watcher.watch('e2e-orders', { passing: true });
    const list = await watch.ready();
    if (list.length < 2) {
      await new Promise<void>((resolve) => {
        const dispose = watch!.onChange((l) => {
          if (l.length === 2) {
            dispose();
            resolve();
          }
        });
      });
    }

    const keepAlive = new http.Agent({ keepAlive: true });
    const served: Record<string, number> = {};
    const failures: string[] = [];
    let stop = false;
    let next = 0;
    const worker = async () => {
      while (!stop) {
        const instances = watch!.current() ?? [];
        const target = instances[next++ % instances.length];
        if (!target) {
          failures.push('no instance listed');
          break;
        }
        try {
          const res = await get(target.port, keepAlive);
          if (res.status === 200) served[res.body] = (served[res.body] ?? 0) + 1;
          else failures.push(`${target.id}: status ${res.status}`);
        } catch (error) {
          failures.push(`${target.id}: ${(error as Error).message}`);
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    const until = async (cond: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    await until(() => (served.a ?? 0) >= 50 && (served.b ?? 0) >= 50);
    void a.drain(10_000, 'scale-down');
    const result = await drainedA;
    const aAtEnd = served.a ?? 0;
    const bAtEnd = served.b ?? 0;
    await until(() => (served.b ?? 0) >= bAtEnd + 50);
    stop = true;
    await Promise.all(workers);
    keepAlive.destroy();

    assert.deepEqual(failures, []);
    assert.deepEqual(result, { reason: 'scale-down', timedOut: false, inFlight: 0 });
    assert.equal(served.a, aAtEnd, 'nothing reached a after its drain');
    assert.deepEqual(
      (watch.current() ?? []).map((i) => i.id),
      ['e2e-orders-b'],
    );
    const text = await registries.get('a')!.metrics();
    assert.match(text, /shoal_agent_refused_requests_total 0/, 'no request even had to be refused');
  });
});
