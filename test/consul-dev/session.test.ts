import assert from 'node:assert/strict';
import { eventually, setup } from './support.js';
import type { Fixture } from './support.js';

interface SessionInfo {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: string;
  TTL: string;
  NodeChecks: string[] | null;
  CreateIndex: number;
  ModifyIndex: number;
}
interface KvItem {
  Key: string;
  Value: string | null;
  LockIndex: number;
  Session?: string;
}

describe('consul-dev conformance: sessions and locks', () => {
  let f: Fixture;
  let root: string;
  beforeEach(async () => {
    f = await setup();
    root = f.trackKey(f.name('lock'));
  });
  afterEach(async () => {
    await f.cleanup();
  });

  async function create(opts: Record<string, unknown> = {}): Promise<string> {
    const { ID } = (await f.consul.session.create(opts as never)) as { ID: string };
    return f.trackSession(ID);
  }

  it('creates a session with Consul defaults and shows it in info and list', async () => {
    const id = await create({ name: 'leader' });
    const info = (await f.consul.session.info(id)) as SessionInfo;
    assert.equal(info.ID, id);
    assert.equal(info.Name, 'leader');
    assert.equal(info.Behavior, 'release');
    assert.equal(info.LockDelay, 15_000_000_000);
    assert.deepEqual(info.NodeChecks, ['serfHealth']);
    assert.equal(info.TTL, '');
    const list = (await f.consul.session.list()) as SessionInfo[];
    assert.ok(list.some((s) => s.ID === id));
  });

  it('info on an unknown session resolves undefined ([] on the wire)', async () => {
    const res = await f.raw('GET', '/v1/session/info/00000000-0000-0000-0000-000000000000');
    assert.equal(res.status, 200);
    assert.equal(res.text, '[]');
    assert.equal(await f.consul.session.info('00000000-0000-0000-0000-000000000000'), undefined);
  });

  it('renews a TTL session and answers 404 for an unknown one', async () => {
    const id = await create({ ttl: '30s' });
    const renewed = (await f.consul.session.renew(id)) as SessionInfo[];
    assert.equal(renewed[0]!.ID, id);
    const res = await f.raw('PUT', '/v1/session/renew/00000000-0000-0000-0000-000000000000');
    assert.equal(res.status, 404);
    assert.equal(res.text, "Session id '00000000-0000-0000-0000-000000000000' not found");
  });

  it('rejects a TTL outside [10s, 24h]', async () => {
    const res = await f.raw('PUT', '/v1/session/create', JSON.stringify({ TTL: '1s' }));
    assert.equal(res.status, 500);
    assert.match(res.text, /Session TTL/);
  });

  it('acquire and release follow Consul truth tables', async () => {
    const a = await create({ lockdelay: '0s' });
    const b = await create({ lockdelay: '0s' });
    const key = `${root}/leader`;
    assert.equal(await f.consul.kv.set({ key, value: 'a', acquire: a } as never), true);
    let item = (await f.consul.kv.get(key)) as KvItem;
    assert.equal(item.Session, a);
    assert.equal(item.LockIndex, 1);
    assert.equal(
      Boolean(await f.consul.kv.set({ key, value: 'b', acquire: b } as never)),
      false,
      'held by another session',
    );
    assert.equal(await f.consul.kv.set({ key, value: 'a2', acquire: a } as never), true, 're-acquire by holder');
    item = (await f.consul.kv.get(key)) as KvItem;
    assert.equal(item.LockIndex, 1, 're-acquire keeps LockIndex');
    assert.equal(
      Boolean(await f.consul.kv.set({ key, value: 'x', release: b } as never)),
      false,
      'release by non-holder',
    );
    assert.equal(await f.consul.kv.set({ key, value: 'a3', release: a } as never), true);
    item = (await f.consul.kv.get(key)) as KvItem;
    assert.equal(item.Session, undefined);
    assert.equal(item.LockIndex, 1);
    assert.equal(await f.consul.kv.set({ key, value: 'b', acquire: b } as never), true);
    assert.equal(((await f.consul.kv.get(key)) as KvItem).LockIndex, 2);
  });

  it('destroying the holder releases its lock (behavior release) and lock-delay blocks re-acquisition', async () => {
    const a = await create({ lockdelay: '15s' });
    const b = await create({});
    const key = `${root}/leader`;
    await f.consul.kv.set({ key, value: 'a', acquire: a } as never);
    await f.consul.session.destroy(a);
    const item = (await f.consul.kv.get(key)) as KvItem;
    assert.equal(item.Session, undefined);
    assert.equal(item.Value, 'a', 'release keeps the value');
    assert.equal(
      Boolean(await f.consul.kv.set({ key, value: 'b', acquire: b } as never)),
      false,
      'lock-delay is active',
    );
  });

  it('destroying a session with behavior delete deletes the keys it holds', async () => {
    const a = await create({ behavior: 'delete', lockdelay: '0s' });
    const key = `${root}/ephemeral`;
    await f.consul.kv.set({ key, value: 'a', acquire: a } as never);
    await f.consul.session.destroy(a);
    assert.equal(await f.consul.kv.get(key), undefined);
  });

  it('invalidates a session when a check it depends on turns critical, releasing the lock', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '60s' } } as never);
    await f.consul.agent.check.pass(`service:${id}`);
    // The session is checked against the catalog, which a real agent updates asynchronously.
    await eventually(
      async () => ((await f.consul.health.checks(name)) as Array<{ Status: string }>)[0]?.Status === 'passing',
    );
    const s = await create({ checks: ['serfHealth', `service:${id}`], lockdelay: '0s' });
    const key = `${root}/leader`;
    assert.equal(await f.consul.kv.set({ key, value: 'x', acquire: s } as never), true);
    await f.consul.agent.check.fail(`service:${id}`);
    await eventually(async () => (await f.consul.session.info(s)) === undefined);
    const item = (await f.consul.kv.get(key)) as KvItem;
    assert.equal(item.Session, undefined);
  });

  it('destroy is idempotent and answers true', async () => {
    const res = await f.raw('PUT', '/v1/session/destroy/00000000-0000-0000-0000-000000000000');
    assert.equal(res.status, 200);
    assert.equal(res.text, 'true');
  });
});
