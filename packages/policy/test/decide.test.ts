import assert from 'node:assert/strict';
import { decide, resolvePolicy } from '@shoal/policy';
import type { Decision, Observation, ObservedInstance, PolicyInput, PolicyState } from '@shoal/policy';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0); // a Monday, 12:00 UTC

function fleet(n: number, metrics: Record<string, number>, extra: Partial<ObservedInstance> = {}): ObservedInstance[] {
  return Array.from({ length: n }, (_, k) => ({ id: `i${k}`, ready: true, metrics: { ...metrics }, ...extra }));
}

function obs(
  now: number,
  current: number,
  instances: ObservedInstance[],
  metrics?: Record<string, number>,
): Observation {
  return { now, currentReplicas: current, instances, ...(metrics ? { metrics } : {}) };
}

/** Runs decisions every `stepMs`, applying each decision at once; `load(t)` gives per-instance metrics. */
function run(
  policyInput: PolicyInput,
  start: number,
  steps: number,
  stepMs: number,
  load: (t: number, replicas: number) => Record<string, number>,
): Decision[] {
  const policy = resolvePolicy(policyInput);
  let state: PolicyState | undefined;
  let replicas = Math.max(policy.minReplicas, 1);
  const out: Decision[] = [];
  for (let k = 0; k < steps; k++) {
    const t = start + k * stepMs;
    const d = decide(policy, obs(t, replicas, fleet(replicas, load(t, replicas))), state);
    out.push(d);
    state = d.state;
    replicas = d.desiredReplicas;
  }
  return out;
}

