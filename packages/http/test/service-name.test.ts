import assert from 'node:assert/strict';
import { ServiceNameResolver } from '@shoal/http/internal';

describe('ServiceNameResolver', () => {
  it('maps <service>.service.consul and <tag>.<service>.service.consul', () => {
    const r = new ServiceNameResolver();
    assert.deepEqual(r.resolve('orders.service.consul'), { service: 'orders' });
    assert.deepEqual(r.resolve('V2.Orders.service.consul'), { service: 'orders', tag: 'v2' });
    assert.equal(r.resolve('example.com'), undefined);
    assert.equal(r.resolve('a.b.c.service.consul'), undefined);
  });

  it('prefers explicit entries and can turn the domain off', () => {
    const r = new ServiceNameResolver({ 'orders.internal': { service: 'orders', tag: 'v2' } }, false);
    assert.deepEqual(r.resolve('orders.internal'), { service: 'orders', tag: 'v2' });
    assert.equal(r.resolve('orders.service.consul'), undefined);
    assert.deepEqual(new ServiceNameResolver({}, 'svc.dc1.consul').resolve('orders.svc.dc1.consul'), {
      service: 'orders',
    });
  });

  it('names bad input', () => {
    assert.throws(() => new ServiceNameResolver({ x: '' }), /services\["x"\]\.service must be a non-empty string/);
    assert.throws(() => new ServiceNameResolver({}, '.consul'), /domain must not start or end with a dot/);
  });
});
