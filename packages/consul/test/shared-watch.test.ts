import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import sinon from 'sinon';
import { Registry } from 'prom-client';
import { ServiceWatcher } from '@shoal/consul';
import type { Instance } from '@shoal/core';
import { eventually, healthEntry, startScriptedConsul, type ScriptedConsul } from './support/scripted-consul.js';

const idx = (n: number) => ({ 'x-consul-index': String(n) });

describe('SharedWatch (blocking-query loop, against a scripted peer)', () => {
  let peer: ScriptedConsul | undefined;
  let watcher: ServiceWatcher | undefined;

  afterEach(async () => {
    await watcher?.close();
    await peer?.close();
    watcher = undefined;
    peer = undefined;
  });

  it('emits only when the set or an instance really changed', async () => {
    const answers = [
      { headers: idx(10), body: [healthEntry('a'), healthEntry('b')] },
      { headers: idx(11), body: [healthEntry('b'), healthEntry('a')] }, // same set, other order
      { headers: idx(12), body: [healthEntry('b'), healthEntry('a')] }, // same
      { headers: idx(13), body: [healthEntry('a', { meta: { weight: '5' } }), healthEntry('b')] }, // weight changed
      { headers: idx(14), body: [healthEntry('a', { meta: { weight: '5' } })] }, // b removed
    ];
    peer = await startScriptedConsul((_r, n) => answers[n - 1] ?? { hang: true });
    watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 0, waitMs: 1000 });
    const w = watcher.watch('orders');
    const seen: Array<readonly Instance[]> = [];
    w.onChange((list) => seen.push(list));
    await eventually(() => peer!.requests.length >= 6, 5000, 'six queries');
    assert.equal(seen.length, 3);
    assert.deepEqual(
      seen.map((l) => l.map((i) => `${i.id}:${i.weight}`)),
      [['a:1', 'b:1'], ['a:5', 'b:1'], ['a:5']],
    );
    // Each query carries the previous answer's index; the first has none.
    assert.equal(peer.requests[0]!.query.get('index'), null);
    assert.deepEqual(
      peer.requests.slice(1, 6).map((r) => r.query.get('index')),
      ['10', '11', '12', '13', '14'],
    );
    assert.equal(peer.requests[1]!.query.get('wait'), '1000ms');
    assert.equal(peer.requests[0]!.query.get('passing'), 'true');
  });

  it('starts over from index 0 when the index goes backwards', async () => {
    const answers = [
      { headers: idx(100), body: [healthEntry('a')] },
      { headers: idx(7), body: [healthEntry('a')] },
      { headers: idx(8), body: [healthEntry('a')] },
    ];
    peer = await startScriptedConsul((_r, n) => answers[n - 1] ?? { hang: true });
    watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 0, waitMs: 1000 });
    watcher.watch('orders');
    await eventually(() => peer!.requests.length >= 4, 5000, 'four queries');
    assert.deepEqual(
      peer.requests.slice(0, 4).map((r) => r.query.get('index')),
      [null, '100', null, '8'],
    );
  });

  it('never loops hot: after one immediate re-query, query starts are minQueryIntervalMs apart (fake timers)', async () => {
    let n = 0;
    // A peer whose index moves on every answer would otherwise be queried as fast as the socket allows.
    peer = await startScriptedConsul(() => ({ headers: idx(++n), body: [healthEntry('a')] }));
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    try {
      watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 50, waitMs: 1000 });
      watcher.watch('orders');
      const settle = async (count: number) => {
        for (let i = 0; i < 500 && peer!.requests.length < count; i++) await new Promise((r) => setImmediate(r));
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      };
      await settle(1);
      // The first answer moved the index: one immediate re-query is allowed...
      await settle(2);
      assert.equal(peer.requests.length, 2, 'one immediate re-query after an advancing answer');
      // ...and from then on every start waits for the interval, however the index moves.
      for (let q = 3; q <= 7; q++) {
        assert.equal(peer.requests.length, q - 1);
        await clock.tickAsync(49);
        await settle(q);
        assert.equal(peer.requests.length, q - 1, `query ${q} waits for the minimum interval`);
        await clock.tickAsync(1);
        await settle(q);
        assert.equal(peer.requests.length, q, `query ${q} starts once the interval passed`);
      }
    } finally {
      await watcher?.close();
      watcher = undefined;
      clock.restore();
    }
  });

  it('while the list is empty and the index moves, follows every change within 10 ms, not minQueryIntervalMs (fake timers)', async () => {
    let n = 0;
    // A service at zero: instances register (critical) and the passing list stays empty until one passes.
    peer = await startScriptedConsul(() => ({ headers: idx(++n), body: [] }));
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    try {
      watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 100, waitMs: 1000 });
      watcher.watch('orders');
      const settle = async (count: number) => {
        for (let i = 0; i < 500 && peer!.requests.length < count; i++) await new Promise((r) => setImmediate(r));
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      };
      await settle(2);
      assert.equal(peer.requests.length, 2, 'one immediate re-query after an advancing answer');
      for (let q = 3; q <= 6; q++) {
        await clock.tickAsync(9);
        await settle(q);
        assert.equal(peer.requests.length, q - 1, `query ${q} still waits 10 ms: it never loops hot`);
        await clock.tickAsync(1);
        await settle(q);
        assert.equal(peer.requests.length, q, `query ${q} starts 10 ms after the last, not 100`);
      }
    } finally {
      await watcher?.close();
      watcher = undefined;
      clock.restore();
    }
  });

  it('keeps the last good list (stale) while Consul fails, then recovers', async () => {
    let failing = false;
    let index = 1;
    peer = await startScriptedConsul(() =>
      failing
        ? { status: 500, body: 'rpc error: No cluster leader' }
        : { headers: idx(++index), body: [healthEntry('a'), healthEntry('b')] },
    );
    const registry = new Registry();
    watcher = new ServiceWatcher({
      consul: { url: peer.url },
      minQueryIntervalMs: 20,
      waitMs: 1000,
      backoff: { baseMs: 10, capMs: 40 },
      registry,
    });
    const w = watcher.watch('orders');
    const first = await w.ready();
    assert.equal(first.length, 2);
    const errors: Error[] = [];
    w.onError((e) => errors.push(e));
    failing = true;
    await eventually(() => errors.length >= 2, 5000, 'two errors');
    assert.equal(w.stale, true);
    assert.ok(typeof w.staleSinceMs === 'number');
    assert.equal(w.current(), first);
    assert.equal((errors[0] as Error & { code: string }).code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
    assert.match(errors[0]!.message, /HTTP 500.*No cluster leader/);
    const metrics = await registry.getMetricsAsJSON();
    const stale = metrics.find((m) => m.name === 'shoal_consul_watch_stale');
    assert.equal(stale?.values[0]?.value, 1);
    const age = metrics.find((m) => m.name === 'shoal_consul_watch_last_sync_age_seconds');
    assert.ok((age?.values[0]?.value ?? 0) > 0, 'the sync age grows while stale');
    const errCount = metrics.find((m) => m.name === 'shoal_consul_watch_errors_total');
    assert.ok((errCount?.values[0]?.value ?? 0) >= 2);
    failing = false;
    await eventually(() => !w.stale, 5000, 'recovery');
    assert.equal(w.staleSinceMs, undefined);
    assert.equal(w.current(), first, 'an unchanged list is not replaced');
  });

  it('does not block on its old index after a failure (Consul may have restarted with a lower one)', async () => {
    const answers = [
      { headers: idx(50), body: [healthEntry('a')] },
      { status: 500, body: 'restarting' },
      { headers: idx(3), body: [healthEntry('a')] },
      { headers: idx(4), body: [healthEntry('a')] },
    ];
    peer = await startScriptedConsul((_r, n) => answers[n - 1] ?? { hang: true });
    watcher = new ServiceWatcher({
      consul: { url: peer.url },
      minQueryIntervalMs: 0,
      backoff: { baseMs: 5, capMs: 5 },
    });
    watcher.watch('orders');
    await eventually(() => peer!.requests.length >= 5, 5000, 'five queries');
    assert.deepEqual(
      peer.requests.slice(0, 5).map((r) => r.query.get('index')),
      [null, '50', null, '3', '4'],
    );
  });

  it('treats an answer without X-Consul-Index as an error instead of looping', async () => {
    peer = await startScriptedConsul(() => ({ body: [healthEntry('a')] }));
    watcher = new ServiceWatcher({
      consul: { url: peer.url },
      minQueryIntervalMs: 0,
      backoff: { baseMs: 50, capMs: 50 },
    });
    const w = watcher.watch('orders');
    const error = await new Promise<Error>((resolve) => w.onError(resolve));
    assert.match(error.message, /X-Consul-Index/);
  });

  it('times out a query that never answers and says so', async () => {
    peer = await startScriptedConsul(() => ({ hang: true }));
    watcher = new ServiceWatcher({
      consul: { url: peer.url, requestTimeoutMs: 100 },
      backoff: { baseMs: 1000, capMs: 1000 },
    });
    const w = watcher.watch('orders');
    const error = await new Promise<Error & { code?: string }>((resolve) => w.onError(resolve));
    assert.equal(error.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
    assert.match(error.message, /timed out after 100 ms/);
  });

  it('close() aborts an in-flight blocking query at once', async () => {
    peer = await startScriptedConsul((_r, n) =>
      n === 1 ? { headers: idx(5), body: [healthEntry('a')] } : { hang: true },
    );
    watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 0, waitMs: 300_000 });
    const w = watcher.watch('orders');
    await w.ready();
    await eventually(() => peer!.requests.length === 2, 5000, 'the blocking query');
    const started = Date.now();
    await watcher.close();
    assert.ok(Date.now() - started < 1000);
    await eventually(() => peer!.aborted === 1, 2000, 'the server to see the abort');
  });

  it('rejects ready() with a permission error code when Consul answers 403', async () => {
    peer = await startScriptedConsul(() => ({
      status: 403,
      body: 'Permission denied: token with AccessorID lacks permission',
    }));
    watcher = new ServiceWatcher({ consul: { url: peer.url, token: 'wrong' }, backoff: { baseMs: 1000, capMs: 1000 } });
    const w = watcher.watch('orders');
    await assert.rejects(w.ready(), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SHOAL_ERR_CONSUL_PERMISSION_DENIED');
      assert.match(e.message, /HTTP 403/);
      assert.doesNotMatch(e.message, /wrong/, 'the token never appears in messages');
      return true;
    });
    assert.equal(peer.requests[0]!.headers['x-consul-token'], 'wrong');
  });

  it('shares one query between consumers of the same options', async () => {
    peer = await startScriptedConsul((r) => ({
      headers: idx(3),
      body: [healthEntry('a', { service: r.path.split('/').pop()! })],
    }));
    watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 0, waitMs: 1000 });
    const a = watcher.watch('orders');
    const b = watcher.watch('orders', { passing: true });
    const c = watcher.watch('orders', { tag: 'v2' });
    assert.equal(watcher.activeQueries, 2);
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    a.close();
    assert.equal(watcher.activeQueries, 2, 'b still uses the shared query');
    b.close();
    assert.equal(watcher.activeQueries, 1);
    const tagged = peer.requests.filter((r) => r.query.get('tag') === 'v2');
    assert.ok(tagged.length >= 1);
  });

  it('filters by zone client-side and passes tag, filter and dc to Consul', async () => {
    peer = await startScriptedConsul(() => ({
      headers: idx(3),
      body: [healthEntry('a', { meta: { zone: 'eu-1' } }), healthEntry('b', { meta: { zone: 'eu-2' } })],
    }));
    watcher = new ServiceWatcher({ consul: { url: peer.url, datacenter: 'dc9' }, minQueryIntervalMs: 0, waitMs: 1000 });
    const w = watcher.watch('orders', { zone: 'eu-2', tag: 'blue', filter: 'Service.Meta.version == "2"', dc: 'dc2' });
    const list = await w.ready();
    assert.deepEqual(
      list.map((i) => [i.id, i.zone]),
      [['b', 'eu-2']],
    );
    const q = peer.requests[0]!.query;
    assert.equal(q.get('tag'), 'blue');
    assert.equal(q.get('filter'), 'Service.Meta.version == "2"');
    assert.equal(q.get('dc'), 'dc2');
    const plain = watcher.watch('orders', { passing: false });
    await plain.ready();
    const q2 = peer.requests.find((r) => r.query.get('passing') === null)!.query;
    assert.equal(q2.get('dc'), 'dc9', 'the connection datacenter is the default');
  });

  it('iterates the current list, then each change, and ends when the consumer closes', async () => {
    let version = 1;
    let release: (() => void) | undefined;
    const listFor = (v: number) => ({
      headers: idx(v),
      body: Array.from({ length: v }, (_, i) => healthEntry(`i${i}`)),
    });
    peer = await startScriptedConsul((r) =>
      r.query.get('index') === String(version)
        ? new Promise((resolve) => {
            release = () => resolve(listFor(version));
          })
        : listFor(version),
    );
    watcher = new ServiceWatcher({ consul: { url: peer.url }, minQueryIntervalMs: 0, waitMs: 1000 });
    const w = watcher.watch('orders');
    const sizes: number[] = [];
    const consumer = (async () => {
      for await (const list of w) sizes.push(list.length);
    })();
    await eventually(() => sizes.length === 1 && release !== undefined, 5000, 'the first list and a blocking query');
    version = 2;
    release!();
    await eventually(() => sizes.length === 2, 5000, 'the change');
    w.close();
    await consumer;
    assert.deepEqual(sizes, [1, 2]);
    // A closed consumer's iterator is done at once.
    const again = await w[Symbol.asyncIterator]().next();
    assert.equal(again.done, true);
  });

  it('unref’d backoff grows with full jitter while Consul is unreachable (fake timers)', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      watcher = new ServiceWatcher({
        consul: { url: `http://127.0.0.1:${port}` },
        minQueryIntervalMs: 0,
        backoff: { baseMs: 100, capMs: 400, random: () => 0.999 },
      });
      const w = watcher.watch('orders');
      let errors = 0;
      w.onError(() => errors++);
      const realTick = () => new Promise((r) => setImmediate(r));
      const settle = async (n: number) => {
        for (let i = 0; i < 200 && errors < n; i++) await realTick();
      };
      await settle(1);
      assert.equal(errors, 1);
      // Delays: 99, 199, 399, 399 (capped) ms.
      for (const [delay, expected] of [
        [99, 2],
        [199, 3],
        [399, 4],
        [399, 5],
      ] as const) {
        await clock.tickAsync(delay - 1);
        await settle(expected);
        assert.equal(errors, expected - 1, `no retry before ${delay} ms`);
        await clock.tickAsync(1);
        await settle(expected);
        assert.equal(errors, expected, `a retry after ${delay} ms`);
      }
      assert.equal(w.stale, true);
      assert.equal(w.current(), undefined);
    } finally {
      await watcher?.close();
      watcher = undefined;
      clock.restore();
    }
  });
});
