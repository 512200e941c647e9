import assert from 'node:assert/strict';
import { renderSimulationSvg, simulate, syntheticTrace } from '@shoal/policy';

describe('renderSimulationSvg', () => {
  it('draws load, capacity, replicas and latency for each run, with the SLO and a summary', () => {
    const trace = syntheticTrace('a <wave> & more', 1_200, 10, (t) => 300 + 250 * Math.sin(t / 150));
    const a = simulate({ trace, policy: { maxReplicas: 30 }, model: { syncPeriodMs: 5_000 } });
    const b = simulate({ trace, policy: { preset: 'hpa', maxReplicas: 30 }, model: { syncPeriodMs: 15_000 } });
    const svg = renderSimulationSvg([a, b], { labels: ['Shoal', 'HPA'] });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>$/);
    assert.match(svg, /a &lt;wave&gt; &amp; more/);
    assert.equal((svg.match(/stroke="#059669"/g) ?? []).length, 2); // a capacity line per run
    assert.equal((svg.match(/stroke="#d97706"/g) ?? []).length, 2); // a replicas line per run
    assert.equal((svg.match(/stroke="#7c3aed"/g) ?? []).length, 2); // a latency line per run
    assert.match(svg, />Shoal</);
    assert.match(svg, />HPA</);
    assert.match(svg, /replica-hours [\d.]+ · SLO-violation \d+ s/);
    assert.match(svg, /250 ms/);
    assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  });
});
