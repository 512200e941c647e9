import assert from 'node:assert/strict';
import { resolvePolicy } from '@shoal/policy';
import { clampToRange, scheduleMinimum } from '@shoal/policy/internal';
import { context, fleet, T0 } from './helpers.js';

describe('stage: range', () => {
  it('raises the minimum while a schedule is active and says which one', () => {
    const policy = resolvePolicy({
      minReplicas: 2,
      maxReplicas: 20,
      schedules: [{ name: 'lunch', cron: '0 12 * * 1-5', durationMs: 3_600_000, minReplicas: 8 }],
    });
    const reasons: string[] = [];
    assert.equal(scheduleMinimum(policy, T0 + 60_000, reasons), 8);
    assert.match(reasons[0] as string, /schedule lunch .* minimum 8 replicas/);
    assert.equal(scheduleMinimum(policy, T0 + 2 * 3_600_000, []), 2);
  });

  it('moves an out-of-range count straight to the bound, and leaves one in range alone', () => {
    const above = context({ minReplicas: 1, maxReplicas: 4 }, 6, fleet(6, {}));
    assert.deepEqual(clampToRange(above), { replicas: 4, limit: 'TooManyReplicas' });
    const below = context({ minReplicas: 3, maxReplicas: 9 }, 1, fleet(1, {}));
    assert.deepEqual(clampToRange(below), { replicas: 3, limit: 'TooFewReplicas' });
    assert.match(below.reasons.join('\n'), /current 1 below minimum 3/);
    assert.equal(clampToRange(context({ maxReplicas: 9 }, 3, fleet(3, {}))), undefined);
  });
});
