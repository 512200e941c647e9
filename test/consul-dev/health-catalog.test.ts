import assert from 'node:assert/strict';
import { eventually, setup } from './support.js';
import type { Fixture, HealthEntry } from './support.js';

interface CatalogNode {
  Node: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  ServiceMeta: Record<string, string>;
  ServicePort: number;
  ServiceAddress: string;
}

describe('consul-dev conformance: health, catalog, status and agent self', () => {
  let f: Fixture;
  let name: string;
  beforeEach(async () => {
    f = await setup();
    name = f.name();
    // a: passing, tags [blue, v1], zone eu-1; b: warning, tags [green], zone us-1; c: critical, tags [blue]
    const regs = [
      { id: `${name}-a`, tags: ['blue', 'v1'], meta: { zone: 'eu-1' }, status: 'pass' },
      { id: `${name}-b`, tags: ['green'], meta: { zone: 'us-1' }, status: 'warn' },
      { id: `${name}-c`, tags: ['blue'], meta: { zone: 'eu-1' }, status: 'fail' },
    ] as const;
    for (const [i, r] of regs.entries()) {
      f.track(r.id);
      await f.consul.agent.service.register({
        name,
        id: r.id,
        address: '127.0.0.1',
        port: 9000 + i,
        tags: [...r.tags],
        meta: { ...r.meta },
        check: { ttl: '60s' },
      } as never);
      await f.consul.agent.check[r.status](`service:${r.id}`);
    }
    // A real agent syncs check updates to the catalog asynchronously; wait until health shows all three.
    const want = { [`${name}-a`]: 'passing', [`${name}-b`]: 'warning', [`${name}-c`]: 'critical' };
    await eventually(async () => {
      const entries = (await f.consul.health.service(name)) as HealthEntry[];
      return (
        entries.length === 3 &&
        entries.every((e) => e.Checks.find((c) => c.ServiceID === e.Service.ID)?.Status === want[e.Service.ID])
      );
    });
  });
  afterEach(async () => {
    await f.cleanup();
  });

  const ids = (entries: HealthEntry[]) => entries.map((e) => e.Service.ID).sort();

  it('lists every instance with Node, Service and Checks (serfHealth included)', async () => {
    const entries = (await f.consul.health.service(name)) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-a`, `${name}-b`, `${name}-c`]);
    const a = entries.find((e) => e.Service.ID === `${name}-a`)!;
    assert.equal(a.Service.Service, name);
    assert.equal(a.Service.Port, 9000);
    assert.equal(a.Service.Address, '127.0.0.1');
    assert.ok(a.Node.Node);
    assert.ok(a.Checks.some((c) => c.CheckID === 'serfHealth' && c.ServiceID === ''));
    assert.equal(a.Checks.find((c) => c.CheckID === `service:${name}-a`)?.Status, 'passing');
  });

  it('?passing keeps only instances whose every check passes (warning excluded)', async () => {
    const entries = (await f.consul.health.service({ service: name, passing: true })) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-a`]);
  });

  it('?tag filters by tag, repeated tags AND-ed', async () => {
    let entries = (await f.consul.health.service({ service: name, tag: 'blue' })) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-a`, `${name}-c`]);
    entries = (await f.consul.health.service({ service: name, tag: ['blue', 'v1'] } as never)) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-a`]);
  });

  it('?filter supports Service.Meta.x == "y" and "t" in Service.Tags', async () => {
    let entries = (await f.consul.health.service({
      service: name,
      filter: 'Service.Meta.zone == "eu-1"',
    } as never)) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-a`, `${name}-c`]);
    entries = (await f.consul.health.service({
      service: name,
      filter: '"green" in Service.Tags',
    } as never)) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-b`]);
    entries = (await f.consul.health.service({
      service: name,
      filter: 'Service.Tags contains "blue" and Service.Meta.zone != "us-1"',
    } as never)) as HealthEntry[];
    assert.deepEqual(ids(entries), [`${name}-a`, `${name}-c`]);
  });

  it('answers an invalid filter with 500 Failed to create boolean expression evaluator', async () => {
    const res = await f.raw('GET', `/v1/health/service/${name}?filter=${encodeURIComponent('Service.Nope == "x"')}`);
    assert.equal(res.status, 500);
    assert.match(res.text, /Failed to create boolean expression evaluator/);
  });

  it('ignores ?near and answers a bad ?passing with 400', async () => {
    const near = await f.raw('GET', `/v1/health/service/${name}?near=_agent`);
    assert.equal(near.status, 200);
    assert.equal(near.json<unknown[]>().length, 3);
    const bad = await f.raw('GET', `/v1/health/service/${name}?passing=maybe`);
    assert.equal(bad.status, 400);
    assert.equal(bad.text, 'Invalid value for ?passing');
  });

  it('answers an unknown service with [] and a non-zero X-Consul-Index', async () => {
    const res = await f.raw('GET', `/v1/health/service/${f.name('nobody')}`);
    assert.equal(res.status, 200);
    assert.equal(res.text, '[]');
    assert.ok(Number(res.headers.get('x-consul-index')) >= 1);
  });

  it('sends X-Consul-Index, X-Consul-KnownLeader and X-Consul-LastContact on health queries', async () => {
    const res = await f.raw('GET', `/v1/health/service/${name}`);
    assert.ok(Number(res.headers.get('x-consul-index')) >= 1);
    assert.equal(res.headers.get('x-consul-knownleader'), 'true');
    assert.match(res.headers.get('x-consul-lastcontact') ?? '', /^\d+$/);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  });

  it('catalog service list shows every service name with its tags', async () => {
    const services = (await f.consul.catalog.service.list()) as Record<string, string[]>;
    assert.deepEqual([...services[name]!].sort(), ['blue', 'green', 'v1']);
    assert.ok('consul' in services, 'the consul service itself is listed');
  });

  it('catalog service nodes lists instances whatever their health, with ServiceX fields', async () => {
    const nodes = (await f.consul.catalog.service.nodes(name)) as CatalogNode[];
    assert.deepEqual(nodes.map((n) => n.ServiceID).sort(), [`${name}-a`, `${name}-b`, `${name}-c`]);
    const a = nodes.find((n) => n.ServiceID === `${name}-a`)!;
    assert.equal(a.ServiceName, name);
    assert.deepEqual(a.ServiceTags, ['blue', 'v1']);
    assert.deepEqual(a.ServiceMeta, { zone: 'eu-1' });
    assert.equal(a.ServicePort, 9000);
    const green = (await f.consul.catalog.service.nodes({ service: name, tag: 'green' })) as CatalogNode[];
    assert.deepEqual(
      green.map((n) => n.ServiceID),
      [`${name}-b`],
    );
  });

  it('health checks for a service lists its checks only', async () => {
    const checks = (await f.consul.health.checks(name)) as Array<{ CheckID: string; Status: string }>;
    assert.deepEqual(checks.map((c) => c.CheckID).sort(), [
      `service:${name}-a`,
      `service:${name}-b`,
      `service:${name}-c`,
    ]);
  });

  it('status leader answers the raft address as a JSON string', async () => {
    const leader = await f.consul.status.leader();
    assert.equal(typeof leader, 'string');
    assert.match(leader as string, /^[\d.]+:\d+$/);
  });

  it('agent self describes the node and datacenter', async () => {
    const self = (await f.consul.agent.self()) as {
      Config: { Datacenter: string; NodeName: string };
      Member: { Name: string };
    };
    assert.ok(self.Config.Datacenter);
    assert.ok(self.Config.NodeName);
    assert.equal(self.Member.Name, self.Config.NodeName);
  });
});
