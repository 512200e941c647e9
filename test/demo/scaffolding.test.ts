import assert from 'node:assert/strict';
import sinon from 'sinon';
import { renderChart, niceMax, escapeXml } from '../../examples/demo/src/chart.js';
import { LoadGenerator } from '../../examples/demo/src/load-generator.js';
import { parseDemoArgs, UsageError } from '../../examples/demo/src/options.js';
import { Recorder, quantile } from '../../examples/demo/src/recorder.js';
import { Scenario } from '../../examples/demo/src/scenario.js';
import { formatSummary, summarize } from '../../examples/demo/src/summary.js';
import { TerminalView, clip } from '../../examples/demo/src/terminal-view.js';
import { WorkSimulator } from '../../examples/demo/src/work-simulator.js';

describe('demo: scenario', () => {
  const scenario = new Scenario({ durationMs: 100_000, baseRps: 20, peakRps: 200 });

  it('ramps up, holds, falls and cools down over the whole duration', () => {
    assert.deepEqual(
      scenario.phases.map((p) => [p.name, p.startMs, p.endMs]),
      [
        ['warm-up', 0, 8000],
        ['ramp-up', 8000, 25_000],
        ['hold', 25_000, 50_000],
        ['ramp-down', 50_000, 60_000],
        ['cool-down', 60_000, 100_000],
      ],
    );
    assert.equal(scenario.rateAt(0), 20);
    assert.equal(scenario.rateAt(16_500), 110);
    assert.equal(scenario.rateAt(30_000), 200);
    assert.equal(scenario.rateAt(55_000), 110);
    assert.equal(scenario.rateAt(99_000), 20);
    assert.equal(scenario.rateAt(150_000), 20);
    assert.equal(scenario.phaseAt(150_000).name, 'cool-down');
    assert.equal(scenario.progress(50_000), 0.5);
  });

  it('rejects nonsense with the option and the value', () => {
    assert.throws(() => new Scenario({ durationMs: -1, baseRps: 1, peakRps: 2 }), /durationMs .* got -1/);
    assert.throws(() => new Scenario({ durationMs: 1, baseRps: 5, peakRps: 2 }), /peakRps .* got 2/);
  });
});

describe('demo: options', () => {
  it('defaults to a 150 s run, 45 s with --fast', () => {
    assert.equal(parseDemoArgs([]).durationMs, 150_000);
    assert.equal(parseDemoArgs(['--fast']).durationMs, 45_000);
    assert.equal(parseDemoArgs(['--fast', '--duration', '30']).durationMs, 30_000);
    assert.equal(parseDemoArgs(['--out', 'x.svg', '--json']).out, 'x.svg');
  });

  it('refuses a run longer than 3 minutes and unknown flags', () => {
    assert.throws(() => parseDemoArgs(['--duration', '200']), UsageError);
    assert.throws(() => parseDemoArgs(['--duration', 'soon']), /--duration must be a positive number, got "soon"/);
    assert.throws(() => parseDemoArgs(['--bogus']), UsageError);
    assert.throws(() => parseDemoArgs(['--peak-rps', '5', '--base-rps', '10']), /--peak-rps \(5\)/);
  });
});

describe('demo: recorder and summary', () => {
  it('takes nearest-rank quantiles', () => {
    assert.equal(quantile([], 0.5), undefined);
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
    assert.equal(
      quantile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.99,
      ),
      99,
    );
  });

  it('summarizes a run: peak, times to scale, failures', () => {
    const scenario = new Scenario({ durationMs: 10_000, baseRps: 1, peakRps: 2 });
    const recorder = new Recorder();
    const replicasAt = [1, 1, 2, 4, 5, 5, 5, 3, 1, 1];
    replicasAt.forEach((replicas, i) => {
      recorder.recordSuccess(10 + i);
      if (i === 6) recorder.recordFailure('grpc-status-14', 'unavailable');
      recorder.tick({
        tMs: (i + 1) * 1000,
        phase: scenario.phaseAt(i * 1000).name,
        targetRps: 1,
        replicas,
        desired: replicas,
      });
    });
    recorder.recordDecision({ tMs: 2500, from: 1, to: 5, reasons: ['inFlight 10 > 2'] });
    recorder.recordDecision({ tMs: 7500, from: 5, to: 1, reasons: ['inFlight 0.2 < 2'] });
    const s = summarize(recorder, scenario, { completed: true, chartPath: 'x.svg', replicaPids: [] });
    assert.equal(s.peakReplicas, 5);
    assert.equal(s.startReplicas, 1);
    assert.equal(s.finalReplicas, 1);
    assert.equal(s.timeToScaleUpMs, 5000 - scenario.phase('ramp-up').startMs);
    assert.equal(s.timeToScaleDownMs, 9000 - scenario.phase('ramp-down').endMs);
    assert.ok(s.scaledUp && s.scaledDown);
    assert.equal(s.failedRequests, 1);
    assert.deepEqual(s.failures, { 'grpc-status-14': 1 });
    assert.equal(s.scaleUpDecisions, 1);
    assert.equal(s.scaleDownDecisions, 1);
    const text = formatSummary(s).join('\n');
    assert.match(text, /1 → peak 5 → 1/);
    assert.match(text, /failed requests {3}1 \(expected 0\): grpc-status-14×1/);
  });
});

