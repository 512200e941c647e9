import assert from 'node:assert/strict';
import { harness } from './helpers.js';
import type { Harness } from './helpers.js';

describe('startConsulDev blocking queries (ManualClock)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('times out after wait plus jitter in [0, wait/16) and answers the unchanged index', async () => {
    h = await harness({ random: () => 0.5 });
    const first = await h.call('GET', '/v1/health/service/web');
    const index = first.headers.get('x-consul-index');
    const before = h.clock.pending;
    let done = false;
    const pending = h.call('GET', `/v1/health/service/web?index=${index}&wait=16s`).finally(() => {
      done = true;
    });
    await h.timersAbove(before);
    h.clock.advance(16_499); // 16 s + 0.5 * 1 s jitter = 16.5 s
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false, 'still blocked just before wait + jitter');
    h.clock.advance(1);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-consul-index'), index);
  });

  it('defaults wait to 5 minutes and caps it at 10 minutes', async () => {
    h = await harness();
    const index = (await h.call('GET', '/v1/catalog/services')).headers.get('x-consul-index');
    for (const [query, ms] of [
      ['', 300_000],
      ['&wait=1h', 600_000],
    ] as const) {
      const before = h.clock.pending;
      let done = false;
      const pending = h.call('GET', `/v1/catalog/services?index=${index}${query}`).finally(() => {
        done = true;
      });
      await h.timersAbove(before);
      h.clock.advance(ms - 1);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(done, false, `still blocked before ${ms} ms`);
      h.clock.advance(1);
      assert.equal((await pending).status, 200);
    }
  });

  it('blocks on an index ahead of its own (a client that saw a previous incarnation) until the wait ends', async () => {
    h = await harness();
    const before = h.clock.pending;
    const pending = h.call('GET', '/v1/health/service/web?index=999999&wait=1s');
    await h.timersAbove(before);
    h.clock.advance(1000);
    const res = await pending;
    assert.ok(Number(res.headers.get('x-consul-index')) < 999999, 'the index went backwards; the client must reset');
  });

  it('wakes every parked watcher on one change', async () => {
    h = await harness();
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { TTL: '1m' } });
    const index = (await h.call('GET', '/v1/health/service/web')).headers.get('x-consul-index');
    const before = h.clock.pending;
    const watchers = Array.from({ length: 20 }, () => h!.call('GET', `/v1/health/service/web?index=${index}`));
    await h.timersAbove(before + 19);
    await h.call('PUT', '/v1/agent/check/pass/service:web');
    const answers = await Promise.all(watchers);
    for (const a of answers) assert.ok(Number(a.headers.get('x-consul-index')) > Number(index));
    assert.equal(h.clock.pending, before, 'their timers were cleared');
  });

  it('does not wake a watcher of one service for a change to another', async () => {
    h = await harness();
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web' });
    const index = (await h.call('GET', '/v1/health/service/web')).headers.get('x-consul-index');
    const before = h.clock.pending;
    let done = false;
    const pending = h.call('GET', `/v1/health/service/web?index=${index}&wait=10s`).finally(() => {
      done = true;
    });
    await h.timersAbove(before);
    await h.call('PUT', '/v1/agent/service/register', { Name: 'api' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false);
    h.clock.advance(10_000);
    await pending;
  });

  it('close() ends parked blocking queries and clears every timer', async () => {
    h = await harness();
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { TTL: '1m' } });
    const index = (await h.call('GET', '/v1/health/service/web')).headers.get('x-consul-index');
    const before = h.clock.pending;
    const pending = h.call('GET', `/v1/health/service/web?index=${index}`).then(
      (r) => r.status,
      () => 'cut',
    );
    await h.timersAbove(before);
    await h.close();
    assert.ok([200, 'cut'].includes(await pending));
    assert.equal(h.clock.pending, 0, 'no timer left behind');
    await h.close(); // idempotent
    h = undefined;
  });

  it('answers HEAD, OPTIONS and ?pretty like Consul', async () => {
    h = await harness();
    const opt = await fetch(`${h.server.url}/v1/agent/service/register`, { method: 'OPTIONS' });
    assert.equal(opt.status, 200);
    assert.match(opt.headers.get('allow') ?? '', /PUT/);
    const pretty = await h.call('GET', '/v1/catalog/services?pretty');
    assert.match(pretty.text, /\n {4}"consul"/);
    assert.ok(pretty.text.endsWith('\n'));
  });

  it('decodes %2F in paths (node-consul encodes KV keys with encodeURIComponent)', async () => {
    h = await harness();
    await h.call('PUT', '/v1/kv/a%2Fb', 'v');
    const res = await h.call('GET', '/v1/kv/a/b');
    assert.equal(res.json<Array<{ Key: string }>>()[0]!.Key, 'a/b');
  });

  it('escapes <, > and & in JSON as Go does', async () => {
    h = await harness();
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Meta: { html: '<b>&</b>' } });
    const res = await h.call('GET', '/v1/agent/services');
    assert.ok(res.text.includes('\\u003cb\\u003e\\u0026\\u003c/b\\u003e'));
  });
});
