import assert from 'node:assert/strict';
import { LOAD_HEADER, formatLoadHeader, parseLoadHeader } from '@shoal/http';

describe('x-shoal-load header', () => {
  it('is named x-shoal-load', () => assert.equal(LOAD_HEADER, 'x-shoal-load'));

  it('reads a bare number as utilization', () => {
    assert.deepEqual(parseLoadHeader('0.42'), { utilization: 0.42 });
  });

  it('reads key=value pairs and ignores unknown keys and junk', () => {
    assert.deepEqual(parseLoadHeader('utilization=0.5, cpu=0.25; rps=100, eps=2, colour=red, x'), {
      utilization: 0.5,
      cpu: 0.25,
      rps: 100,
      eps: 2,
    });
    assert.equal(parseLoadHeader('utilization=-1'), undefined);
    assert.equal(parseLoadHeader('NaN'), undefined);
    assert.equal(parseLoadHeader(undefined), undefined);
    assert.equal(parseLoadHeader('x'.repeat(600)), undefined);
  });

  it('formats what it parses', () => {
    const load = { utilization: 0.5, rps: 12 };
    assert.deepEqual(parseLoadHeader(formatLoadHeader(load)), load);
  });
});
