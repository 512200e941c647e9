import assert from 'node:assert/strict';
import { setup, statusOf } from './support.js';
import type { Fixture } from './support.js';

interface KvItem {
  Key: string;
  Value: string | null;
  Flags: number;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Session?: string;
}

describe('consul-dev conformance: KV', () => {
  let f: Fixture;
  let root: string;
  beforeEach(async () => {
    f = await setup();
    root = f.trackKey(f.name('kv'));
  });
  afterEach(async () => {
    await f.cleanup();
  });

  it('sets and gets a value (base64 on the wire, decoded by the client)', async () => {
    assert.equal(await f.consul.kv.set(`${root}/a`, 'hello'), true);
    const item = (await f.consul.kv.get(`${root}/a`)) as KvItem;
    assert.equal(item.Value, 'hello');
    assert.equal(item.Key, `${root}/a`);
    assert.equal(item.Flags, 0);
    assert.equal(item.LockIndex, 0);
    assert.equal(item.CreateIndex, item.ModifyIndex);
    const raw = await f.raw('GET', `/v1/kv/${root}/a`);
    assert.equal(raw.json<KvItem[]>()[0]!.Value, Buffer.from('hello').toString('base64'));
    const plain = await f.raw('GET', `/v1/kv/${root}/a?raw`);
    assert.equal(plain.text, 'hello');
  });

  it('answers a missing key with 404, an empty body and X-Consul-Index (the client resolves undefined)', async () => {
    const res = await f.raw('GET', `/v1/kv/${root}/missing`);
    assert.equal(res.status, 404);
    assert.equal(res.text, '');
    assert.ok(Number(res.headers.get('x-consul-index')) >= 1);
    assert.equal(await f.consul.kv.get(`${root}/missing`), undefined);
  });

  it('stores flags and shows an empty value as null', async () => {
    await f.consul.kv.set({ key: `${root}/f`, value: '', flags: 42 });
    const raw = await f.raw('GET', `/v1/kv/${root}/f`);
    const item = raw.json<KvItem[]>()[0]!;
    assert.equal(item.Flags, 42);
    assert.equal(item.Value, null);
  });

  it('lists a prefix with recurse and keys with a separator', async () => {
    await f.consul.kv.set(`${root}/x/1`, 'a');
    await f.consul.kv.set(`${root}/x/2`, 'b');
    await f.consul.kv.set(`${root}/y`, 'c');
    const items = (await f.consul.kv.get({ key: `${root}/`, recurse: true })) as KvItem[];
    assert.deepEqual(
      items.map((i) => i.Key),
      [`${root}/x/1`, `${root}/x/2`, `${root}/y`],
    );
    const keys = (await f.consul.kv.keys({ key: `${root}/`, separator: '/' } as never)) as string[];
    assert.deepEqual(keys, [`${root}/x/`, `${root}/y`]);
  });

  // node-consul resolves a `false` answer as undefined, hence Boolean(...) below; the wire says `false`.
  it('check-and-set writes only at the expected ModifyIndex; cas=0 creates only', async () => {
    const wire = await f.raw('PUT', `/v1/kv/${root}/wire?cas=12345678`, 'x');
    assert.equal(wire.text, 'false');
    assert.match(wire.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(await f.consul.kv.set({ key: `${root}/c`, value: 'one', cas: 0 } as never), true);
    assert.equal(Boolean(await f.consul.kv.set({ key: `${root}/c`, value: 'again', cas: 0 } as never)), false);
    const item = (await f.consul.kv.get(`${root}/c`)) as KvItem;
    assert.equal(
      Boolean(await f.consul.kv.set({ key: `${root}/c`, value: 'two', cas: item.ModifyIndex + 1000 } as never)),
      false,
    );
    assert.equal(await f.consul.kv.set({ key: `${root}/c`, value: 'two', cas: item.ModifyIndex } as never), true);
    assert.equal(((await f.consul.kv.get(`${root}/c`)) as KvItem).Value, 'two');
  });

  it('deletes a key, a prefix with recurse, and with cas', async () => {
    await f.consul.kv.set(`${root}/d/1`, 'a');
    await f.consul.kv.set(`${root}/d/2`, 'b');
    await f.consul.kv.set(`${root}/e`, 'c');
    assert.equal(await f.consul.kv.del(`${root}/e`), true);
    assert.equal(await f.consul.kv.get(`${root}/e`), undefined);
    const item = (await f.consul.kv.get(`${root}/d/1`)) as KvItem;
    assert.equal(Boolean(await f.consul.kv.del({ key: `${root}/d/1`, cas: item.ModifyIndex + 1000 } as never)), false);
    assert.equal(await f.consul.kv.del({ key: `${root}/d/`, recurse: true }), true);
    assert.equal(await f.consul.kv.get({ key: `${root}/d/`, recurse: true }), undefined);
  });

  it('a blocking get wakes when the key changes', async () => {
    await f.consul.kv.set(`${root}/w`, 'v1');
    const first = await f.raw('GET', `/v1/kv/${root}/w`);
    const index = Number(first.headers.get('x-consul-index'));
    const pending = f.raw('GET', `/v1/kv/${root}/w?index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 100));
    await f.consul.kv.set(`${root}/w`, 'v2');
    const res = await pending;
    assert.ok(Number(res.headers.get('x-consul-index')) > index);
    assert.equal(Buffer.from(res.json<KvItem[]>()[0]!.Value!, 'base64').toString(), 'v2');
  });

  it('rejects conflicting flags, non-numeric flags and a missing key', async () => {
    let res = await f.raw('PUT', `/v1/kv/${root}/z?cas=1&acquire=abc`, 'v');
    assert.equal(res.status, 400);
    assert.equal(res.text, 'Conflicting flags: cas=1&acquire=abc');
    res = await f.raw('PUT', `/v1/kv/${root}/z?flags=abc`, 'v');
    assert.equal(res.status, 500);
    assert.match(res.text, /strconv.ParseUint: parsing "abc": invalid syntax/);
    res = await f.raw('PUT', '/v1/kv/', 'v');
    assert.equal(res.status, 400);
    assert.equal(res.text, 'Missing key name');
  });

  it('acquire with an unknown session is a 500', async () => {
    await assert.rejects(
      f.consul.kv.set({ key: `${root}/l`, value: 'x', acquire: '00000000-0000-0000-0000-00000000dead' } as never),
      (err: unknown) => statusOf(err) === 500,
    );
  });

  it('rejects a value over 512 KiB with 413', async function () {
    if (f.tc.isReal) this.skip(); // the real limit is the agent's kv_max_value_size setting
    const res = await f.raw('PUT', `/v1/kv/${root}/big`, Buffer.alloc(512 * 1024 + 1, 'x'));
    assert.equal(res.status, 413);
  });
});
