import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import sinon from 'sinon';
import { Registry } from 'prom-client';
import { ServiceRegistration } from '@shoal/consul';
import type { Logger } from '@shoal/core';
import { eventually, startScriptedConsul, type ScriptedConsul, type SeenRequest } from './support/scripted-consul.js';

/** Edge cases a well-behaved Consul will not produce on demand; the normal paths run against consul-dev in registration.test.ts. */
describe('ServiceRegistration (against a scripted peer)', () => {
  let peer: ScriptedConsul | undefined;
  let reg: ServiceRegistration | undefined;

  afterEach(async () => {
    await reg?.close();
    await peer?.close();
    reg = undefined;
    peer = undefined;
  });

  const ok = { status: 200 };
  const base = { service: 'orders', id: 'orders-1', address: '127.0.0.1', port: 8080 };
  const is = (r: SeenRequest, path: string) => r.method === 'PUT' && r.path === path;

  it('retries with backoff while Consul fails, reporting each failure, then resolves', async () => {
    let failures = 3;
    peer = await startScriptedConsul((r) => {
      if (is(r, '/v1/agent/service/register') && failures-- > 0) return { status: 503, body: 'no leader' };
      return ok;
    });
    const registry = new Registry();
    reg = new ServiceRegistration({
      ...base,
      consul: { url: peer.url, token: 'tok-1' },
      backoff: { baseMs: 10, capMs: 20 },
      registry,
    });
    const states: string[] = [];
    const errors: Array<Error & { code?: string }> = [];
    reg.onStateChange((s) => states.push(s));
    reg.onError((e) => errors.push(e));
    await reg.register();
    assert.deepEqual(states, ['registering', 'registered']);
    assert.equal(errors.length, 3);
    assert.ok(errors.every((e) => e.code === 'SHOAL_ERR_CONSUL_UNAVAILABLE'));
    const registers = peer.requests.filter((r) => is(r, '/v1/agent/service/register'));
    assert.equal(registers.length, 4);
    const last = registers[3]!;
    assert.equal(last.query.get('replace-existing-checks'), 'true');
    assert.equal(last.headers['x-consul-token'], 'tok-1');
    assert.deepEqual(JSON.parse(last.body).Weights, { Passing: 1, Warning: 1 });
    // The first heartbeat follows the register, so the instance is passing when register() resolves.
    assert.ok(
      is(peer.requests.at(-1)!, '/v1/agent/check/pass/service%3Aorders-1') ||
        is(peer.requests.at(-1)!, '/v1/agent/check/pass/service:orders-1'),
    );
    const failuresMetric = (await registry.getMetricsAsJSON()).find(
      (m) => m.name === 'shoal_consul_registration_failures_total',
    );
    assert.equal(failuresMetric?.values[0]?.value, 3);
    assert.equal(failuresMetric?.values[0]?.labels.code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
  });

  it('logs each failed attempt at warn with the code, never the token', async () => {
    let failures = 2;
    peer = await startScriptedConsul((r) =>
      is(r, '/v1/agent/service/register') && failures-- > 0 ? { status: 500, body: 'boom' } : ok,
    );
    const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
    const logger = captureLogger(lines);
    reg = new ServiceRegistration({
      ...base,
      consul: { url: peer.url, token: 'super-secret-token' },
      backoff: { baseMs: 5, capMs: 5 },
      logger,
    });
    await reg.register();
    const warns = lines.filter((l) => l.level === 'warn');
    assert.equal(warns.length, 2);
    assert.equal(warns[0]!.msg, 'could not register in consul; retrying');
    assert.equal((warns[0]!.obj.err as { code: string }).code, 'SHOAL_ERR_CONSUL_UNAVAILABLE');
    assert.equal(warns[0]!.obj.component, 'consul-registration');
    assert.equal(warns[0]!.obj.instanceId, 'orders-1');
    assert.ok(lines.some((l) => l.level === 'info' && l.msg === 'registered in consul'));
    assert.ok(!JSON.stringify(lines).includes('super-secret-token'));
  });

  it('keeps retrying while nothing listens, and close() ends it with ClosedError and no timer left', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    reg = new ServiceRegistration({
      ...base,
      consul: { url: `http://127.0.0.1:${port}` },
      backoff: { baseMs: 5, capMs: 10 },
    });
    const errors: Error[] = [];
    reg.onError((e) => errors.push(e));
    const pending = reg.register();
    await eventually(() => errors.length >= 3, 5000, 'three failed attempts');
    assert.match(errors[0]!.message, /ECONNREFUSED/);
    await reg.close();
    await assert.rejects(pending, { code: 'SHOAL_ERR_CLOSED' });
    assert.equal(reg.state, 'closed');
  });

  it('fails fast with the code when Consul refuses the token', async () => {
    peer = await startScriptedConsul(() => ({ status: 403, body: 'ACL not found' }));
    reg = new ServiceRegistration({ ...base, consul: { url: peer.url, token: 'nope' } });
    await assert.rejects(reg.register(), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SHOAL_ERR_CONSUL_PERMISSION_DENIED');
      assert.match(e.message, /HTTP 403\): ACL not found; check the ACL token/);
      return true;
    });
    assert.equal(reg.state, 'failed');
    assert.equal(peer.requests.length, 1, 'a refused token is not retried');
  });

  it('registers again when a heartbeat finds the check unknown', async () => {
    let forget = false;
    peer = await startScriptedConsul((r) => {
      if (r.path.startsWith('/v1/agent/check/pass/') && forget) {
        forget = false;
        return {
          status: 404,
          body: 'Unknown check ID "service:orders-1". Ensure that the check ID is passed, not the check name.',
        };
      }
      return ok;
    });
    const registry = new Registry();
    reg = new ServiceRegistration({
      ...base,
      consul: { url: peer.url },
      check: { ttlMs: 1000, heartbeatIntervalMs: 100 },
      registry,
    });
    await reg.register();
    forget = true;
    await eventually(
      () => peer!.requests.filter((r) => is(r, '/v1/agent/service/register')).length === 2,
      5000,
      're-register',
    );
    await eventually(() => reg!.state === 'registered', 5000, 'registered again');
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'shoal_consul_reregistrations_total');
    assert.equal(m?.values[0]?.value, 1);
  });

  it('goes to failed when Consul refuses the re-registration, and register() can start over', async () => {
    let mode: 'ok' | 'forgot' | 'denied' = 'ok';
    peer = await startScriptedConsul((r) => {
      if (mode === 'forgot' && r.path.startsWith('/v1/agent/check/pass/')) {
        mode = 'denied';
        return { status: 404, body: 'Unknown check ID' };
      }
      if (mode === 'denied' && is(r, '/v1/agent/service/register')) return { status: 403, body: 'Permission denied' };
      return ok;
    });
    reg = new ServiceRegistration({
      ...base,
      consul: { url: peer.url },
      check: { ttlMs: 1000, heartbeatIntervalMs: 100 },
    });
    await reg.register();
    const failed = new Promise<void>((resolve) => reg!.onStateChange((s) => s === 'failed' && resolve()));
    mode = 'forgot';
    await failed;
    const heartbeatsAtFailure = peer.requests.filter((r) => r.path.startsWith('/v1/agent/check/pass/')).length;
    mode = 'ok';
    await reg.register();
    assert.equal(reg.state, 'registered');
    assert.ok(peer.requests.filter((r) => r.path.startsWith('/v1/agent/check/pass/')).length > heartbeatsAtFailure);
  });

  it('heartbeats every heartbeatIntervalMs, and after a failure retries with backoff below the interval (fake timers)', async () => {
    let fail = false;
    peer = await startScriptedConsul((r) =>
      r.path.startsWith('/v1/agent/check/pass/') && fail ? { status: 500, body: 'x' } : ok,
    );
    const passes = () => peer!.requests.filter((r) => r.path.startsWith('/v1/agent/check/pass/')).length;
    const settle = async (want: number) => {
      for (let i = 0; i < 500 && passes() < want; i++) await new Promise((r) => setImmediate(r));
      for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    };
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    try {
      const registry = new Registry();
      reg = new ServiceRegistration({
        ...base,
        consul: { url: peer.url },
        check: { ttlMs: 9000 },
        backoff: { baseMs: 100, capMs: 400, random: () => 0.5 },
        registry,
      });
      const registered = reg.register();
      await settle(1);
      await registered;
      assert.equal(passes(), 1);
      await clock.tickAsync(2999);
      await settle(2);
      assert.equal(passes(), 1, 'no heartbeat before TTL/3');
      await clock.tickAsync(1);
      await settle(2);
      assert.equal(passes(), 2, 'a heartbeat at TTL/3');
      fail = true;
      await clock.tickAsync(3000);
      await settle(3);
      assert.equal(passes(), 3);
      // Backoff 0.5 * 100 = 50 ms, then 100 ms, then 200 ms: far below the 3 s interval.
      for (const [delay, want] of [
        [50, 4],
        [100, 5],
        [200, 6],
      ] as const) {
        await clock.tickAsync(delay - 1);
        await settle(want);
        assert.equal(passes(), want - 1);
        await clock.tickAsync(1);
        await settle(want);
        assert.equal(passes(), want);
      }
      const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'shoal_consul_heartbeat_failures_total');
      assert.equal(m?.values[0]?.value, 4);
      fail = false;
      await clock.tickAsync(400);
      await settle(7);
      assert.equal(passes(), 7);
      await clock.tickAsync(2999);
      await settle(8);
      assert.equal(passes(), 7, 'back to the normal interval after a success');
      const closing = reg.close();
      await clock.tickAsync(0);
      await closing;
      reg = undefined;
    } finally {
      clock.restore();
    }
  });

  it('with a check Consul runs, notices the agent forgot the instance through the presence check', async () => {
    let known = true;
    peer = await startScriptedConsul((r) => {
      if (r.method === 'GET' && r.path === '/v1/agent/services') {
        return { body: known ? { 'orders-1': { ID: 'orders-1', Service: 'orders' } } : {} };
      }
      if (is(r, '/v1/agent/service/register')) known = true;
      return ok;
    });
    reg = new ServiceRegistration({
      ...base,
      consul: { url: peer.url },
      check: { tcp: '127.0.0.1:8080', presenceIntervalMs: 100 },
    });
    await reg.register();
    assert.equal(peer.requests.filter((r) => r.path.startsWith('/v1/agent/check/')).length, 0, 'no TTL heartbeats');
    const body = JSON.parse(peer.requests[0]!.body) as { Check: Record<string, string> };
    assert.equal(body.Check.TCP, '127.0.0.1:8080');
    assert.equal(body.Check.Interval, '10s');
    known = false;
    await eventually(
      () => peer!.requests.filter((r) => is(r, '/v1/agent/service/register')).length === 2,
      5000,
      're-register',
    );
  });

  it('sends setStatus as warn/fail with the note as output', async () => {
    peer = await startScriptedConsul(() => ok);
    reg = new ServiceRegistration({ ...base, consul: { url: peer.url } });
    await reg.setStatus('warning', 'before register'); // recorded, sent with the first heartbeat
    await reg.register();
    const first = peer.requests.at(-1)!;
    assert.match(first.path, /^\/v1\/agent\/check\/warn\//);
    assert.equal(first.query.get('note'), 'before register');
    await reg.setStatus('critical', 'db down');
    const last = peer.requests.at(-1)!;
    assert.match(last.path, /^\/v1\/agent\/check\/fail\/service(:|%3A)orders-1$/);
    assert.equal(last.query.get('note'), 'db down');
    await assert.rejects(
      reg.setStatus('sick' as never),
      /status must be one of "passing", "warning", "critical", got "sick"/,
    );
  });

  it('rejects setStatus for a check Consul runs itself', async () => {
    reg = new ServiceRegistration({ ...base, check: { http: 'http://127.0.0.1:8080/health' } });
    await assert.rejects(reg.setStatus('warning'), /setStatus needs a TTL check/);
  });

  it('bounds close() by closeTimeoutMs when deregister hangs', async () => {
    peer = await startScriptedConsul((r) => (r.path.startsWith('/v1/agent/service/deregister/') ? { hang: true } : ok));
    reg = new ServiceRegistration({ ...base, consul: { url: peer.url }, closeTimeoutMs: 150 });
    await reg.register();
    const errors: Error[] = [];
    reg.onError((e) => errors.push(e));
    const started = Date.now();
    await reg.close();
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 2000, `close took ${took} ms`);
    assert.equal(reg.state, 'closed');
    assert.match(errors[0]!.message, /timed out after 150 ms/);
  });

  it('close() retries a failing deregistration within closeTimeoutMs', async () => {
    let failures = 2;
    peer = await startScriptedConsul((r) =>
      r.path.startsWith('/v1/agent/service/deregister/') && failures-- > 0 ? { status: 500, body: 'leader lost' } : ok,
    );
    reg = new ServiceRegistration({ ...base, consul: { url: peer.url }, backoff: { baseMs: 20, capMs: 40 } });
    await reg.register();
    const errors: Error[] = [];
    reg.onError((e) => errors.push(e));
    await reg.close();
    assert.equal(peer.requests.filter((r) => r.path.startsWith('/v1/agent/service/deregister/')).length, 3);
    assert.equal(errors.length, 2);
  });

  it('does not try to deregister when no register attempt ever reached Consul', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    reg = new ServiceRegistration({
      ...base,
      consul: { url: `http://127.0.0.1:${port}` },
      backoff: { baseMs: 5, capMs: 5 },
    });
    const errors: Error[] = [];
    reg.onError((e) => errors.push(e));
    const pending = reg.register().catch((e: unknown) => e);
    await eventually(() => errors.length >= 1, 5000, 'a failed attempt');
    await reg.close();
    assert.ok(
      errors.every((e) => /agent\.service\.register/.test(e.message)),
      'no deregister call was made',
    );
    assert.equal(((await pending) as { code?: string }).code, 'SHOAL_ERR_CLOSED');
  });

  it('close() deregisters, and only once', async () => {
    peer = await startScriptedConsul(() => ok);
    reg = new ServiceRegistration({ ...base, consul: { url: peer.url } });
    await reg.register();
    await Promise.all([reg.close(), reg.close()]);
    const deregisters = peer.requests.filter((r) => r.path.startsWith('/v1/agent/service/deregister/'));
    assert.equal(deregisters.length, 1);
    assert.match(deregisters[0]!.path, /orders-1$/);
    await assert.rejects(reg.register(), { code: 'SHOAL_ERR_CLOSED' });
  });
});

type Line = { level: string; obj: Record<string, unknown>; msg: string };

/** A pino-shaped logger that records what it is given (bindings merged in, as pino's children do). */
function captureLogger(lines: Line[], bindings: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (objOrMsg: unknown, msg?: unknown): void => {
      if (typeof objOrMsg === 'string') lines.push({ level, obj: { ...bindings }, msg: objOrMsg });
      else lines.push({ level, obj: { ...bindings, ...(objOrMsg as object) }, msg: String(msg ?? '') });
    };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: (more) => captureLogger(lines, { ...bindings, ...more }),
  };
}
