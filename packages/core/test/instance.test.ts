import assert from 'node:assert/strict';
import { InvalidArgumentError, createInstance, instanceAddress, instanceSetsEqual, instancesEqual } from '@shoal/core';

const base = { id: 'orders-1', service: 'orders', address: '10.0.0.1', port: 8080 };

describe('Instance', () => {
  it('applies defaults and freezes the result', () => {
    const inst = createInstance(base);
    assert.equal(inst.weight, 1);
    assert.deepEqual(inst.tags, []);
    assert.deepEqual(inst.meta, {});
    assert.equal(inst.zone, undefined);
    assert.ok(Object.isFrozen(inst));
    assert.ok(Object.isFrozen(inst.meta));
  });

  it('keeps zone, weight, tags and meta', () => {
    const inst = createInstance({ ...base, zone: 'eu-1a', weight: 5, tags: ['v2'], meta: { version: '1.2.3' } });
    assert.equal(inst.zone, 'eu-1a');
    assert.equal(inst.weight, 5);
    assert.deepEqual(inst.tags, ['v2']);
    assert.equal(inst.meta.version, '1.2.3');
  });

  const bad: Array<[string, object, RegExp]> = [
    ['empty id', { ...base, id: '' }, /instance\.id must be a non-empty string, got ""/],
    ['missing service', { ...base, service: undefined }, /instance\.service must be a non-empty string, got undefined/],
    ['service with spaces', { ...base, service: 'my orders' }, /instance\.service must start with/],
    ['port out of range', { ...base, port: 70000 }, /instance\.port must be an integer between 0 and 65535, got 70000/],
    ['negative weight', { ...base, weight: -1 }, /instance\.weight must be an integer between 1 and 10000, got -1/],
    ['NaN weight', { ...base, weight: Number.NaN }, /instance\.weight .* got NaN/],
    ['non-string tag', { ...base, tags: ['a', 3] }, /instance\.tags\[1\] must be a non-empty string, got 3/],
    ['non-string meta', { ...base, meta: { a: 1 } }, /instance\.meta\.a must be a string, got 1/],
  ];
  for (const [name, input, message] of bad) {
    it(`rejects ${name} with a message naming the field`, () => {
      assert.throws(
        () => createInstance(input as never),
        (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message),
      );
    });
  }

  it('formats addresses, bracketing IPv6', () => {
    assert.equal(instanceAddress(base), '10.0.0.1:8080');
    assert.equal(instanceAddress({ address: '::1', port: 80 }), '[::1]:80');
  });

  it('compares instances and sets by content', () => {
    const a = createInstance({ ...base, meta: { x: '1' } });
    assert.equal(instancesEqual(a, createInstance({ ...base, meta: { x: '1' } })), true);
    assert.equal(instancesEqual(a, createInstance({ ...base, meta: { x: '2' } })), false);
    assert.equal(instancesEqual(a, createInstance({ ...base, meta: { x: '1' }, weight: 2 })), false);
    const b = createInstance({ ...base, id: 'orders-2', port: 8081 });
    assert.equal(instanceSetsEqual([a, b], [b, a]), true);
    assert.equal(instanceSetsEqual([a, b], [a]), false);
  });
});
