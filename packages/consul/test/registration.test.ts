import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { ServiceRegistration, ServiceWatcher, type Watch } from '@shoal/consul';
import type { Instance } from '@shoal/core';
import { startTestConsul, type TestConsul } from '../../../test/support/consul.js';
import { eventually } from './support/scripted-consul.js';

/** Skips the running test, saying why in its title (mocha's skip() takes no reason). */
function skip(ctx: Mocha.Context, reason: string): never {
  ctx.test!.title += ` (skipped: ${reason})`;
  ctx.skip();
}

/** A unique service name per test, so runs against a shared real Consul do not see each other. */
let seq = 0;
const uniqueService = () => `shoal-t-${process.pid}-${Date.now().toString(36)}-${seq++}`;

async function health(
  consul: TestConsul,
  service: string,
  passing = true,
): Promise<Array<{ Service: { ID: string }; Checks: Array<{ CheckID: string; Status: string; Output: string }> }>> {
  const res = await fetch(`${consul.url}/v1/health/service/${service}${passing ? '?passing=true' : ''}`, {
    headers: consul.token ? { 'x-consul-token': consul.token } : {},
  });
  assert.equal(res.status, 200);
  return (await res.json()) as never;
}

/** Polls the health endpoint until `pred` holds (a real agent syncs check status to the catalog asynchronously). */
async function healthUntil(
  consul: TestConsul,
  service: string,
  passing: boolean,
  pred: (entries: Awaited<ReturnType<typeof health>>) => boolean,
  what: string,
): Promise<Awaited<ReturnType<typeof health>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const entries = await health(consul, service, passing);
    if (pred(entries)) return entries;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(entries)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves with the first list from `watch` that satisfies `pred` (the current one included). */
function until(
  watch: Watch,
  pred: (list: readonly Instance[]) => boolean,
  what: string,
  ms = 10_000,
): Promise<readonly Instance[]> {
  return new Promise((resolve, reject) => {
    const cur = watch.current();
    if (cur && pred(cur)) return resolve(cur);
    const timer = setTimeout(() => {
      off();
      reject(
        new Error(
          `timed out after ${ms} ms waiting for ${what}; last list: ${JSON.stringify(watch.current()?.map((i) => i.id))}`,
        ),
      );
    }, ms);
    const off = watch.onChange((list) => {
      if (!pred(list)) return;
      clearTimeout(timer);
      off();
      resolve(list);
    });
  });
}

