import assert from 'node:assert/strict';
import { defaultInstanceId, firstNonInternalIPv4 } from '@shoal/consul';

describe('firstNonInternalIPv4', () => {
  it('skips loopback and IPv6 and returns the first external IPv4', () => {
    assert.equal(
      firstNonInternalIPv4({
        lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }],
        eth0: [{ address: 'fe80::1', family: 'IPv6', internal: false, netmask: '', mac: '', cidr: null, scopeid: 0 }],
        eth1: [{ address: '10.9.8.7', family: 'IPv4', internal: false, netmask: '', mac: '', cidr: null }],
      }),
      '10.9.8.7',
    );
  });

  it('returns undefined when there is only loopback', () => {
    assert.equal(
      firstNonInternalIPv4({
        lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true, netmask: '', mac: '', cidr: null }],
      }),
      undefined,
    );
  });
});

describe('defaultInstanceId', () => {
  it('is <service>-<host>-<port>-<process token> and stable', () => {
    const a = defaultInstanceId('orders', 8080, 'web_1.local');
    assert.match(a, /^orders-web-1\.local-8080-[0-9a-f]{8}$/);
    assert.equal(defaultInstanceId('orders', 8080, 'web_1.local'), a);
    assert.notEqual(defaultInstanceId('orders', 8081, 'web_1.local'), a);
  });
});