describe('decide', () => {
  describe('target tracking', () => {
    it('scales up to ceil(ready × current / target) on the HPA preset', () => {
      const d = decide(
        { preset: 'hpa', maxReplicas: 20 },
        obs(T0, 3, fleet(3, { eventLoopUtilization: 0.95 })),
        undefined,
      );
      assert.equal(d.desiredReplicas, 5); // ceil(3 × 0.95 / 0.7) = 5
      assert.equal(d.limitedBy, 'DesiredWithinRange');
      assert.match(d.reasons.join('\n'), /eventLoopUtilization average 0.95 \/ target 0.7 → 5/);
    });

    it('takes the maximum over several targets', () => {
      const policy: PolicyInput = {
        preset: 'hpa',
        maxReplicas: 50,
        targets: [
          { metric: 'eventLoopUtilization', value: 0.7 },
          { metric: 'inFlight', value: 10 },
          { metric: 'cpu', type: 'utilization', value: 60, request: 1 },
        ],
      };
      const d = decide(policy, obs(T0, 4, fleet(4, { eventLoopUtilization: 0.8, inFlight: 30, cpu: 0.9 })), undefined);
      assert.deepEqual(
        d.proposals.map((p) => [p.target, p.replicas]),
        [
          ['eventLoopUtilization', 5],
          ['inFlight', 12],
          ['cpu', 6],
        ],
      );
      assert.equal(d.desiredReplicas, 8); // 12 wanted; the default rate policy allows max(4 + 4, 8) = 8
      assert.equal(d.limitedBy, 'ScaleUpLimit');
    });

    it('does not scale down when one target has no metrics, but still scales up', () => {
      const policy: PolicyInput = {
        preset: 'hpa',
        maxReplicas: 50,
        behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
        targets: [
          { metric: 'eventLoopUtilization', value: 0.7 },
          { metric: 'queueDepth', value: 5 },
        ],
      };
      const down = decide(policy, obs(T0, 6, fleet(6, { eventLoopUtilization: 0.1 })), undefined);
      assert.equal(down.desiredReplicas, 6);
      assert.match(down.reasons.join('\n'), /1 target\(s\) failed: not scaling down/);
      const up = decide(policy, obs(T0, 6, fleet(6, { eventLoopUtilization: 1 })), undefined);
      assert.equal(up.desiredReplicas, 9);
    });

    it('adds scale-up headroom on the Shoal preset (5 % by default, none on HPA)', () => {
      // Panic off: a fresh state starts in panic, and panic sizes to the demand without headroom.
      const o = obs(T0, 10, fleet(10, { eventLoopUtilization: 0.84 }));
      assert.equal(decide({ maxReplicas: 50, panic: false }, o, undefined).desiredReplicas, 13); // ceil(12 × 1.05)
      assert.equal(decide({ maxReplicas: 50, panic: false, scaleUpHeadroom: 0.2 }, o, undefined).desiredReplicas, 15);
      assert.equal(decide({ maxReplicas: 50, panic: false, scaleUpHeadroom: 0 }, o, undefined).desiredReplicas, 12);
      assert.equal(decide({ maxReplicas: 50 }, o, undefined).desiredReplicas, 12); // fresh state: panic, no headroom
      assert.equal(decide({ preset: 'hpa', maxReplicas: 50 }, o, undefined).desiredReplicas, 12);
    });

    it('adds headroom to the unrounded demand, not to the rounded-up count', () => {
      // 1 replica at ELU 0.84 / target 0.7 = 1.2 replicas of demand → 2; 1.2 × 1.2 = 1.44 still fits in 2
      // (headroom on the count would have asked for ceil(2 × 1.2) = 3).
      const d = decide(
        { maxReplicas: 50, scaleUpHeadroom: 0.2 },
        obs(T0, 1, fleet(1, { eventLoopUtilization: 0.84 })),
        undefined,
      );
      assert.equal(d.desiredReplicas, 2);
      assert.doesNotMatch(d.reasons.join('\n'), /headroom/);
      // 3 replicas at 0.84 = 3.6 of demand → 4; 3.6 × 1.2 = 4.32 → 5.
      const e = decide(
        { maxReplicas: 50, scaleUpHeadroom: 0.2, panic: { onStart: false } },
        obs(T0, 3, fleet(3, { eventLoopUtilization: 0.84 })),
        undefined,
      );
      assert.equal(e.desiredReplicas, 5);
      assert.match(e.reasons.join('\n'), /headroom 20 % over 3\.6 replicas of demand: 4 → 5/);
    });

    it('keeps the count when no target has a usable metric', () => {
      const d = decide({}, obs(T0, 3, fleet(3, {})), undefined);
      assert.equal(d.desiredReplicas, 3);
      assert.match(d.reasons.join('\n'), /no usable metric/);
    });

    it('scales on a service-level total (queue depth per replica, HPA External AverageValue)', () => {
      const d = decide(
        { preset: 'hpa', maxReplicas: 40, targets: [{ metric: 'queueDepth', type: 'total', value: 100 }] },
        obs(T0, 2, fleet(2, {}), { queueDepth: 650 }),
        undefined,
      );
      assert.equal(d.desiredReplicas, 6); // ceil(650 / 100) = 7, rate-limited to max(2 + 4, 4) = 6
    });

    it('sums a per-instance metric for a total target when the service reports none', () => {
      const d = decide(
        { preset: 'hpa', maxReplicas: 40, targets: [{ metric: 'queueDepth', type: 'total', value: 100 }] },
        obs(T0, 3, fleet(3, { queueDepth: 150 })),
        undefined,
      );
      assert.equal(d.desiredReplicas, 5); // 450 / 100 → 5
    });

    it('ignores draining instances and counts pending ones as unready', () => {
      const instances = [
        ...fleet(2, { eventLoopUtilization: 0.9 }),
        { id: 'old', ready: true, deleting: true, metrics: { eventLoopUtilization: 0 } },
        { id: 'new', ready: false, phase: 'pending' as const, metrics: {} },
      ];
      const d = decide({ preset: 'hpa', maxReplicas: 10 }, obs(T0, 3, instances), undefined);
      // Ready ratio 0.9/0.7 > 1; the pending instance counts as 0: (1.8 + 0) / 3 = 0.6 < 0.7 → direction flips → keep 3.
      assert.equal(d.desiredReplicas, 3);
    });
  });

  describe('bounds and stabilization', () => {
    it('moves straight to the bounds when the current count is outside them', () => {
      assert.equal(decide({ minReplicas: 2, maxReplicas: 5 }, obs(T0, 9, fleet(9, {})), undefined).desiredReplicas, 5);
      assert.equal(decide({ minReplicas: 2, maxReplicas: 5 }, obs(T0, 1, fleet(1, {})), undefined).desiredReplicas, 2);
    });

    it('holds a scale-down for the 300 s window on the HPA preset, then drops', () => {
      const ds = run({ preset: 'hpa', maxReplicas: 20 }, T0, 40, 15_000, (t) =>
        t < T0 + 60_000 ? { eventLoopUtilization: 1.3 } : { eventLoopUtilization: 0.1 },
      );
      const replicas = ds.map((d) => d.desiredReplicas);
      const peak = Math.max(...replicas);
      const peakAt = replicas.indexOf(peak);
      const firstDrop = replicas.findIndex((r, k) => k > peakAt && r < peak);
      // The last high recommendation was at step 3 (t = 45 s); the drop may happen once it left the window.
      assert.ok(firstDrop * 15_000 > 45_000 + 300_000 - 15_000, `dropped at step ${firstDrop}: ${replicas.join(',')}`);
      assert.ok(
        ds
          .slice(peakAt, firstDrop)
          .every((d) => /scale-down stabilized/.test(d.reasons.join('\n')) || d.desiredReplicas === peak),
      );
    });

    it('never goes below minReplicas or above maxReplicas', () => {
      const ds = run({ minReplicas: 2, maxReplicas: 6 }, T0, 60, 5_000, (t) => ({
        eventLoopUtilization: t % 120_000 < 60_000 ? 1 : 0,
      }));
      for (const d of ds) assert.ok(d.desiredReplicas >= 2 && d.desiredReplicas <= 6);
      assert.ok(ds.some((d) => d.desiredReplicas === 6));
    });
  });

  describe('state', () => {
    it('is plain JSON, and a resumed engine decides exactly like an uninterrupted one', () => {
      const policy = resolvePolicy({ maxReplicas: 30 });
      const load = (k: number): number => 0.3 + 0.6 * Math.abs(Math.sin(k / 7));
      let a: PolicyState | undefined;
      let b: PolicyState | undefined;
      let ra = 3;
      let rb = 3;
      for (let k = 0; k < 80; k++) {
        const t = T0 + k * 5_000;
        const da = decide(policy, obs(t, ra, fleet(ra, { eventLoopUtilization: load(k) })), a);
        const db = decide(policy, obs(t, rb, fleet(rb, { eventLoopUtilization: load(k) })), b);
        a = da.state;
        b = JSON.parse(JSON.stringify(db.state)) as PolicyState; // persisted and read back every time
        assert.deepEqual(da.desiredReplicas, db.desiredReplicas);
        ra = da.desiredReplicas;
        rb = db.desiredReplicas;
      }
      assert.deepEqual(a, b);
    });

    it('does not change the state object it was given', () => {
      const first = decide({}, obs(T0, 3, fleet(3, { eventLoopUtilization: 0.9 })), undefined);
      const copy = JSON.parse(JSON.stringify(first.state)) as PolicyState;
      decide({}, obs(T0 + 5_000, 4, fleet(4, { eventLoopUtilization: 0.9 })), first.state);
      assert.deepEqual(first.state, copy);
    });

    it('keeps its history bounded', () => {
      const ds = run({ maxReplicas: 30 }, T0, 2_000, 2_000, (t) => ({
        eventLoopUtilization: 0.5 + 0.4 * Math.sin(t / 60_000),
      }));
      const s = (ds.at(-1) as Decision).state;
      assert.ok(s.recommendations.length <= 400_000 / 2_000 + 1, `recommendations ${s.recommendations.length}`);
      assert.ok(s.samples.length <= 31, `samples ${s.samples.length}`);
      assert.ok(s.scaleUpEvents.length + s.scaleDownEvents.length <= 30);
    });

    it('rejects time going backwards and a malformed state', () => {
      const d = decide({}, obs(T0, 3, fleet(3, { eventLoopUtilization: 0.5 })), undefined);
      assert.throws(
        () => decide({}, obs(T0 - 1, 3, fleet(3, {})), d.state),
        /observation.now must not go back in time/,
      );
      assert.throws(
        () => decide({}, obs(T0, 3, fleet(3, {})), { version: 2 } as never),
        /state.version must be 1, got 2/,
      );
      assert.throws(
        () => decide({}, obs(T0, 3, fleet(3, {})), { ...d.state, samples: [{ t: 'x' }] } as never),
        /state.samples\[0\] must be/,
      );
    });
  });

  describe('panic mode', () => {
    it('enters on a 2× spike, scales past the rate limit, never scales down while panicking, and leaves after the stable window', () => {
      const spikeEnd = T0 + 60_000;
      const ds = run({ maxReplicas: 100 }, T0, 60, 2_000, (t, replicas) => {
        // Total demand 40 replicas' worth during the spike, 2 replicas' worth after.
        const demand = t < spikeEnd ? 40 : 2;
        return { eventLoopUtilization: Math.min(5, (demand * 0.7) / replicas) };
      });
      const first = ds[0] as Decision;
      assert.equal(first.panicking, true);
      assert.match(first.reasons.join('\n'), /panic:/);
      // Rate policies would allow 1 → 5; panic goes further in one step.
      assert.ok(first.desiredReplicas > 5, `first decision ${first.desiredReplicas}`);
      const inPanicAfterSpike = ds.filter((d, k) => T0 + k * 2_000 >= spikeEnd && d.panicking);
      assert.ok(inPanicAfterSpike.length > 0);
      for (let k = 1; k < ds.length; k++) {
        const d = ds[k] as Decision;
        if (d.panicking)
          assert.ok(d.desiredReplicas >= (ds[k - 1] as Decision).desiredReplicas, `scaled down in panic at ${k}`);
      }
      const exit = ds.findIndex((d, k) => k > 0 && !d.panicking && (ds[k - 1] as Decision).panicking);
      assert.ok(exit > 0, 'panic ended');
      assert.match((ds[exit] as Decision).reasons.join('\n'), /panic over/);
    });

    it('while over the threshold, goes straight to the panic window average, not past it on one high report', () => {
      const policy = resolvePolicy({ maxReplicas: 100, targets: [{ metric: 'rps', value: 10 }] });
      const spike = decide(policy, obs(T0, 4, fleet(4, { rps: 50 })), undefined);
      assert.equal(spike.desiredReplicas, 20); // 200 req/s over 4 ready: over 2×, straight to 20
      // 5 s later the 16 new instances are still starting (no metrics) and the 4 ready ones report 55 req/s:
      // one report asks for 22, the panic window (6 s: both reports) averages 21. Still over (21 / 4 ready).
      const starting: ObservedInstance[] = Array.from({ length: 16 }, (_, k) => ({
        id: `s${k}`,
        ready: false,
        metrics: {},
      }));
      const next = decide(policy, obs(T0 + 5_000, 20, [...fleet(4, { rps: 55 }), ...starting]), spike.state);
      assert.equal(next.panicking, true);
      assert.equal(next.recommendation, 22);
      assert.equal(next.desiredReplicas, 21);
    });

    it('filters scale-ups through the scale-up window in the panic hold phase (demand no longer over the threshold)', () => {
      const policy = resolvePolicy({ maxReplicas: 100, targets: [{ metric: 'rps', value: 10 }] });
      const at = (k: number, n: number, rps: number, prev: PolicyState | undefined): Decision =>
        decide(policy, obs(T0 + k * 5_000, n, fleet(n, { rps })), prev);
      // 4 ready at 5× the target: over the 2× threshold, so straight to 20 (no window, no rate limit).
      const spike = at(0, 4, 50, undefined);
      assert.equal(spike.desiredReplicas, 20);
      const settled = at(1, 20, 10, spike.state);
      assert.equal(settled.desiredReplicas, 20);
      // One report 10 % high (a backlog draining on fresh replicas): still panicking, but no longer over the
      // threshold, so it goes through the 10 s scale-up window like any other scale-up, and the panic's floor is
      // the 20 it decided, not the inflated demand.
      const glitch = at(2, 20, 11, settled.state);
      assert.equal(glitch.panicking, true);
      assert.equal(glitch.desiredReplicas, 20);
      assert.match(glitch.reasons.join('\n'), /scale-up stabilized at 20 \(min over 10 s\)/);
      const back = at(3, 20, 10, glitch.state);
      assert.equal(back.desiredReplicas, 20);
      // A rise that lasts the window (two decisions 5 s apart) is taken.
      const r1 = at(4, 20, 11, back.state);
      const r2 = at(5, 20, 11, r1.state);
      assert.deepEqual([r1.desiredReplicas, r2.desiredReplicas], [20, 22]);
      assert.equal(r2.panicking, true);
    });

    it('starts in panic on a fresh state with more than one ready instance, so the first data cannot scale down', () => {
      // 6 ready instances nearly idle: the demand (1 replica) would scale down at once without a history.
      const idle = fleet(6, { eventLoopUtilization: 0.05 });
      const first = decide({ maxReplicas: 20 }, obs(T0, 6, idle), undefined);
      assert.equal(first.panicking, true);
      assert.equal(first.desiredReplicas, 6);
      assert.match(first.reasons.join('\n'), /panic: fresh state with 6 ready instances/);
      // It ends like any panic: after the stable window (60 s) with demand below the threshold...
      let state = first.state;
      let d = first;
      for (let t = T0 + 5_000; t <= T0 + 60_000; t += 5_000) {
        d = decide({ maxReplicas: 20 }, obs(t, 6, idle), state);
        state = d.state;
        assert.equal(d.desiredReplicas, 6, `scaled down at +${t - T0} ms`);
      }
      assert.equal(d.panicking, false);
      assert.match(d.reasons.join('\n'), /panic over/);
      // ...and the scale-down window then remembers the panic's recommendations (no scale-down for its 400 s).
      d = decide({ maxReplicas: 20 }, obs(T0 + 65_000, 6, idle), state);
      assert.equal(d.desiredReplicas, 6);
      d = decide({ maxReplicas: 20 }, obs(T0 + 60_000 + 401_000, 6, idle), d.state);
      assert.equal(d.desiredReplicas, 1);
    });

    it('does not start in panic with onStart: false, with one ready instance, on the HPA preset, or on a resumed state', () => {
      const idle = fleet(6, { eventLoopUtilization: 0.05 });
      const off = decide({ maxReplicas: 20, panic: { onStart: false } }, obs(T0, 6, idle), undefined);
      assert.equal(off.panicking, false);
      assert.equal(off.desiredReplicas, 1);
      const one = decide({ maxReplicas: 20 }, obs(T0, 1, fleet(1, { eventLoopUtilization: 0.05 })), undefined);
      assert.equal(one.panicking, false);
      const hpa = decide({ preset: 'hpa', maxReplicas: 20 }, obs(T0, 6, idle), undefined);
      assert.equal(hpa.panicking, false);
      assert.equal(hpa.desiredReplicas, 1); // Kubernetes scales down on its first reconcile
      // A state with history (persisted by the coordinator) resumes without a new panic.
      const busy = decide(
        { maxReplicas: 20, panic: { onStart: false } },
        obs(T0, 6, fleet(6, { eventLoopUtilization: 0.6 })),
        undefined,
      );
      const resumed = decide(
        { maxReplicas: 20 },
        obs(T0 + 5_000, 6, fleet(6, { eventLoopUtilization: 0.6 })),
        busy.state,
      );
      assert.equal(resumed.panicking, false);
      assert.throws(() => resolvePolicy({ panic: { onStart: 'yes' as never } }), /panic.onStart must be a boolean/);
    });

    it('stays off on the HPA preset', () => {
      const ds = run({ preset: 'hpa', maxReplicas: 100 }, T0, 3, 15_000, () => ({ eventLoopUtilization: 5 }));
      assert.ok(ds.every((d) => !d.panicking));
      assert.deepEqual(
        ds.map((d) => d.desiredReplicas),
        [5, 10, 20],
      );
    });
  });

  describe('schedules', () => {
    const policy: PolicyInput = {
      maxReplicas: 20,
      schedules: [{ name: 'lunch', cron: '0 12 * * 1-5', minReplicas: 8, durationMs: 3_600_000, leadMs: 300_000 }],
    };

    it('raises the minimum during the window, from leadMs before it', () => {
      const quiet = { eventLoopUtilization: 0.1 };
      const before = decide(policy, obs(T0 - 400_000, 2, fleet(2, quiet)), undefined);
      assert.equal(before.minReplicas, 1);
      const lead = decide(policy, obs(T0 - 200_000, 2, fleet(2, quiet)), undefined);
      assert.equal(lead.desiredReplicas, 8);
      assert.match(lead.reasons.join('\n'), /schedule lunch \(0 12 \* \* 1-5\) active: minimum 8 replicas/);
      const during = decide(policy, obs(T0 + 3_000_000, 8, fleet(8, quiet)), undefined);
      assert.equal(during.desiredReplicas, 8);
      assert.equal(during.minReplicas, 8);
      const after = decide(policy, obs(T0 + 3_700_000, 8, fleet(8, quiet)), undefined);
      assert.equal(after.minReplicas, 1);
    });

    it('evaluates in the time zone of the schedule, across daylight-saving time', () => {
      const berlin: PolicyInput = {
        maxReplicas: 20,
        schedules: [{ name: 'opening', cron: '0 9 * * 1-5', minReplicas: 6, timeZone: 'Europe/Berlin' }],
      };
      const quiet = fleet(2, { eventLoopUtilization: 0.1 });
      // Monday 5 January 2026, 09:10 CET = 08:10 UTC; Monday 6 July 2026, 09:10 CEST = 07:10 UTC.
      assert.equal(decide(berlin, obs(Date.UTC(2026, 0, 5, 8, 10), 2, quiet), undefined).minReplicas, 6);
      assert.equal(decide(berlin, obs(Date.UTC(2026, 0, 5, 7, 10), 2, quiet), undefined).minReplicas, 1);
      assert.equal(decide(berlin, obs(Date.UTC(2026, 6, 6, 7, 10), 2, quiet), undefined).minReplicas, 6);
      // 08:10 UTC in July is 10:10 CEST: the one-hour window is over (it would be 09:10 at a fixed +1 h).
      assert.equal(decide(berlin, obs(Date.UTC(2026, 6, 6, 8, 10), 2, quiet), undefined).minReplicas, 1);
    });

    it('does not apply on other days', () => {
      const saturday = Date.UTC(2026, 0, 10, 12, 10);
      assert.equal(decide(policy, obs(saturday, 2, fleet(2, { eventLoopUtilization: 0.1 })), undefined).minReplicas, 1);
    });
  });

  describe('forecast', () => {
    it('scales ahead of a steady ramp, and only upwards', () => {
      const ramp = (t: number, replicas: number): Record<string, number> => {
        const demand = 2 + ((t - T0) / 1000) * 0.1; // +1 replica of demand every 10 s
        return { eventLoopUtilization: (demand * 0.7) / replicas };
      };
      const withForecast = run({ maxReplicas: 100, panic: false, forecast: true }, T0, 60, 5_000, ramp);
      const without = run({ maxReplicas: 100, panic: false, forecast: false }, T0, 60, 5_000, ramp);
      const sum = (ds: Decision[]): number => ds.reduce((s, d) => s + d.desiredReplicas, 0);
      assert.ok(sum(withForecast) > sum(without), `${sum(withForecast)} vs ${sum(without)}`);
      assert.ok(withForecast.some((d) => /forecast: demand/.test(d.reasons.join('\n'))));
    });
  });

  describe('latency SLO', () => {
    const policy: PolicyInput = {
      preset: 'hpa',
      maxReplicas: 40,
      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
      slo: { thresholdMs: 200 },
    };

    it('adds pressure above the bound', () => {
      const d = decide(policy, obs(T0, 4, fleet(4, { eventLoopUtilization: 0.7, latencyP95Ms: 300 })), undefined);
      assert.equal(d.desiredReplicas, 6); // ceil(4 × 1.5)
      assert.match(d.reasons.join('\n'), /SLO latencyP95Ms 300 ms above 200 ms → 6/);
    });

    it('blocks scale-down near the bound and allows it well below', () => {
      const near = decide(policy, obs(T0, 6, fleet(6, { eventLoopUtilization: 0.2, latencyP95Ms: 180 })), undefined);
      assert.equal(near.desiredReplicas, 6);
      const far = decide(policy, obs(T0, 6, fleet(6, { eventLoopUtilization: 0.2, latencyP95Ms: 50 })), undefined);
      assert.equal(far.desiredReplicas, 2);
    });
  });

  describe('victims', () => {
    const down: PolicyInput = { preset: 'hpa', behavior: { scaleDown: { stabilizationWindowSeconds: 0 } } };
    const instances: ObservedInstance[] = [
      { id: 'a', ready: true, startedAt: T0 - 9_000, metrics: { eventLoopUtilization: 0.3 } },
      { id: 'b', ready: true, startedAt: T0 - 5_000, metrics: { eventLoopUtilization: 0.1 } },
      { id: 'c', ready: true, startedAt: T0 - 1_000, metrics: { eventLoopUtilization: 0.2 } },
      { id: 'd', ready: true, startedAt: T0 - 7_000, metrics: { eventLoopUtilization: 0.2 } },
    ];

    it('drains the least loaded first (ties: the youngest)', () => {
      const d = decide(down, obs(T0, 4, instances), undefined);
      assert.equal(d.desiredReplicas, 2); // 0.8 / 0.7 → 2
      assert.deepEqual(d.victims, ['b', 'c']);
    });

    it('drains the youngest, the oldest, or an explicit order', () => {
      assert.deepEqual(decide({ ...down, victimSelection: 'youngest' }, obs(T0, 4, instances), undefined).victims, [
        'c',
        'b',
      ]);
      assert.deepEqual(decide({ ...down, victimSelection: 'oldest' }, obs(T0, 4, instances), undefined).victims, [
        'a',
        'd',
      ]);
      assert.deepEqual(
        decide({ ...down, victimSelection: { order: ['d', 'a'] } }, obs(T0, 4, instances), undefined).victims,
        ['d', 'a'],
      );
    });

    it('drains instances that serve nothing before any ready one', () => {
      const withBroken = [...instances.slice(0, 3), { id: 'z', ready: false, metrics: { eventLoopUtilization: 0.2 } }];
      const d = decide(
        { ...down, targets: [{ metric: 'eventLoopUtilization', value: 0.7 }] },
        obs(T0, 4, withBroken),
        undefined,
      );
      assert.equal(d.victims?.[0], 'z');
    });
  });

  describe('validation', () => {
    it('rejects unknown options and bad values, naming them', () => {
      assert.throws(() => resolvePolicy({ minReplica: 1 } as never), /unknown option "minReplica"/);
      assert.throws(
        () => resolvePolicy({ minReplicas: 5, maxReplicas: 2 }),
        /minReplicas must not exceed maxReplicas \(2\), got 5/,
      );
      assert.throws(
        () => resolvePolicy({ targets: [{ metric: 'cpu', value: -1 }] }),
        /targets\[0\].value must be a finite number > 0, got -1/,
      );
      assert.throws(
        () => resolvePolicy({ schedules: [{ cron: '61 * * * *', minReplicas: 1 }] }),
        /schedules\[0\].cron has an invalid minute field/,
      );
      assert.throws(
        () => resolvePolicy({ panic: { threshold: 0 } }),
        /panic.threshold must be a finite number > 0, got 0/,
      );
      assert.throws(
        () => decide({}, { now: T0, currentReplicas: -2, instances: [] }, undefined),
        /observation.currentReplicas/,
      );
    });

    it('is deterministic: the same input gives the same decision', () => {
      const o = obs(T0, 5, fleet(5, { eventLoopUtilization: 0.93, latencyP95Ms: 120 }));
      assert.deepEqual(
        decide({ slo: { thresholdMs: 100 } }, o, undefined),
        decide({ slo: { thresholdMs: 100 } }, o, undefined),
      );
    });
  });
});
