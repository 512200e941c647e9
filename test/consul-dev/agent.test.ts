import assert from 'node:assert/strict';
import { bodyOf, eventually, setup, statusOf } from './support.js';
import type { Fixture, HealthEntry } from './support.js';

interface AgentService {
  ID: string;
  Service: string;
  Tags: string[];
  Meta: Record<string, string>;
  Port: number;
  Address: string;
  Weights: { Passing: number; Warning: number };
}
interface AgentCheck {
  CheckID: string;
  Name: string;
  Status: string;
  Output: string;
  Notes: string;
  ServiceID: string;
  ServiceName: string;
  Type: string;
}

describe('consul-dev conformance: agent services and checks', () => {
  let f: Fixture;
  beforeEach(async () => {
    f = await setup();
  });
  afterEach(async () => {
    await f.cleanup();
  });

  it('registers a service with a TTL check and lists it with Consul casing', async () => {
    const name = f.name();
    const id = f.track(`${name}-1`);
    await f.consul.agent.service.register({
      name,
      id,
      address: '127.0.0.1',
      port: 8080,
      tags: ['v1', 'primary'],
      meta: { zone: 'eu-1', version: '1.2.3' },
      check: { ttl: '30s', name: 'ttl', timeout: '1s' },
    });
    const services = (await f.consul.agent.service.list()) as Record<string, AgentService>;
    const svc = services[id];
    assert.ok(svc, 'service listed');
    assert.equal(svc.Service, name);
    assert.deepEqual(svc.Tags, ['v1', 'primary']);
    assert.deepEqual(svc.Meta, { zone: 'eu-1', version: '1.2.3' });
    assert.equal(svc.Port, 8080);
    assert.equal(svc.Address, '127.0.0.1');
    assert.deepEqual(svc.Weights, { Passing: 1, Warning: 1 });
    const checks = (await f.consul.agent.check.list()) as Record<string, AgentCheck>;
    const check = checks[`service:${id}`];
    assert.ok(check, 'check id is service:<id>');
    assert.equal(check.Status, 'critical', 'a new check starts critical');
    assert.equal(check.ServiceID, id);
    assert.equal(check.ServiceName, name);
    assert.equal(check.Type, 'ttl');
  });

  it('answers register with 200 and an empty body, and lists services without X-Consul-Index', async () => {
    const name = f.name();
    f.track(name);
    const res = await f.raw('PUT', '/v1/agent/service/register', JSON.stringify({ name, port: 1 }));
    assert.equal(res.status, 200);
    assert.equal(res.text, '');
    const list = await f.raw('GET', '/v1/agent/services');
    assert.equal(list.status, 200);
    assert.match(list.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(list.headers.get('x-consul-index'), null);
    assert.ok(list.json<Record<string, unknown>>()[name], 'ID defaults to the name');
  });

  it('numbers several checks service:<id>:1.. and names them after the service', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({
      name,
      port: 1,
      checks: [{ ttl: '30s' }, { ttl: '30s', notes: 'second' }],
    } as never);
    const checks = (await f.consul.agent.check.list()) as Record<string, AgentCheck>;
    assert.equal(checks[`service:${id}:1`]?.Name, `Service '${name}' check`);
    assert.equal(checks[`service:${id}:2`]?.Notes, 'second');
  });

  it('accepts HTTP, TCP and gRPC check definitions', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({
      name,
      port: 1,
      checks: [
        { http: 'http://127.0.0.1:1/health', interval: '10s', timeout: '1s' },
        { tcp: '127.0.0.1:1', interval: '10s' },
        { grpc: '127.0.0.1:1/svc', interval: '10s' },
      ],
    } as never);
    const checks = (await f.consul.agent.check.list()) as Record<string, AgentCheck>;
    assert.equal(checks[`service:${id}:1`]?.Type, 'http');
    assert.equal(checks[`service:${id}:2`]?.Type, 'tcp');
    assert.equal(checks[`service:${id}:3`]?.Type, 'grpc');
  });

  it('pass, warn and fail set the status and put the note into Output', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '30s' } } as never);
    const checkId = `service:${id}`;
    const statusOf = async () => ((await f.consul.agent.check.list()) as Record<string, AgentCheck>)[checkId]!;
    await f.consul.agent.check.pass({ id: checkId, note: 'all good' });
    assert.deepEqual([(await statusOf()).Status, (await statusOf()).Output], ['passing', 'all good']);
    await f.consul.agent.check.warn({ id: checkId, note: 'slow' });
    assert.deepEqual([(await statusOf()).Status, (await statusOf()).Output], ['warning', 'slow']);
    await f.consul.agent.check.fail(checkId);
    assert.deepEqual([(await statusOf()).Status, (await statusOf()).Output], ['critical', '']);
  });

  it('updates a TTL check through PUT /v1/agent/check/update with Status and Output', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '30s' } } as never);
    const res = await f.raw(
      'PUT',
      `/v1/agent/check/update/service:${id}`,
      JSON.stringify({ Status: 'warning', Output: 'half' }),
    );
    assert.equal(res.status, 200);
    const check = ((await f.consul.agent.check.list()) as Record<string, AgentCheck>)[`service:${id}`]!;
    assert.equal(check.Status, 'warning');
    assert.equal(check.Output, 'half');
    const bad = await f.raw('PUT', `/v1/agent/check/update/service:${id}`, JSON.stringify({ Status: 'fine' }));
    assert.equal(bad.status, 400);
    assert.equal(bad.text, "Invalid check status: 'fine'");
  });

  it('keeps a check status when the service is registered again', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '30s' } } as never);
    await f.consul.agent.check.pass(`service:${id}`);
    await f.consul.agent.service.register({ name, port: 2, check: { ttl: '30s' } } as never);
    const check = ((await f.consul.agent.check.list()) as Record<string, AgentCheck>)[`service:${id}`]!;
    assert.equal(check.Status, 'passing');
    const svc = ((await f.consul.agent.service.list()) as Record<string, AgentService>)[id]!;
    assert.equal(svc.Port, 2);
  });

  it('deregisters a service with its checks', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '30s' } } as never);
    await f.consul.agent.service.deregister(id);
    assert.equal(((await f.consul.agent.service.list()) as Record<string, unknown>)[id], undefined);
    assert.equal(((await f.consul.agent.check.list()) as Record<string, unknown>)[`service:${id}`], undefined);
  });

  it('registers and deregisters a standalone check on a service', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1 });
    await f.consul.agent.check.register({ name: 'extra', id: `${id}-extra`, serviceid: id, ttl: '30s' } as never);
    let checks = (await f.consul.agent.check.list()) as Record<string, AgentCheck>;
    assert.equal(checks[`${id}-extra`]?.ServiceID, id);
    await f.consul.agent.check.deregister(`${id}-extra`);
    checks = (await f.consul.agent.check.list()) as Record<string, AgentCheck>;
    assert.equal(checks[`${id}-extra`], undefined);
  });

  it('maintenance mode adds a critical _service_maintenance check and removes it again', async () => {
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1 });
    await f.consul.agent.service.maintenance({ id, enable: true, reason: 'deploy' });
    // A real agent syncs maintenance checks to the catalog asynchronously.
    const maint = await eventually(async () => {
      const found = (await f.consul.health.service(name)) as HealthEntry[];
      return found[0]?.Checks.find((c) => c.CheckID === `_service_maintenance:${id}`);
    });
    assert.equal(maint?.Status, 'critical');
    assert.equal(maint?.Notes, 'deploy');
    await f.consul.agent.service.maintenance({ id, enable: false });
    await eventually(async () => {
      const found = (await f.consul.health.service(name)) as HealthEntry[];
      return found[0] !== undefined && !found[0].Checks.some((c) => c.CheckID.startsWith('_service_maintenance'));
    });
  });

  it('turns a TTL check critical with "TTL expired" once its TTL passes (short real timer)', async function () {
    this.timeout(10_000);
    const name = f.name();
    const id = f.track(name);
    await f.consul.agent.service.register({ name, port: 1, check: { ttl: '1s' } } as never);
    await f.consul.agent.check.pass({ id: `service:${id}`, note: 'ok for now' });
    const check = await eventually(async () => {
      const c = ((await f.consul.agent.check.list()) as Record<string, AgentCheck>)[`service:${id}`]!;
      return c.Status === 'critical' ? c : undefined;
    });
    assert.equal(check.Output, 'TTL expired (last output before timeout follows): ok for now');
  });

  describe('bad input', () => {
    it('rejects malformed JSON with 400 Request decode failed', async () => {
      const res = await f.raw('PUT', '/v1/agent/service/register', '{"Name": ');
      assert.equal(res.status, 400);
      assert.match(res.text, /^Request decode failed: /);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    });

    it('rejects a registration without a name with 400 Missing service name', async () => {
      const res = await f.raw('PUT', '/v1/agent/service/register', JSON.stringify({ Port: 1 }));
      assert.equal(res.status, 400);
      assert.equal(res.text, 'Missing service name');
    });

    it('rejects a TTL with a bad duration', async () => {
      const res = await f.raw(
        'PUT',
        '/v1/agent/service/register',
        JSON.stringify({ Name: f.name(), Check: { TTL: 'soon' } }),
      );
      assert.equal(res.status, 400);
      assert.match(res.text, /^Request decode failed: .*invalid duration/);
    });

    it('rejects an HTTP check without interval and a check with neither TTL nor interval', async () => {
      let res = await f.raw(
        'PUT',
        '/v1/agent/service/register',
        JSON.stringify({ Name: f.name(), Check: { HTTP: 'http://127.0.0.1:1/' } }),
      );
      assert.equal(res.status, 400);
      assert.equal(
        res.text,
        'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks',
      );
      res = await f.raw(
        'PUT',
        '/v1/agent/service/register',
        JSON.stringify({ Name: f.name(), Check: { Notes: 'nothing else' } }),
      );
      assert.equal(res.status, 400);
      assert.equal(res.text, 'Invalid check: TTL must be > 0 for TTL checks');
    });

    it('answers 404 for an unknown service ID on deregister, through the client too', async () => {
      const id = f.name('missing');
      const res = await f.raw('PUT', `/v1/agent/service/deregister/${id}`);
      assert.equal(res.status, 404);
      assert.equal(res.text, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      await assert.rejects(f.consul.agent.service.deregister(id), (err: unknown) => {
        assert.equal(statusOf(err), 404);
        assert.match((err as Error).message, /not found/);
        return true;
      });
    });

    it('answers 404 for an unknown check ID on pass', async () => {
      const id = f.name('missing');
      await assert.rejects(f.consul.agent.check.pass(id), (err: unknown) => {
        assert.equal(statusOf(err), 404);
        assert.equal(bodyOf(err), `Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
        return true;
      });
    });

    it('answers 500 for pass on a check that is not a TTL check', async () => {
      const name = f.name();
      const id = f.track(name);
      await f.consul.agent.service.register({ name, port: 1, check: { tcp: '127.0.0.1:1', interval: '30s' } } as never);
      const res = await f.raw('PUT', `/v1/agent/check/pass/service:${id}`);
      assert.equal(res.status, 500);
      assert.equal(res.text, `CheckID "service:${id}" does not have associated TTL`);
    });

    it('answers 405 with Allow for the wrong method', async () => {
      const res = await f.raw('GET', '/v1/agent/service/register');
      assert.equal(res.status, 405);
      assert.equal(res.text, 'method GET not allowed');
      assert.match(res.headers.get('allow') ?? '', /PUT/);
    });

    it('answers 404 Invalid URL path for an unknown endpoint', async () => {
      const res = await f.raw('GET', '/v1/no/such/endpoint');
      assert.equal(res.status, 404);
      assert.match(res.text, /^Invalid URL path: not a recognized HTTP API endpoint/);
    });

    it('rejects a body over the limit with 413 and keeps serving', async function () {
      if (f.tc.isReal) this.skip(); // the real agent's limit depends on its configuration
      const huge = Buffer.alloc(600 * 1024, 'a');
      const res = await f.raw('PUT', '/v1/agent/service/register', huge);
      assert.equal(res.status, 413);
      assert.match(res.text, /^Request body\(614400 bytes\) too large, max size: 524288 bytes/);
      const ok = await f.raw('GET', '/v1/status/leader');
      assert.equal(ok.status, 200);
    });
  });
});
