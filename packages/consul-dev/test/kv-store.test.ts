import assert from 'node:assert/strict';
import { harness } from './helpers.js';
import type { Harness } from './helpers.js';

describe('KV indexes and blocking (ManualClock)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  const indexOf = async (path: string) => Number((await h.call('GET', path)).headers.get('x-consul-index'));

  it('moves a prefix index when a key under it is deleted (tombstones), not for keys elsewhere', async () => {
    await h.call('PUT', '/v1/kv/app/a', '1');
    await h.call('PUT', '/v1/kv/app/b', '2');
    const before = await indexOf('/v1/kv/app/?recurse');
    await h.call('PUT', '/v1/kv/other', 'x');
    assert.equal(await indexOf('/v1/kv/app/?recurse'), before, 'a write elsewhere leaves the prefix index alone');
    await h.call('DELETE', '/v1/kv/app/b');
    assert.ok((await indexOf('/v1/kv/app/?recurse')) > before);
  });

  it('wakes a recurse watcher on a delete under its prefix and not on a write elsewhere', async () => {
    await h.call('PUT', '/v1/kv/app/a', '1');
    const index = await indexOf('/v1/kv/app/?recurse');
    const parked = h.clock.pending;
    let done = false;
    const pending = h.call('GET', `/v1/kv/app/?recurse&index=${index}&wait=1m`).finally(() => {
      done = true;
    });
    await h.timersAbove(parked);
    await h.call('PUT', '/v1/kv/elsewhere', 'x');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(done, false);
    await h.call('DELETE', '/v1/kv/app/a');
    const res = await pending;
    assert.equal(res.status, 404, 'the prefix is now empty');
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
  });

  it('a missing key answers the table index, and blocking on it wakes when it is created', async () => {
    await h.call('PUT', '/v1/kv/x', '1');
    const index = await indexOf('/v1/kv/missing');
    assert.ok(index >= 1);
    const parked = h.clock.pending;
    const pending = h.call('GET', `/v1/kv/missing?index=${index}`);
    await h.timersAbove(parked);
    await h.call('PUT', '/v1/kv/missing', 'now');
    const res = await pending;
    assert.equal(res.status, 200);
    assert.equal(Buffer.from(res.json<Array<{ Value: string }>>()[0]!.Value, 'base64').toString(), 'now');
  });

  it('keeps the lock when a plain PUT writes a locked key', async () => {
    const { ID } = (await h.call('PUT', '/v1/session/create', {})).json<{ ID: string }>();
    await h.call('PUT', `/v1/kv/l?acquire=${ID}`, 'a');
    await h.call('PUT', '/v1/kv/l', 'b');
    const item = (await h.call('GET', '/v1/kv/l')).json<Array<{ Session?: string; Value: string }>>()[0]!;
    assert.equal(item.Session, ID);
    assert.equal(Buffer.from(item.Value, 'base64').toString(), 'b');
  });
});