describe('demo: chart', () => {
  it('draws every series, phase and decision as well-formed SVG', () => {
    const scenario = new Scenario({ durationMs: 4000, baseRps: 1, peakRps: 2 });
    const recorder = new Recorder();
    for (let i = 1; i <= 4; i++) {
      recorder.recordSuccess(5 * i);
      recorder.tick({ tMs: i * 1000, phase: 'hold', targetRps: 10, replicas: i, desired: i });
    }
    recorder.recordDecision({ tMs: 1500, from: 1, to: 4, reasons: ['a < b & "c"'] });
    const svg = renderChart({
      title: 'demo <run>',
      samples: recorder.samples,
      decisions: recorder.decisions,
      phases: scenario.phases,
      durationMs: 4000,
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 6);
    assert.match(svg, /demo &lt;run&gt;/);
    assert.match(svg, /a &lt; b &amp; &quot;c&quot;/);
    assert.ok(!/NaN|undefined|Infinity/.test(svg), 'no NaN/undefined/Infinity in coordinates');
    const opened = (svg.match(/<(g|svg|title|text)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(g|svg|title|text)>/g) ?? []).length;
    assert.equal(opened, closed);
  });

  it('picks readable axis maxima', () => {
    assert.equal(niceMax(201), 250);
    assert.equal(niceMax(7), 8);
    assert.equal(niceMax(0), 1);
    assert.equal(escapeXml(`<'&">`), '&lt;&apos;&amp;&quot;&gt;');
  });
});

describe('demo: terminal view', () => {
  const scenario = new Scenario({ durationMs: 10_000, baseRps: 1, peakRps: 2 });
  const sample = {
    tMs: 1000,
    phase: 'hold' as const,
    targetRps: 100,
    rps: 99,
    p50Ms: 50,
    p99Ms: 80,
    errors: 0,
    replicas: 3,
    desired: 4,
  };

  it('prints plain lines, and each decision once, when not a TTY', () => {
    let out = '';
    const view = new TerminalView({ write: (c: string) => (out += c) }, { tty: false });
    const decisions = [{ tMs: 900, from: 1, to: 4, reasons: ['inFlight 8 > target 2'] }];
    const state = { elapsedMs: 1000, scenario, sample, decisions, failedTotal: 0, requestsTotal: 99 };
    view.update(state);
    view.update({ ...state, elapsedMs: 2000 });
    view.close();
    assert.ok(!out.includes('\x1b'), 'no escape codes');
    assert.equal((out.match(/decision ▲/g) ?? []).length, 1);
    assert.match(out, /replicas 3 \(desired 4\)/);
    assert.equal(out.trim().split('\n').length, 3);
  });

  it('redraws in place on a TTY and restores the cursor', () => {
    let out = '';
    const view = new TerminalView({ write: (c: string) => (out += c) }, { tty: true, columns: 80 });
    const state = { elapsedMs: 1000, scenario, sample, decisions: [], failedTotal: 0, requestsTotal: 1 };
    view.update(state);
    const firstFrameLines = out.split('\n').length - 1;
    view.update(state);
    view.close();
    assert.ok(out.startsWith('\x1b[?25l'));
    assert.ok(out.includes(`\x1b[${firstFrameLines}F\x1b[0J`), 'moves up over the previous frame and clears it');
    assert.ok(out.endsWith('\x1b[?25h'));
    assert.equal(clip('\x1b[1mabcdef\x1b[0m', 4), '\x1b[1mabc…\x1b[0m');
  });
});

describe('demo: load generator and work simulator', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  it('offers the scenario rate open-loop and reports every outcome', async () => {
    let ok = 0;
    let failed = 0;
    let n = 0;
    let maxOutstanding = 0;
    const generator = new LoadGenerator({
      rateAt: (ms) => (ms < 500 ? 200 : 0),
      call: async () => {
        maxOutstanding = Math.max(maxOutstanding, generator.inFlight);
        if (++n % 10 === 0) throw Object.assign(new Error('boom'), { code: 14 });
        await new Promise((resolve) => setTimeout(resolve, 50));
      },
      onSuccess: () => ok++,
      onFailure: (kind) => {
        assert.equal(kind, 'grpc-status-14');
        failed++;
      },
    });
    generator.start();
    await clock.tickAsync(1000);
    const stopped = generator.stop();
    await clock.tickAsync(100);
    await stopped;
    assert.equal(generator.inFlight, 0);
    assert.equal(ok + failed, 100, '200/s for 0.5 s');
    assert.equal(failed, 10);
    // Open loop: calls pile up while earlier ones are still running (200/s × 50 ms ≈ 10 at once).
    assert.ok(maxOutstanding >= 9, `max outstanding ${maxOutstanding}`);
  });

  it('counts calls beyond maxOutstanding as failed instead of starting them', async () => {
    const failures: string[] = [];
    const generator = new LoadGenerator({
      rateAt: () => 100,
      call: () => new Promise(() => {}),
      onSuccess: () => {},
      onFailure: (kind) => failures.push(kind),
      maxOutstanding: 5,
    });
    generator.start();
    await clock.tickAsync(100);
    assert.equal(generator.inFlight, 5);
    assert.deepEqual(failures, [
      'CLIENT_OVERLOAD',
      'CLIENT_OVERLOAD',
      'CLIENT_OVERLOAD',
      'CLIENT_OVERLOAD',
      'CLIENT_OVERLOAD',
    ]);
  });

  it('queues calls beyond its slots', async () => {
    const work = new WorkSimulator({ slots: 2, serviceTimeMs: 20, jitter: 0 });
    const done: number[] = [];
    const runs = [0, 1, 2, 3].map((i) => work.run().then(() => done.push(i)));
    assert.equal(work.load, 4);
    await clock.tickAsync(20);
    assert.deepEqual(done, [0, 1]);
    await clock.tickAsync(20);
    await Promise.all(runs);
    assert.deepEqual(done, [0, 1, 2, 3]);
    assert.equal(work.load, 0);
  });
});
