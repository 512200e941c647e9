import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ServiceRegistration, ServiceWatcher, type Watch } from '@shoal/consul';
import { resolveServiceWatcherOptions } from '@shoal/consul/internal';
import type { Instance } from '@shoal/core';
import { startTestConsul, type TestConsul } from '../../../test/support/consul.js';
import { eventually } from './support/scripted-consul.js';

let seq = 0;
const uniqueService = () => `shoal-w-${process.pid}-${Date.now().toString(36)}-${seq++}`;

describe('ServiceWatcher options', () => {
  it('applies defaults', () => {
    const o = resolveServiceWatcherOptions();
    assert.equal(o.waitMs, 300_000);
    assert.equal(o.minQueryIntervalMs, 100);
    assert.equal(o.backoff.baseMs, 250);
    assert.equal(o.backoff.capMs, 2000);
    assert.equal(o.settleGraceMs, 10_000);
    assert.equal(o.consul.url, 'http://127.0.0.1:8500');
  });

  it('names the option and the value in validation errors', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ waitMs: 500 }, /^waitMs must be an integer between 1000 and 600000, got 500$/],
      [{ waitMs: 700_000 }, /^waitMs must be an integer between 1000 and 600000, got 700000$/],
      [{ minQueryIntervalMs: -1 }, /^minQueryIntervalMs must be an integer between 0 and 60000, got -1$/],
      [{ settleGraceMs: -1 }, /^settleGraceMs must be an integer between 0 and 600000, got -1$/],
      [{ backoff: { baseMs: 0 } }, /^baseMs must be a finite number > 0, got 0$/],
      [{ consul: { url: 'nope://' } }, /consul\.url must/],
      [{ wait: 5 }, /ServiceWatcher options has an unknown option "wait"/],
    ];
    for (const [input, pattern] of bad) {
      assert.throws(
        () => new ServiceWatcher(input as never),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'SHOAL_ERR_INVALID_ARGUMENT');
          assert.match(e.message, pattern);
          return true;
        },
      );
    }
  });

  it('validates watch() arguments', async () => {
    const watcher = new ServiceWatcher({ consul: { url: 'http://127.0.0.1:1' } });
    try {
      assert.throws(() => watcher.watch(''), /service must be a non-empty string, got ""$/);
      assert.throws(() => watcher.watch('a b'), /service must start with a letter or digit.*"a b"/);
      assert.throws(() => watcher.watch('a', { passing: 'yes' as never }), /passing must be a boolean, got "yes"$/);
      assert.throws(() => watcher.watch('a', { tag: '' }), /tag must be a non-empty string, got ""$/);
      assert.throws(() => watcher.watch('a', { dc: 'd c' }), /dc must be a string matching/);
      assert.throws(() => watcher.watch('a', { zones: ['x'] } as never), /watch options has an unknown option "zones"/);
      assert.equal(watcher.activeQueries, 0);
    } finally {
      await watcher.close();
    }
    assert.throws(() => watcher.watch('a'), { code: 'SHOAL_ERR_CLOSED' });
  });
});

