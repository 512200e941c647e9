import assert from 'node:assert/strict';
import { instanceFromHealthEntry } from '@shoal/consul/internal';

const entry = (service: Record<string, unknown>, node: Record<string, unknown> = { Address: '10.0.0.1' }) =>
  ({
    Node: node,
    Service: { ID: 'orders-1', Service: 'orders', Port: 8080, Tags: [], Meta: {}, ...service },
    Checks: [],
  }) as never;

describe('instanceFromHealthEntry', () => {
  it('maps a health entry to an Instance', () => {
    const i = instanceFromHealthEntry(
      entry({
        Address: '10.0.0.2',
        Tags: ['v2'],
        Meta: { zone: 'eu-1', version: '2' },
        Weights: { Passing: 7, Warning: 1 },
      }),
    );
    assert.deepEqual(
      { ...i },
      {
        id: 'orders-1',
        service: 'orders',
        address: '10.0.0.2',
        port: 8080,
        zone: 'eu-1',
        weight: 7,
        tags: ['v2'],
        meta: { zone: 'eu-1', version: '2' },
      },
    );
  });

  it('falls back to the node address when the service has none', () => {
    assert.equal(instanceFromHealthEntry(entry({ Address: '' })).address, '10.0.0.1');
  });

  it('prefers meta.weight, then Weights.Passing, then 1; clamps and rounds', () => {
    assert.equal(instanceFromHealthEntry(entry({ Meta: { weight: '30' }, Weights: { Passing: 2 } })).weight, 30);
    assert.equal(instanceFromHealthEntry(entry({ Meta: { weight: 'heavy' }, Weights: { Passing: 2 } })).weight, 2);
    assert.equal(instanceFromHealthEntry(entry({ Weights: null })).weight, 1);
    assert.equal(instanceFromHealthEntry(entry({ Meta: { weight: '99999' } })).weight, 10000);
    assert.equal(instanceFromHealthEntry(entry({ Meta: { weight: '2.6' } })).weight, 3);
    assert.equal(instanceFromHealthEntry(entry({ Meta: { weight: '-4' } })).weight, 1);
  });

  it('tolerates null Tags/Meta and an absent zone', () => {
    const i = instanceFromHealthEntry(entry({ Tags: null, Meta: null }));
    assert.deepEqual(i.tags, []);
    assert.deepEqual(i.meta, {});
    assert.equal(i.zone, undefined);
  });

  it('rejects an entry that cannot be reached, naming the field', () => {
    assert.throws(
      () => instanceFromHealthEntry(entry({ Address: '' }, {})),
      /instance\.address must be a non-empty string/,
    );
    assert.throws(() => instanceFromHealthEntry(entry({ Port: 'x' })), /instance\.port must be an integer/);
  });
});
