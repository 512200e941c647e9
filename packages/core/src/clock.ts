/**
 * Time, injected. Every timer in Shoal goes through a `Clock` so tests can control it.
 *
 * `realClock` looks `Date.now`, `setTimeout` and `clearTimeout` up on `globalThis` at each call, so
 * `sinon.useFakeTimers()` installed after import still takes effect. `ManualClock` is a deterministic clock for
 * unit tests that do not want global fakes.
 */
export interface TimerHandle {
  /** Lets the process exit while the timer is pending (background timers always call this). */
  unref(): TimerHandle;
  ref(): TimerHandle;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** A monotonic reading in milliseconds, for measuring durations. */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

class RealTimer implements TimerHandle {
  constructor(readonly raw: ReturnType<typeof globalThis.setTimeout>) {}
  unref(): TimerHandle {
    const r = this.raw as { unref?: () => void };
    if (typeof r.unref === 'function') r.unref();
    return this;
  }
  ref(): TimerHandle {
    const r = this.raw as { ref?: () => void };
    if (typeof r.ref === 'function') r.ref();
    return this;
  }
}

export const realClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn: () => void, ms: number) => new RealTimer(globalThis.setTimeout(fn, Math.max(0, ms))),
  clearTimeout: (handle: TimerHandle | undefined) => {
    if (handle instanceof RealTimer) globalThis.clearTimeout(handle.raw);
  },
});

interface ManualTimer extends TimerHandle {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A clock that only moves when told to. `advance(ms)` fires every timer due in order, including timers scheduled
 * by callbacks that fall within the advanced span.
 */
export class ManualClock implements Clock {
  private current: number;
  private mono = 0;
  private nextId = 1;
  private timers: ManualTimer[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = {
      id: this.nextId++,
      at: this.current + Math.max(0, ms),
      fn,
      unref() {
        return timer;
      },
      ref() {
        return timer;
      },
    };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in time order (ties in scheduling order). */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance(ms) needs a finite ms >= 0, got ${ms}`);
    const target = this.current + ms;
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      }
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.mono += next.at - this.current;
      this.current = next.at;
      next.fn();
    }
    this.mono += target - this.current;
    this.current = target;
  }

  /** Like `advance`, but lets promise callbacks run between timers, for async code under test. */
  async advanceAsync(ms: number, stepMs = ms): Promise<void> {
    if (!(stepMs > 0)) throw new RangeError(`advanceAsync(stepMs) needs stepMs > 0, got ${stepMs}`);
    let left = ms;
    await flushPromises();
    while (left > 0) {
      const step = Math.min(stepMs, left);
      this.advance(step);
      left -= step;
      await flushPromises();
    }
  }

  /** Sets the wall-clock reading without firing timers (monotonic time is unaffected). */
  setNow(ms: number): void {
    this.current = ms;
  }
}

async function flushPromises(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Resolves after `ms` on `clock`; rejects with the signal's reason if aborted first. With `unref`, the pending
 * sleep does not keep the process alive (for background retry loops).
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal, unref = false): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (unref) handle.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
