/**
 * The raft-index stand-in: one counter bumped by every write, plus the blocking-query waiters that a write wakes.
 *
 * A write calls `bump()`; once the current synchronous write finishes (a microtask later) every waiter whose watched
 * index moved past the index it asked for is woken, so a blocking query answers in well under a millisecond.
 */
export interface Waiter {
  /** The index the client asked for (`?index=`). */
  readonly minIndex: number;
  /** The watched item's current index (cheap: no query is run to compute it). */
  currentIndex(): number;
  wake(): void;
}

export class Store {
  private counter: number;
  private readonly waiters = new Set<Waiter>();
  private flushScheduled = false;

  constructor(startIndex = 0) {
    this.counter = startIndex;
  }

  /** The last index handed out. */
  get index(): number {
    return this.counter;
  }

  /** Hands out the next index for a write and schedules waking the waiters it concerns. */
  bump(): number {
    this.counter += 1;
    this.scheduleFlush();
    return this.counter;
  }

  /** Registers a waiter; returns its disposer. */
  wait(waiter: Waiter): () => void {
    this.waiters.add(waiter);
    return () => {
      this.waiters.delete(waiter);
    };
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Wakes every waiter (server shutdown). */
  wakeAll(): void {
    for (const w of [...this.waiters]) {
      this.waiters.delete(w);
      w.wake();
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      for (const w of [...this.waiters]) {
        if (w.currentIndex() > w.minIndex) {
          this.waiters.delete(w);
          w.wake();
        }
      }
    });
  }
}
