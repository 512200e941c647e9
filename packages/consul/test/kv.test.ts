import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { ManualClock, silentLogger, type Logger } from '@shoal/core';
import { ConsulKv } from '@shoal/consul';
import { startTestConsul, type TestConsul } from '../../../test/support/consul.js';
import { eventually, startScriptedConsul, type ScriptedConsul } from './support/scripted-consul.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url), 'utf8');

describe('ConsulKv (KV and sessions)', () => {
  const kvs: ConsulKv[] = [];
  const make = (...args: ConstructorParameters<typeof ConsulKv>) => {
    const kv = new ConsulKv(...args);
    kvs.push(kv);
    return kv;
  };
  afterEach(async () => {
    await Promise.all(kvs.splice(0).map((k) => k.close()));
  });

  describe('against consul-dev', () => {
    let consul: TestConsul;
    beforeEach(async () => {
      consul = await startTestConsul({ aclToken: 'root-token' });
    });
    afterEach(() => consul.close());

    it('reads, writes and compare-and-sets keys', async () => {
      const kv = make({ consul: { url: consul.url, token: consul.token! } });
      assert.equal(await kv.get('shoal/test/a'), undefined);
      assert.equal(await kv.set('shoal/test/a', 'one'), true);
      const entry = await kv.get('shoal/test/a');
      assert.equal(entry?.Value, 'one');
      assert.equal(entry?.Session, undefined);
      assert.equal(await kv.set('shoal/test/a', 'two', { cas: entry!.ModifyIndex + 1000 }), false);
      assert.equal(await kv.set('shoal/test/a', 'two', { cas: entry!.ModifyIndex }), true);
      assert.equal((await kv.get('shoal/test/a'))?.Value, 'two');
      assert.equal(await kv.set('shoal/test/b', 'x', { cas: 0 }), true, 'cas 0 creates a missing key');
      assert.equal(await kv.set('shoal/test/b', 'y', { cas: 0 }), false, 'cas 0 refuses an existing key');
    });

    it('locks a key with a session, lists, releases, and destroying the session frees the lock', async () => {
      const kv = make({ consul: { url: consul.url, token: consul.token! } });
      const s1 = await kv.createSession({ name: 'shoal-test one', ttlMs: 10_000, lockDelayMs: 0 });
      const s2 = await kv.createSession({ name: 'shoal-test two', ttlMs: 10_000, lockDelayMs: 0 });
      assert.equal(await kv.set('lock', 'a', { acquire: s1 }), true);
      assert.equal(await kv.set('lock', 'a', { acquire: s1 }), true, 'acquire by the holder again is true');
      assert.equal(await kv.set('lock', 'b', { acquire: s2 }), false);
      assert.equal((await kv.get('lock'))?.Session, s1);
      const names = (await kv.listSessions()).map((s) => s.Name).sort();
      assert.deepEqual(names, ['shoal-test one', 'shoal-test two']);
      assert.equal(await kv.renewSession(s1), true);
      assert.equal(await kv.set('lock', 'a', { release: s2 }), false, 'a non-holder cannot release');
      await kv.destroySession(s1);
      await kv.destroySession(s1); // idempotent
      assert.equal(await kv.renewSession(s1), false, 'a destroyed session cannot be renewed');
      assert.equal((await kv.get('lock'))?.Session, undefined);
      assert.equal(await kv.set('lock', 'b', { acquire: s2 }), true);
      assert.equal(await kv.set('lock', 'b', { release: s2 }), true);
    });

    it('maps a missing or wrong ACL token to the permission error, never echoing the token', async () => {
      const kv = make({ consul: { url: consul.url, token: 'not-the-token' } });
      await assert.rejects(kv.get('k'), (error: Error & { code?: string; retryable?: boolean }) => {
        assert.equal(error.code, 'SHOAL_ERR_CONSUL_PERMISSION_DENIED');
        assert.equal(error.retryable, false);
        assert.doesNotMatch(error.message, /not-the-token/);
        return true;
      });
      await assert.rejects(make({ consul: { url: consul.url } }).createSession({ name: 'x' }), {
        code: 'SHOAL_ERR_CONSUL_PERMISSION_DENIED',
      });
    });
  });

  describe('against a scripted peer', () => {
    let peer: ScriptedConsul | undefined;
    afterEach(async () => {
      await peer?.close();
      peer = undefined;
    });

    it('maps 401 like 403, and 429 like 5xx (retried, then unavailable)', async () => {
      peer = await startScriptedConsul(() => ({ status: 401, body: 'ACL not found' }));
      const kv = make({ consul: { url: peer.url }, retry: { baseMs: 1, capMs: 1 } });
      await assert.rejects(kv.get('k'), { code: 'SHOAL_ERR_CONSUL_PERMISSION_DENIED' });
      assert.equal(peer.requests.length, 1, 'a permission error is not retried');
      peer.setScript(() => ({ status: 429, body: 'rate limited' }));
      await assert.rejects(kv.get('k'), { code: 'SHOAL_ERR_CONSUL_UNAVAILABLE' });
      assert.equal(peer.requests.length, 1 + 3, 'a 429 is retried up to maxAttempts (3)');
    });

    it('retries a repeatable call after a 5xx, but never a cas, release or session create that Consul may have applied', async () => {
      let failures = 1;
      peer = await startScriptedConsul(() =>
        failures-- > 0 ? { status: 500, body: 'rpc error' } : { status: 200, body: true },
      );
      const kv = make({ consul: { url: peer.url }, retry: { baseMs: 1, capMs: 1 } });
      assert.equal(await kv.set('k', 'v'), true);
      assert.equal(peer.requests.length, 2);
      for (const call of [
        () => kv.set('k', 'v', { cas: 3 }),
        () => kv.set('k', 'v', { release: 'abc-123' }),
        () => kv.createSession({ name: 'n' }),
      ]) {
        failures = 1;
        const before: number = peer.requests.length;
        await assert.rejects(call(), { code: 'SHOAL_ERR_CONSUL_UNAVAILABLE' });
        assert.equal(peer.requests.length - before, 1);
      }
      assert.equal(peer.requests.at(-2)?.query.get('release'), 'abc-123');
      assert.equal(peer.requests.at(-1)?.path, '/v1/session/create');
    });

    it('retries a session create when the connection was refused (Consul never saw it)', async () => {
      const holder = createServer();
      await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
      const { port } = holder.address() as AddressInfo;
      await new Promise<void>((r) => holder.close(() => r()));
      const retries: unknown[] = [];
      const logger = {
        ...silentLogger,
        debug: (obj: unknown) => {
          retries.push(obj);
        },
        child: () => logger,
      } as unknown as Logger;
      const kv = make({ consul: { url: `http://127.0.0.1:${port}` }, logger, retry: { baseMs: 1, capMs: 1 } });
      await assert.rejects(kv.createSession({ name: 'n' }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
        assert.match(error.message, /ECONNREFUSED/);
        return true;
      });
      assert.equal(retries.length, 2, 'three attempts: two retries');
    });

    it('times out a call that never answers, on the injected clock', async () => {
      peer = await startScriptedConsul(() => ({ hang: true }));
      const clock = new ManualClock(0);
      const kv = make({ consul: { url: peer.url, requestTimeoutMs: 2000 }, clock, retry: { maxAttempts: 1 } });
      const result = kv.renewSession('abc').then(
        () => 'resolved',
        (e: Error & { code?: string }) => e,
      );
      await eventually(() => peer!.requests.length === 1, 5000, 'the request to arrive');
      await clock.advanceAsync(1999);
      assert.equal(peer.aborted, 0);
      await clock.advanceAsync(1);
      const error = (await result) as Error & { code?: string };
      assert.equal(error.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
      assert.match(error.message, /timed out after 2000 ms/);
    });

    it('talks https with the configured CA and sends the token as a header, the datacenter as ?dc', async () => {
      peer = await startScriptedConsul(() => ({ body: [] }), {
        key: fixture('server.key'),
        cert: fixture('server.pem'),
      });
      const kv = make({ consul: { url: peer.url, ca: fixture('ca.pem'), token: 't0k', datacenter: 'dc7' } });
      assert.deepEqual(await kv.listSessions(), []);
      const req = peer.requests[0]!;
      assert.equal(req.path, '/v1/session/list');
      assert.equal(req.headers['x-consul-token'], 't0k');
      assert.equal(req.query.get('dc'), 'dc7');
    });

    it('sends what Consul expects on session create (TTL, LockDelay 0, Behavior)', async () => {
      peer = await startScriptedConsul(() => ({ body: { ID: 'abc-1' } }));
      const kv = make({ consul: { url: peer.url } });
      assert.equal(await kv.createSession({ name: 'me', ttlMs: 15_000, lockDelayMs: 0, behavior: 'delete' }), 'abc-1');
      assert.deepEqual(JSON.parse(peer.requests[0]!.body), {
        Name: 'me',
        TTL: '15s',
        LockDelay: '0ms',
        Behavior: 'delete',
      });
    });
  });

  it('validates options and arguments, naming them', async () => {
    assert.throws(() => new ConsulKv({ consul: { url: 'not a url' } }), /consul\.url must be an http\(s\) URL/);
    assert.throws(() => new ConsulKv({ retry: { maxAttempts: 0 } }), /maxAttempts/);
    assert.throws(
      () => new ConsulKv({ retry: { maxAttempts: 11 } }),
      /retry\.maxAttempts must be an integer from 1 to 10/,
    );
    assert.throws(() => new ConsulKv({ bogus: 1 } as never), /bogus/);
    const kv = make({});
    await assert.rejects(kv.get(''), /key/);
    await assert.rejects(kv.get('/abs'), /key must not start with '\/'/);
    await assert.rejects(kv.set('k', 5 as never), /value must be a string, got 5/);
    await assert.rejects(
      kv.set('k', 'v', { cas: 1, acquire: 'a' }),
      /one of cas, acquire and release, got cas and acquire/,
    );
    await assert.rejects(kv.set('k', 'v', { acquire: 'bad id!' }), /flags\.acquire/);
    await assert.rejects(kv.createSession({ name: 'n', ttlMs: 5000 }), /session\.ttlMs/);
    await assert.rejects(kv.createSession({ name: 'n', lockDelayMs: -1 }), /session\.lockDelayMs/);
    await assert.rejects(kv.createSession({ name: 'n', behavior: 'keep' as never }), /session\.behavior/);
    await kv.close();
    await assert.rejects(kv.get('k'), { code: 'SHOAL_ERR_CLOSED' });
  });
});
