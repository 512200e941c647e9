import assert from 'node:assert/strict';
import { figureRatio, formatRatio } from '@shoal/policy/internal';

describe('comparison ratios (CLI --compare and bench:scaling)', () => {
  it('divides the first policy by the compared one; both 0 is 1 (marked), over a compared 0 is ∞', () => {
    assert.deepEqual(figureRatio(160, 100), { value: 1.6, bothZero: false });
    assert.equal(formatRatio(figureRatio(160, 100)), '1.600×');
    assert.deepEqual(figureRatio(0, 0), { value: 1, bothZero: true });
    assert.equal(formatRatio(figureRatio(0, 0)), '1× (both 0)');
    assert.equal(figureRatio(5, 0).value, Number.POSITIVE_INFINITY);
    assert.equal(formatRatio(figureRatio(5, 0)), '∞ (compared 0)');
    assert.equal(formatRatio(figureRatio(0, 4)), '0.000×');
  });
});
