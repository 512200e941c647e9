import assert from 'node:assert/strict';
import { harness } from './helpers.js';
import type { Harness } from './helpers.js';

describe('sessions (ManualClock)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  async function create(body: unknown): Promise<string> {
    const res = await h.call('PUT', '/v1/session/create', body);
    assert.equal(res.status, 200, res.text);
    return res.json<{ ID: string }>().ID;
  }
  const info = async (id: string) => (await h.call('GET', `/v1/session/info/${id}`)).json<unknown[]>();

  it('expires a TTL session after twice its TTL and renew pushes that back', async () => {
    const id = await create({ TTL: '10s' });
    h.clock.advance(19_999);
    assert.equal((await info(id)).length, 1);
    assert.equal((await h.call('PUT', `/v1/session/renew/${id}`)).status, 200);
    h.clock.advance(19_999);
    assert.equal((await info(id)).length, 1, 'renewed');
    h.clock.advance(1);
    assert.deepEqual(await info(id), []);
    assert.equal((await h.call('PUT', `/v1/session/renew/${id}`)).status, 404);
  });

  it('TTL expiry releases the lock and lock-delay holds the key until it passes', async () => {
    const a = await create({ TTL: '10s', LockDelay: '15s' });
    const b = await create({});
    assert.equal((await h.call('PUT', `/v1/kv/leader?acquire=${a}`, 'a')).text, 'true');
    h.clock.advance(20_000);
    assert.equal((await h.call('PUT', `/v1/kv/leader?acquire=${b}`, 'b')).text, 'false', 'lock-delay');
    h.clock.advance(14_999);
    assert.equal((await h.call('PUT', `/v1/kv/leader?acquire=${b}`, 'b')).text, 'false');
    h.clock.advance(1);
    assert.equal((await h.call('PUT', `/v1/kv/leader?acquire=${b}`, 'b')).text, 'true');
  });

  it('an explicit release does not start lock-delay', async () => {
    const a = await create({ LockDelay: '15s' });
    const b = await create({});
    await h.call('PUT', `/v1/kv/k?acquire=${a}`, 'a');
    assert.equal((await h.call('PUT', `/v1/kv/k?release=${a}`, 'a')).text, 'true');
    assert.equal((await h.call('PUT', `/v1/kv/k?acquire=${b}`, 'b')).text, 'true');
  });

  it('reads LockDelay numbers below 1000 as seconds and larger ones as nanoseconds', async () => {
    const s = await create({ LockDelay: 5 });
    const n = await create({ LockDelay: 2_000_000_000 });
    const delay = async (id: string) => ((await info(id)) as Array<{ LockDelay: number }>)[0]!.LockDelay;
    assert.equal(await delay(s), 5_000_000_000);
    assert.equal(await delay(n), 2_000_000_000);
  });

  it('rejects bad behaviors, unknown checks, critical checks and unknown nodes with 500', async () => {
    assert.equal(
      (await h.call('PUT', '/v1/session/create', { Behavior: 'explode' })).text,
      "Invalid Behavior setting 'explode'",
    );
    assert.equal(
      (await h.call('PUT', '/v1/session/create', { Checks: ['nope'] })).text,
      "Missing check 'nope' registration",
    );
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { TTL: '10s' } });
    assert.equal(
      (await h.call('PUT', '/v1/session/create', { Checks: ['service:web'] })).text,
      "Check 'service:web' is in critical state",
    );
    assert.equal((await h.call('PUT', '/v1/session/create', { Node: 'elsewhere' })).status, 500);
  });

  it('a TTL check expiring invalidates the sessions that depend on it', async () => {
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { TTL: '10s', Status: 'passing' } });
    const id = await create({ Checks: ['serfHealth', 'service:web'], LockDelay: '0s' });
    await h.call('PUT', `/v1/kv/leader?acquire=${id}`, 'x');
    h.clock.advance(10_000);
    assert.deepEqual(await info(id), []);
    const kv = (await h.call('GET', '/v1/kv/leader')).json<Array<{ Session?: string }>>();
    assert.equal(kv[0]!.Session, undefined);
  });

  it('deregistering the service behind a session check invalidates the session', async () => {
    await h.call('PUT', '/v1/agent/service/register', { Name: 'web', Check: { TTL: '10s', Status: 'passing' } });
    const id = await create({ Checks: ['service:web'] });
    await h.call('PUT', '/v1/agent/service/deregister/web');
    assert.deepEqual(await info(id), []);
  });
});
