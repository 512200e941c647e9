import assert from 'node:assert/strict';
import { SeededRandom } from '@shoal/core';
import { resolveModel, simulate, syntheticTrace } from '@shoal/policy';
import { SimFleet } from '@shoal/policy/internal';

const timing = { coldStartS: 30, coldStartCv: 0, maxParallelStarts: 0, drainS: 0 };

describe('simulated fleet', () => {
  it('draws each cold start from a lognormal with the model mean and cv (0: a constant)', () => {
    const constant = new SimFleet(new SeededRandom(1), timing);
    for (let k = 0; k < 5; k++) assert.equal(constant.add(100, false).readyAt, 130);
    const spread = new SimFleet(new SeededRandom(1), { ...timing, coldStartCv: 0.3 });
    const starts = Array.from({ length: 2_000 }, () => spread.add(0, false).readyAt).sort((a, b) => a - b);
    const mean = starts.reduce((s, x) => s + x, 0) / starts.length;
    const sd = Math.sqrt(starts.reduce((s, x) => s + (x - mean) ** 2, 0) / starts.length);
    assert.ok(Math.abs(mean - 30) < 1, `mean ${mean}`);
    assert.ok(Math.abs(sd / mean - 0.3) < 0.04, `cv ${sd / mean}`);
    assert.ok((starts[100] as number) < 21 && (starts[1_900] as number) > 43, `${starts[100]}–${starts[1_900]}`);
  });

  it('starts at most maxParallelStarts replicas at once; the others wait for a slot', () => {
    const fleet = new SimFleet(new SeededRandom(1), { ...timing, maxParallelStarts: 2 });
    fleet.apply(0, { desiredReplicas: 5 });
    assert.deepEqual(
      fleet.instances.map((i) => i.readyAt),
      [30, 30, 60, 60, 90],
    );
  });

  it('bills a removed serving replica while it drains; a replica removed while starting stops at once', () => {
    const fleet = new SimFleet(new SeededRandom(1), { ...timing, drainS: 5 });
    for (let k = 0; k < 4; k++) fleet.add(0, true);
    fleet.apply(10, { desiredReplicas: 6 }); // two starting, ready at 40
    fleet.apply(20, { desiredReplicas: 2 }); // the two starting go first (newest), then two serving ones
    assert.equal(fleet.size, 2);
    assert.equal(fleet.billedAt(20), 4);
    assert.equal(fleet.billedAt(24), 4);
    assert.equal(fleet.billedAt(25), 2);
  });

  it('counts draining replicas in replica-seconds (drainMs)', () => {
    const trace = syntheticTrace('drop', 900, 1, (t) => (t < 60 ? 8 * 80 * 0.6 : 80 * 0.3));
    const policy = { maxReplicas: 20, targets: [{ metric: 'rps' as const, value: 56 }] };
    const at = (drainMs: number) =>
      simulate({ trace, policy, model: { initialReplicas: 8, drainMs, coldStartCv: 0, seed: 2 } });
    const none = at(0);
    const drained = at(20_000);
    assert.ok(none.summary.scaleDowns >= 1);
    assert.deepEqual(drained.events, none.events, 'draining does not change the decisions');
    const removed = none.events.reduce((n, e) => n + Math.max(0, e.from - e.to), 0);
    assert.equal(drained.summary.replicaSeconds - none.summary.replicaSeconds, removed * 20);
  });

  it('validates the new model options, naming them', () => {
    assert.equal(resolveModel().coldStartCv, 0.3);
    assert.equal(resolveModel().drainMs, 5000);
    assert.equal(resolveModel().maxParallelStarts, 0);
    assert.throws(() => resolveModel({ coldStartCv: -1 }), /model\.coldStartCv/);
    assert.throws(() => resolveModel({ drainMs: 1.5 }), /model\.drainMs/);
    assert.throws(() => resolveModel({ maxParallelStarts: -1 }), /model\.maxParallelStarts/);
  });
});
