import type { Clock, TimerHandle } from '@shoal/core';

/** The longest delay `setTimeout` honours: longer ones (about 24.8 days and up) fire after 1 ms in Node. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer longer than `MAX_TIMER_MS`: armed in steps of at most that, re-armed until its deadline. */
class LongTimer implements TimerHandle {
  private inner: TimerHandle | undefined;
  private referenced = true;
  private cancelled = false;
  private readonly deadline: number;

  constructor(
    private readonly clock: Clock,
    private readonly fn: () => void,
    delayMs: number,
  ) {
    this.deadline = clock.monotonic() + delayMs;
    this.arm();
  }

  private arm(): void {
    if (this.cancelled) return;
    const left = this.deadline - this.clock.monotonic();
    this.inner = this.clock.setTimeout(
      () => {
        this.inner = undefined;
        if (this.cancelled) return;
        if (this.deadline - this.clock.monotonic() <= 0) this.fn();
        else this.arm();
      },
      Math.max(0, Math.min(left, MAX_TIMER_MS)),
    );
    if (!this.referenced) this.inner.unref();
  }

  cancel(): void {
    this.cancelled = true;
    this.clock.clearTimeout(this.inner);
    this.inner = undefined;
  }

  unref(): TimerHandle {
    this.referenced = false;
    this.inner?.unref();
    return this;
  }

  ref(): TimerHandle {
    this.referenced = true;
    this.inner?.ref();
    return this;
  }
}

/**
 * `clock` with timers that cannot overflow: a delay past `MAX_TIMER_MS` (a check TTL of `600h`, an interval of
 * `1000h`) is honoured by re-arming, where a plain `setTimeout` would fire at once. A non-finite or negative delay
 * is 0, except +Infinity, which never fires. consul-dev wraps its clock with this once, so every TTL, interval and
 * wait in it is safe.
 */
export function overflowSafeClock(clock: Clock): Clock {
  return {
    now: () => clock.now(),
    monotonic: () => clock.monotonic(),
    setTimeout(fn: () => void, ms: number): TimerHandle {
      const delay = ms > 0 ? ms : 0; // NaN and negatives: 0
      if (delay <= MAX_TIMER_MS) return clock.setTimeout(fn, delay);
      return new LongTimer(clock, fn, delay);
    },
    clearTimeout(handle: TimerHandle | undefined): void {
      if (handle instanceof LongTimer) handle.cancel();
      else clock.clearTimeout(handle);
    },
  };
}
