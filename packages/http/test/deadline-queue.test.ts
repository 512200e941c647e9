import assert from 'node:assert/strict';
import { ManualClock } from '@shoal/core';
import { DeadlineEntry, DeadlineQueue } from '@shoal/http/internal';

class Entry extends DeadlineEntry {
  fired = 0;
  constructor(
    readonly name: string,
    private readonly log: string[],
  ) {
    super();
  }
  onDeadline(): void {
    this.fired++;
    this.log.push(this.name);
  }
}

describe('DeadlineQueue', () => {
  let clock: ManualClock;
  let log: string[];
  beforeEach(() => {
    clock = new ManualClock();
    log = [];
  });

  it('fires each entry once, in the order added, after its duration', () => {
    const q = new DeadlineQueue(clock, 100);
    const a = new Entry('a', log);
    const b = new Entry('b', log);
    q.add(a, clock.monotonic());
    clock.advance(40);
    q.add(b, clock.monotonic());
    clock.advance(59);
    assert.deepEqual(log, []);
    clock.advance(1);
    assert.deepEqual(log, ['a']);
    clock.advance(40);
    assert.deepEqual(log, ['a', 'b']);
    clock.advance(1000);
    assert.equal(a.fired + b.fired, 2);
    assert.equal(q.size, 0);
  });

  it('never fires a removed entry, and keeps serving the ones after it with one timer', () => {
    const q = new DeadlineQueue(clock, 100);
    const entries = ['a', 'b', 'c'].map((n) => new Entry(n, log));
    for (const e of entries) q.add(e, clock.monotonic());
    q.remove(entries[0]!);
    q.remove(entries[2]!);
    assert.equal(clock.pending, 1, 'one timer for the whole queue');
    clock.advance(100);
    assert.deepEqual(log, ['b']);
    assert.equal(clock.pending, 0, 'no timer left once the queue is empty');
  });

  it('re-adding an entry moves its deadline; close() drops everything', () => {
    const q = new DeadlineQueue(clock, 100);
    const a = new Entry('a', log);
    q.add(a, clock.monotonic());
    clock.advance(90);
    q.add(a, clock.monotonic());
    clock.advance(20);
    assert.deepEqual(log, []);
    clock.advance(80);
    assert.deepEqual(log, ['a']);
    q.add(new Entry('b', log), clock.monotonic());
    q.close();
    clock.advance(1000);
    assert.deepEqual(log, ['a']);
    assert.equal(clock.pending, 0);
  });

  it('fires late (the caller stalled) only after a turn of the loop, so answers already read come first', () => {
    // A clock whose timers run when the test says, however late.
    let now = 0;
    const timers: Array<{ fn: () => void; at: number }> = [];
    const stallClock = {
      now: () => now,
      monotonic: () => now,
      setTimeout: (fn: () => void, ms: number) => {
        const t = { fn, at: now + ms };
        timers.push(t);
        return { unref: () => t, ref: () => t } as unknown as ReturnType<ManualClock['setTimeout']>;
      },
      clearTimeout: () => undefined,
    };
    const runDue = () => {
      for (const t of timers.splice(0).sort((a, b) => a.at - b.at)) t.fn();
    };
    const q = new DeadlineQueue(stallClock as unknown as ManualClock, 100);
    const a = new Entry('a', log);
    q.add(a, 0);
    now = 100; // on time: fires at once
    runDue();
    assert.deepEqual(log, ['a']);
    const b = new Entry('b', log);
    q.add(b, now);
    now = 900; // 700 ms late: the loop stalled
    runDue();
    assert.deepEqual(log, ['a'], 'not yet: put off by one turn');
    assert.equal(timers.length, 1);
    assert.equal(timers[0]!.at, now, 'a 0 ms timer');
    runDue();
    assert.deepEqual(log, ['a', 'b']);
  });
});
