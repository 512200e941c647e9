import assert from 'node:assert/strict';
import { erlangC } from '@shoal/policy/internal';

describe('queueing model', () => {
  it('Erlang C matches known values', () => {
    assert.ok(Math.abs(erlangC(1, 0.5) - 0.5) < 1e-12); // M/M/1: P(wait) = ρ
    assert.ok(Math.abs(erlangC(2, 1) - 1 / 3) < 1e-12);
    assert.ok(Math.abs(erlangC(10, 8) - 0.409) < 0.001); // textbook table: c = 10, a = 8 Erlangs
    assert.equal(erlangC(4, 0), 0);
    assert.equal(erlangC(4, 4), 1);
  });

  it('stays finite for large pools', () => {
    const p = erlangC(800, 700);
    assert.ok(p > 0 && p < 1, String(p));
  });
});