describe('ServiceWatcher (against Consul over HTTP)', () => {
  let consul: TestConsul | undefined;
  const closers: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await consul?.close();
    consul = undefined;
  });

  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    closers.push(() => x.close());
    return x;
  };
  const conn = (c: TestConsul) => ({ url: c.url, ...(c.token ? { token: c.token } : {}) });
  const register = async (c: TestConsul, service: string, port: number, extra: Record<string, unknown> = {}) => {
    const reg = track(new ServiceRegistration({ consul: conn(c), service, address: '127.0.0.1', port, ...extra }));
    await reg.register();
    return reg;
  };
  const ids = (list: readonly Instance[] | undefined) => (list ?? []).map((i) => i.port);

  it('follows registrations and deregistrations through blocking queries, not polling', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    const registry = new Registry();
    const watcher = track(new ServiceWatcher({ consul: conn(consul), registry }));
    const watch = watcher.watch(service);
    assert.deepEqual(await watch.ready(), []);
    const changes: number[][] = [];
    watch.onChange((l) => changes.push(ids(l)));
    const a = await register(consul, service, 9101);
    await eventually(() => changes.length === 1, 5000, 'the first instance');
    await register(consul, service, 9102);
    await eventually(() => changes.length === 2, 5000, 'the second instance');
    await a.close();
    await eventually(() => changes.length === 3, 5000, 'the removal');
    assert.deepEqual(changes, [[9101], [9101, 9102], [9102]]);
    // Each change wakes the blocking query a few times (register, then its first heartbeat); nothing polls.
    const queries = (await registry.getMetricsAsJSON()).find((m) => m.name === 'shoal_consul_watch_queries_total');
    const n = Number(queries?.values[0]?.value);
    assert.ok(n <= 12, `expected a handful of queries for 3 changes, got ${n}`);
  });

  it('leaves out failing instances by default and includes them with passing: false', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    const watcher = track(new ServiceWatcher({ consul: conn(consul) }));
    await register(consul, service, 9111);
    const sick = await register(consul, service, 9112);
    await sick.setStatus('critical', 'db down');
    const healthy = watcher.watch(service);
    const all = watcher.watch(service, { passing: false });
    await Promise.all([healthy.ready(), all.ready()]);
    // A real agent syncs the status change to the catalog asynchronously; wait for it rather than assume it.
    await eventually(() => ids(healthy.current()).join() === '9111', 5000, 'only the passing instance');
    assert.deepEqual(ids(all.current()), [9111, 9112]);
    await sick.setStatus('passing');
    await eventually(() => healthy.current()?.length === 2, 5000, 'the instance to pass again');
  });

  it('filters by tag and zone', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    await register(consul, service, 9121, { tags: ['blue'], zone: 'eu-1' });
    await register(consul, service, 9122, { tags: ['green'], zone: 'eu-1' });
    await register(consul, service, 9123, { tags: ['blue'], zone: 'eu-2' });
    const watcher = track(new ServiceWatcher({ consul: conn(consul) }));
    assert.deepEqual(ids(await watcher.watch(service, { tag: 'blue' }).ready()), [9121, 9123]);
    assert.deepEqual(ids(await watcher.watch(service, { zone: 'eu-1' }).ready()), [9121, 9122]);
    assert.deepEqual(ids(await watcher.watch(service, { tag: 'blue', zone: 'eu-2' }).ready()), [9123]);
  });

  it('rejects ready() for an invalid filter expression instead of retrying forever', async () => {
    consul = await startTestConsul();
    const watcher = track(new ServiceWatcher({ consul: conn(consul) }));
    await assert.rejects(
      watcher.watch(uniqueService(), { filter: 'Service.Meta.x ===' }).ready(),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'SHOAL_ERR_CONSUL_REQUEST');
        assert.match(e.message, /invalid filter expression/);
        return true;
      },
    );
  });

  it('serves many consumers of one service from one query', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    const watcher = track(new ServiceWatcher({ consul: conn(consul) }));
    const watches: Watch[] = Array.from({ length: 20 }, () => watcher.watch(service));
    assert.equal(watcher.activeQueries, 1);
    await Promise.all(watches.map((w) => w.ready()));
    await register(consul, service, 9131);
    await eventually(() => watches.every((w) => w.current()?.length === 1), 5000, 'every consumer to see it');
    for (const w of watches) w.close();
    assert.equal(watcher.activeQueries, 0);
  });

  it('ends every iterator on close()', async () => {
    consul = await startTestConsul();
    const watcher = new ServiceWatcher({ consul: conn(consul) });
    const watch = watcher.watch(uniqueService());
    const seen: number[] = [];
    const loop = (async () => {
      for await (const list of watch) seen.push(list.length);
    })();
    await eventually(() => seen.length === 1, 5000, 'the first list');
    await watcher.close();
    await loop;
    assert.deepEqual(seen, [0]);
    assert.throws(() => watcher.watch('x'), { code: 'SHOAL_ERR_CLOSED' });
  });
});
