import assert from 'node:assert/strict';
import { ManualClock } from '@shoal/core';
import { LATENCY_BUCKET_COUNT, latencyBucketIndex } from '@shoal/protocol';
import { LoadTracker } from '../src/load-tracker.js';

describe('LoadTracker', () => {
  it('reports the time-weighted mean in flight, so bursts between reports are not missed', () => {
    const clock = new ManualClock();
    const tracker = new LoadTracker(clock);
    // A burst of 4 requests for 250 ms out of a 1 s interval: none is in flight when the report is taken.
    const starts = [tracker.begin(), tracker.begin(), tracker.begin(), tracker.begin()];
    clock.advance(250);
    for (const s of starts) tracker.end(s, false);
    clock.advance(750);
    const first = tracker.takeInterval();
    assert.equal(tracker.inFlight, 0);
    assert.equal(first.inFlightAvg, 1); // 4 × 250 ms / 1000 ms
    // One request held across the whole next interval counts as 1, though it has not finished.
    const held = tracker.begin();
    clock.advance(500);
    assert.equal(tracker.takeInterval().inFlightAvg, 1);
    clock.advance(500);
    tracker.end(held, false);
    assert.equal(tracker.takeInterval().inFlightAvg, 1);
  });

  it('counts in-flight, requests, errors and per-bucket latency for one interval at a time', () => {
    const clock = new ManualClock();
    const tracker = new LoadTracker(clock);
    const a = tracker.begin();
    clock.advance(3);
    const b = tracker.begin();
    assert.equal(tracker.inFlight, 2);
    clock.advance(20);
    tracker.end(a, false); // 23 ms
    tracker.end(b, true); // 20 ms
    assert.equal(tracker.inFlight, 0);
    const load = tracker.takeInterval();
    assert.equal(load.requests, 2);
    assert.equal(load.errors, 1);
    assert.equal(load.latencyBuckets.length, LATENCY_BUCKET_COUNT);
    assert.equal(load.latencyBuckets[latencyBucketIndex(23)], 2);
    assert.ok(load.latencyP99Ms! > 10 && load.latencyP99Ms! <= 25);
    const totals = tracker.totals();
    assert.equal(totals.requests, 2);
    assert.equal(totals.errors, 1);
    assert.equal(totals.sumMs, 43);
    const empty = tracker.takeInterval();
    assert.equal(empty.requests, 0);
    assert.equal(empty.latencyP50Ms, undefined);
  });

  it('resolves whenIdle when the last request ends', async () => {
    const tracker = new LoadTracker(new ManualClock());
    await tracker.whenIdle();
    const start = tracker.begin();
    let idle = false;
    const waiting = tracker.whenIdle().then(() => (idle = true));
    await Promise.resolve();
    assert.equal(idle, false);
    tracker.end(start, false);
    await waiting;
    assert.equal(idle, true);
  });
});