describe('ServiceRegistration (against Consul over HTTP)', function () {
  let consul: TestConsul | undefined;
  const closers: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await consul?.close();
    consul = undefined;
  });

  function track<T extends { close(): Promise<void> }>(x: T): T {
    closers.push(() => x.close());
    return x;
  }

  function connection(c: TestConsul) {
    return { url: c.url, ...(c.token ? { token: c.token } : {}) };
  }

  it('is visible as passing once register() resolved (after the first heartbeat)', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    const registry = new Registry();
    const reg = track(
      new ServiceRegistration({
        consul: connection(consul),
        service,
        address: '127.0.0.1',
        port: 9001,
        zone: 'z1',
        version: '3',
        weight: 7,
        tags: ['blue'],
        registry,
      }),
    );
    await reg.register();
    const [entry, ...rest] = await healthUntil(consul, service, true, (e) => e.length > 0, 'the instance to pass');
    assert.equal(rest.length, 0);
    assert.equal(entry!.Service.ID, reg.id);
    const check = entry!.Checks.find((c) => c.CheckID === reg.checkId);
    assert.equal(check?.Status, 'passing');

    const watcher = track(new ServiceWatcher({ consul: connection(consul), registry }));
    const [seen] = await watcher.watch(service).ready();
    assert.deepEqual(
      { ...seen },
      {
        id: reg.id,
        service,
        address: '127.0.0.1',
        port: 9001,
        zone: 'z1',
        weight: 7,
        tags: ['blue'],
        meta: { zone: 'z1', version: '3', weight: '7' },
      },
    );
    const text = await registry.metrics();
    assert.match(
      text,
      new RegExp(
        `shoal_consul_registration_state\\{service="${service}",instance_id="${reg.id}",state="registered"\\} 1`,
      ),
    );
    assert.match(text, new RegExp(`shoal_consul_watch_instances\\{service="${service}"\\} 1`));
  });

  it('deregisters on close, and watchers see the instance go', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    const watcher = track(new ServiceWatcher({ consul: connection(consul) }));
    const watch = watcher.watch(service);
    const reg = new ServiceRegistration({ consul: connection(consul), service, address: '127.0.0.1', port: 9002 });
    await reg.register();
    await until(watch, (l) => l.length === 1, 'the instance');
    await reg.close();
    assert.equal(reg.state, 'closed');
    assert.deepEqual(await health(consul, service, false), [], 'deregistration is synchronous');
    await until(watch, (l) => l.length === 0, 'the removal');
  });

  it('setStatus(warning) takes the instance out of passing lists and back', async () => {
    consul = await startTestConsul();
    const service = uniqueService();
    const reg = track(
      new ServiceRegistration({ consul: connection(consul), service, address: '127.0.0.1', port: 9003 }),
    );
    await reg.register();
    await healthUntil(consul, service, true, (e) => e.length === 1, 'the instance to pass');
    await reg.setStatus('warning', 'draining');
    await healthUntil(consul, service, true, (e) => e.length === 0, 'the instance to leave the passing list');
    const [all] = await health(consul, service, false);
    const check = all!.Checks.find((c) => c.CheckID === reg.checkId)!;
    assert.equal(check.Status, 'warning');
    await reg.setStatus('passing');
    await healthUntil(consul, service, true, (e) => e.length === 1, 'the instance to pass again');
  });

  it('registers an HTTP check that Consul runs against the service', async function () {
    consul = await startTestConsul();
    if (consul.isReal) skip(this, 'a real agent may not reach this process on 127.0.0.1 (e.g. in a container)');
    const app: Server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => app.close(() => r())));
    const port = (app.address() as AddressInfo).port;
    const service = uniqueService();
    const reg = track(
      new ServiceRegistration({
        consul: connection(consul),
        service,
        address: '127.0.0.1',
        port,
        check: { http: `http://127.0.0.1:${port}/health`, intervalMs: 1000 },
      }),
    );
    await reg.register();
    const watcher = track(new ServiceWatcher({ consul: connection(consul) }));
    const list = await until(watcher.watch(service), (l) => l.length === 1, 'the HTTP check to pass');
    assert.equal(list[0]!.port, port);
  });

  it('keeps serving the last list and retries while Consul is down; after Consul restarts empty the instance is back within one heartbeat and watchers recover', async function () {
    consul = await startTestConsul();
    if (consul.isReal) skip(this, 'needs to stop Consul and restart it empty on the same port: only the double can');
    const port = consul.port;
    const service = uniqueService();
    const heartbeatIntervalMs = 500;
    const reg = track(
      new ServiceRegistration({
        consul: connection(consul),
        service,
        address: '127.0.0.1',
        port: 9004,
        check: { ttlMs: 3000, heartbeatIntervalMs },
        backoff: { baseMs: 50, capMs: 200 },
      }),
    );
    await reg.register();
    const watcher = track(
      new ServiceWatcher({ consul: connection(consul), waitMs: 5000, backoff: { baseMs: 50, capMs: 200 } }),
    );
    const watch = watcher.watch(service);
    const before = await watch.ready();
    assert.equal(before.length, 1);

    const regErrors: Error[] = [];
    reg.onError((e) => regErrors.push(e));
    const watchErrors: Error[] = [];
    watch.onError((e) => watchErrors.push(e));

    await consul.close();
    await new Promise<void>((resolve) => {
      const off = watch.onError(() => {
        off();
        resolve();
      });
    });
    await new Promise<void>((resolve) => {
      const off = reg.onError(() => {
        off();
        resolve();
      });
    });
    assert.equal(watch.stale, true);
    assert.equal(watch.current(), before, 'the last good list is still served');
    assert.equal((watchErrors[0] as Error & { code?: string }).code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
    assert.equal((regErrors[0] as Error & { code?: string }).code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');

    const reRegistered = new Promise<void>((resolve) => {
      const off = reg.onStateChange((state) => {
        if (state !== 'registered') return;
        off();
        resolve();
      });
    });
    consul = await startTestConsul({ port });
    const restartedAt = Date.now();
    await reRegistered;
    const tookMs = Date.now() - restartedAt;
    assert.ok(
      tookMs <= heartbeatIntervalMs + 250,
      `re-registered after ${tookMs} ms; one heartbeat interval is ${heartbeatIntervalMs} ms`,
    );
    // The watcher recovers: not stale, and its list holds the instance again (an equal list is not re-emitted).
    await eventually(() => !watch.stale && watch.current()?.[0]?.id === reg.id, 10_000, 'the watcher to recover');
    assert.equal(reg.state, 'registered');
    const [entry] = await healthUntil(consul, service, true, (e) => e.length === 1, 'the instance to pass');
    assert.equal(entry!.Service.ID, reg.id);
  });

  describe('ACL', () => {
    it('reports a missing or wrong token with SHOAL_ERR_CONSUL_PERMISSION_DENIED, and works with the right one', async function () {
      consul = await startTestConsul({ aclToken: 'shoal-acl-secret' });
      if (consul.isReal && !consul.token)
        skip(this, 'the real Consul has no ACL token (set CONSUL_HTTP_TOKEN with ACLs on)');
      const service = uniqueService();
      for (const token of [undefined, 'wrong-token']) {
        const reg: ServiceRegistration = track(
          new ServiceRegistration({
            consul: { url: consul.url, ...(token ? { token } : {}) },
            service,
            address: '127.0.0.1',
            port: 9005,
          }),
        );
        await assert.rejects(reg.register(), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'SHOAL_ERR_CONSUL_PERMISSION_DENIED');
          assert.match(e.message, /HTTP 403/);
          assert.match(e.message, /consul\.token/);
          return true;
        });
        assert.equal(reg.state, 'failed');
      }
      const good = track(
        new ServiceRegistration({ consul: connection(consul), service, address: '127.0.0.1', port: 9005 }),
      );
      await good.register();
      const watcher = track(new ServiceWatcher({ consul: connection(consul) }));
      assert.equal((await watcher.watch(service).ready()).length, 1);
      // Reads with an unknown token are refused too (Consul: 403 "ACL not found"); the watch says so with the code.
      const wrong = track(new ServiceWatcher({ consul: { url: consul.url, token: 'wrong-token' } }));
      await assert.rejects(wrong.watch(service).ready(), { code: 'SHOAL_ERR_CONSUL_PERMISSION_DENIED' });
    });
  });
});
