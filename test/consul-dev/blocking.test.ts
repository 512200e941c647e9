import assert from 'node:assert/strict';
import { setup } from './support.js';
import type { Fixture, HealthEntry } from './support.js';

describe('consul-dev conformance: blocking queries', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await setup();
  });
  afterEach(async () => {
    await f.cleanup();
  });

  async function indexOf(path: string): Promise<number> {
    const res = await f.raw('GET', path);
    return Number(res.headers.get('x-consul-index'));
  }

  it('a blocking health query returns as soon as the service changes, with a higher index', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '60s' } } as never);
    const index = await indexOf(`/v1/health/service/${name}`);
    const pending = f.raw('GET', `/v1/health/service/${name}?index=${index}&wait=30s`);
    // Give the query time to reach the server and block.
    await new Promise((r) => setTimeout(r, 100));
    await f.consul.agent.check.pass(`service:${id}`);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
    assert.equal(res.json<HealthEntry[]>()[0]!.Checks.find((c) => c.ServiceID === id)?.Status, 'passing');
  });

  it('a blocking query with ?passing wakes on any change to the service', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '60s' } } as never);
    const index = await indexOf(`/v1/health/service/${name}?passing`);
    const pending = f.raw('GET', `/v1/health/service/${name}?passing&index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    await f.consul.agent.check.warn(`service:${id}`); // still excluded, but the service changed
    const res = await pending;
    assert.equal(res.text, '[]');
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
  });

  it('returns the unchanged index when the wait elapses without a change', async function () {
    this.timeout(10_000);
    const name = f.name();
    f.track(name);
    await f.consul.agent.service.register({ name, port: 1 });
    const index = await indexOf(`/v1/health/service/${name}`);
    const started = Date.now();
    const res = await f.raw('GET', `/v1/health/service/${name}?index=${index}&wait=1s`);
    const took = Date.now() - started;
    assert.equal(res.status, 200);
    assert.equal(Number(res.headers.get('x-consul-index')), index);
    assert.ok(took >= 1000 - 50, `returned after ${took} ms, before the wait`);
    assert.ok(took < 1000 + 1000 / 16 + 1000, `returned after ${took} ms`);
  });

  it('index=0 never blocks', async () => {
    const res = await f.raw('GET', `/v1/health/service/${f.name()}?index=0&wait=10m`);
    assert.equal(res.status, 200);
  });

  it('wakes a blocking query on a missing service when it appears', async () => {
    const name = f.name();
    const index = await indexOf(`/v1/health/service/${name}`);
    const pending = f.raw('GET', `/v1/health/service/${name}?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    f.track(name);
    await f.consul.agent.service.register({ name, port: 1 });
    const res = await pending;
    assert.equal(res.json<HealthEntry[]>().length, 1);
  });

  it('catalog services blocks until a service is added', async () => {
    const index = await indexOf('/v1/catalog/services');
    const pending = f.raw('GET', `/v1/catalog/services?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    const name = f.track(f.name());
    await f.consul.agent.service.register({ name, port: 1 });
    const res = await pending;
    assert.ok(name in res.json<Record<string, string[]>>());
  });

  it('node-consul watch emits change events for a service', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '60s' } } as never);
    const watch = f.consul.watch({
      method: f.consul.health.service,
      options: { service: name, passing: 'true', wait: '30s' } as never,
    });
    try {
      const seen: number[] = [];
      const twoChanges = new Promise<void>((resolve, reject) => {
        watch.on('change', (data: HealthEntry[]) => {
          seen.push(data.length);
          if (seen.length === 1) f.consul.agent.check.pass(`service:${id}`).catch(reject);
          if (data.length === 1) resolve();
        });
        watch.on('error', reject);
      });
      await twoChanges;
      assert.deepEqual(seen, [0, 1]);
    } finally {
      watch.end();
    }
  });

  describe('bad parameters', () => {
    it('answers 400 Invalid wait time', async () => {
      const res = await f.raw('GET', '/v1/health/service/x?index=1&wait=forever');
      assert.equal(res.status, 400);
      assert.equal(res.text, 'Invalid wait time');
    });
    it('answers 400 Invalid index', async () => {
      const res = await f.raw('GET', '/v1/health/service/x?index=-3');
      assert.equal(res.status, 400);
      assert.equal(res.text, 'Invalid index');
    });
  });
});
