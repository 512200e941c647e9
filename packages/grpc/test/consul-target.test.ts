import assert from 'node:assert/strict';
import { parseConsulTargetString } from '@shoal/grpc/internal';

describe('consul: target parsing', () => {
  it('parses consul:///orders', () => {
    assert.deepEqual({ ...parseConsulTargetString('consul:///orders') }, { service: 'orders' });
  });

  it('parses an agent address and filters', () => {
    assert.deepEqual(
      { ...parseConsulTargetString('consul://127.0.0.1:8500/orders?tag=v2&zone=eu-west-1a') },
      {
        service: 'orders',
        consulUrl: 'http://127.0.0.1:8500',
        tag: 'v2',
        zone: 'eu-west-1a',
      },
    );
    assert.equal(parseConsulTargetString('consul://consul.local/orders').consulUrl, 'http://consul.local:8500');
    assert.equal(parseConsulTargetString('consul:///orders?dc=dc2').dc, 'dc2');
  });

  it('names what is wrong', () => {
    assert.throws(() => parseConsulTargetString('consul:///bad name'), /service name must start/);
    assert.throws(() => parseConsulTargetString('consul:///orders?color=red'), /unknown parameter "color"/);
    assert.throws(() => parseConsulTargetString('consul:///orders?tag='), /parameter tag must not be empty/);
    assert.throws(() => parseConsulTargetString('consul://a b/orders'), /authority must be host\[:port\]/);
    assert.throws(() => parseConsulTargetString('dns:///orders'), /target must look like consul:/);
  });
});
