import assert from 'node:assert/strict';
import { ServiceRegistration, resolveServiceRegistrationOptions } from '@shoal/consul';

const base = { service: 'orders', port: 8080, address: '10.1.2.3' };

function rejects(options: unknown, pattern: RegExp): void {
  assert.throws(
    () => resolveServiceRegistrationOptions(options as never),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SHOAL_ERR_INVALID_ARGUMENT');
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('resolveServiceRegistrationOptions', () => {
  it('applies the documented defaults', () => {
    const o = resolveServiceRegistrationOptions(
      { service: 'orders', port: 8080 },
      {
        lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }],
        eth0: [
          { address: 'fe80::1', family: 'IPv6', internal: false, netmask: '', mac: '', cidr: null, scopeid: 1 },
          { address: '192.168.7.9', family: 'IPv4', internal: false, netmask: '', mac: '', cidr: null },
        ],
      },
    );
    assert.equal(o.instance.address, '192.168.7.9');
    assert.match(o.instance.id, /^orders-.+-8080-[0-9a-f]{8}$/);
    assert.equal(o.instance.weight, 1);
    assert.deepEqual(o.check, { kind: 'ttl', ttlMs: 15000, heartbeatIntervalMs: 5000 });
    assert.equal(o.deregisterCriticalServiceAfterMs, 60000);
    assert.equal(o.closeTimeoutMs, 5000);
    assert.equal(o.consul.url, 'http://127.0.0.1:8500');
    assert.equal(o.consul.requestTimeoutMs, 10000);
    assert.deepEqual(o.weights, { passing: 1, warning: 1 });
    assert.equal(o.backoff.capMs, 2000, 'register attempts and heartbeat retries are at most 2 s apart');
    assert.ok(Object.isFrozen(o));
  });

  it('keeps the default id stable within the process', () => {
    const a = resolveServiceRegistrationOptions({ ...base });
    const b = resolveServiceRegistrationOptions({ ...base });
    assert.equal(a.instance.id, b.instance.id);
  });

  it('puts zone, version and weight into meta and weights', () => {
    const o = resolveServiceRegistrationOptions({
      ...base,
      zone: 'eu-1',
      version: '2.1.0',
      weight: 40,
      meta: { team: 'a' },
    });
    assert.deepEqual(o.instance.meta, { team: 'a', zone: 'eu-1', version: '2.1.0', weight: '40' });
    assert.equal(o.instance.zone, 'eu-1');
    assert.equal(o.instance.weight, 40);
    assert.deepEqual(o.weights, { passing: 40, warning: 1 });
  });

  it('builds the register body Consul expects', () => {
    const reg = new ServiceRegistration({ ...base, id: 'orders-1', tags: ['v2'], weight: 3, check: { ttlMs: 9000 } });
    assert.deepEqual(reg.definition(), {
      ID: 'orders-1',
      Name: 'orders',
      Address: '10.1.2.3',
      Port: 8080,
      Tags: ['v2'],
      Meta: { weight: '3' },
      Weights: { Passing: 3, Warning: 1 },
      Check: {
        CheckID: 'service:orders-1',
        Name: "Service 'orders' check",
        DeregisterCriticalServiceAfter: '60s',
        TTL: '9s',
      },
    });
    const http = new ServiceRegistration({
      ...base,
      id: 'orders-2',
      check: { http: 'http://10.1.2.3:8080/health', intervalMs: 2500, timeoutMs: 1000 },
      deregisterCriticalServiceAfterMs: 90_000,
    });
    assert.deepEqual(http.definition().Check, {
      CheckID: 'service:orders-2',
      Name: "Service 'orders' check",
      DeregisterCriticalServiceAfter: '90s',
      HTTP: 'http://10.1.2.3:8080/health',
      Interval: '2500ms',
      Timeout: '1s',
    });
    void reg.close();
    void http.close();
  });

  it('names the option and the value in every validation error', () => {
    rejects({ port: 1 }, /^service must be a non-empty string, got undefined$/);
    rejects({ service: 'bad name', port: 1 }, /service must start with a letter.*"bad name"/);
    rejects({ service: 'a', port: 70000 }, /^port must be an integer between 0 and 65535, got 70000$/);
    rejects({ service: 'a', port: 0 }, /port must be the port the instance listens on.*got 0/);
    rejects({ ...base, address: '0.0.0.0' }, /address must be an address others can reach.*"0.0.0.0"/);
    rejects({ ...base, weight: 0 }, /^weight must be an integer between 1 and 10000, got 0$/);
    rejects({ ...base, tags: ['ok', ''] }, /^tags\[1\] must be a non-empty string/);
    rejects({ ...base, meta: { 'consul-x': 'y' } }, /meta keys must be .* got "consul-x"/);
    rejects({ ...base, meta: { a: 5 } }, /^meta\.a must be a string of at most 512 characters, got 5$/);
    rejects({ ...base, zone: 'a', meta: { zone: 'b' } }, /meta\.zone \("b"\) conflicts with zone \("a"\)/);
    rejects({ ...base, check: { ttlMs: 500 } }, /^check\.ttlMs must be an integer >= 1000, got 500$/);
    rejects(
      { ...base, check: { ttlMs: 3000, heartbeatIntervalMs: 3000 } },
      /check\.heartbeatIntervalMs must be an integer between 100 and 2999, got 3000/,
    );
    rejects(
      { ...base, check: { http: 'x', tcp: 'y:1' } },
      /check must have exactly one of http, tcp, grpc or ttlMs, got http and tcp/,
    );
    rejects({ ...base, check: { http: 'localhost:80' } }, /check\.http must be an http\(s\) URL, got "localhost:80"/);
    rejects({ ...base, check: { tcp: 'localhost' } }, /check\.tcp must be host:port, got "localhost"/);
    rejects(
      { ...base, check: { grpc: 'h:1', intervalMs: 10 } },
      /check\.intervalMs must be an integer >= 1000, got 10/,
    );
    rejects({ ...base, check: { ttlMs: 3000, intervalMs: 1000 } }, /check has an unknown option "intervalMs"/);
    rejects(
      { ...base, deregisterCriticalServiceAfterMs: -1 },
      /deregisterCriticalServiceAfterMs must be an integer >= 1000, got -1/,
    );
    rejects({ ...base, closeTimeoutMs: 0 }, /closeTimeoutMs must be an integer >= 1, got 0/);
    rejects({ ...base, ttl: 5 }, /ServiceRegistration options has an unknown option "ttl"/);
    rejects({ ...base, consul: { url: 'ftp://x:1' } }, /consul\.url must use http or https, got "ftp:\/\/x:1"/);
    rejects({ ...base, consul: { url: 'http://h:1/v1' } }, /consul\.url must be the server root/);
    rejects({ ...base, consul: { url: 'http://user:pw@h:1' } }, /consul\.url must not carry credentials/);
    rejects({ ...base, consul: { token: 'has space' } }, /consul\.token must be a non-empty string of printable ASCII/);
    rejects(
      { ...base, consul: { requestTimeoutMs: 1.5 } },
      /consul\.requestTimeoutMs must be a positive integer, got 1.5/,
    );
    rejects({ ...base, consul: { ca: 'PEM' } }, /consul\.ca is only used with an https url/);
    rejects({ ...base, consul: { datacenter: 'dc 1' } }, /consul\.datacenter must be a string matching/);
  });

  it('never echoes a rejected token', () => {
    assert.throws(
      () => resolveServiceRegistrationOptions({ ...base, consul: { token: 'secret value' } }),
      (e: Error) => !e.message.includes('secret'),
    );
  });

  it('accepts a bare host:port (the CONSUL_HTTP_ADDR format) and https with a CA', () => {
    assert.equal(
      resolveServiceRegistrationOptions({ ...base, consul: { url: '10.0.0.5:8500' } }).consul.url,
      'http://10.0.0.5:8500',
    );
    const tls = resolveServiceRegistrationOptions({
      ...base,
      consul: { url: 'https://consul.local:8501/', ca: 'PEM' },
    });
    assert.equal(tls.consul.url, 'https://consul.local:8501');
    assert.equal(tls.consul.secure, true);
  });
});
