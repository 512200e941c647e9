/**
 * Deadlines of one fixed duration (a per-try timeout, a hedge delay) for many requests, with one timer.
 *
 * Every entry waits the same time, so entries are due in the order they were added: a doubly linked list in
 * insertion order is also in deadline order. Adding and removing are O(1) and allocate nothing (the links live on
 * the entry), and one clock timer, armed for the head, serves the whole list. This keeps a timeout per request off
 * the hot path's allocation budget (a `setTimeout` per request allocates a timer object and a closure).
 */
import type { Clock, TimerHandle } from '@shoal/core';

/** A timer this late (ms) fired after a stall of the caller's own event loop. */
const STALL_MS = 50;

export abstract class DeadlineEntry {
  /** @internal */ dueAt = 0;
  /** @internal */ prev: DeadlineEntry | undefined = undefined;
  /** @internal */ next: DeadlineEntry | undefined = undefined;
  /** @internal */ queue: DeadlineQueue | undefined = undefined;
  /** Called once when the deadline passes (the entry is no longer queued). */
  abstract onDeadline(): void;
}

export class DeadlineQueue {
  private head: DeadlineEntry | undefined;
  private tail: DeadlineEntry | undefined;
  private timer: TimerHandle | undefined;
  private closed = false;
  /** The current firing was put off once already (the loop had stalled). */
  private deferred = false;

  constructor(
    private readonly clock: Clock,
    readonly durationMs: number,
  ) {}

  /** Queues `entry` to be due `durationMs` after `nowMs` (a monotonic reading the caller already has). */
  add(entry: DeadlineEntry, nowMs: number): void {
    if (this.closed) return;
    if (entry.queue !== undefined) entry.queue.remove(entry);
    entry.dueAt = nowMs + this.durationMs;
    entry.queue = this;
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    if (this.timer === undefined) this.arm(nowMs);
  }

  /** Takes `entry` out (no-op when it is not queued here). */
  remove(entry: DeadlineEntry): void {
    if (entry.queue !== this) return;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = entry.queue = undefined;
    // The timer stays armed: when it fires early for a removed head it re-arms for the new one.
  }

  get size(): number {
    let n = 0;
    for (let e = this.head; e; e = e.next) n++;
    return n;
  }

  private arm(nowMs: number): void {
    const head = this.head;
    if (head === undefined) return;
    const timer = this.clock.setTimeout(() => this.fire(), Math.max(0, head.dueAt - nowMs));
    timer.unref();
    this.timer = timer;
  }

  private fire(): void {
    this.timer = undefined;
    if (this.closed) return;
    const now = this.clock.monotonic();
    // Late: the caller's own event loop stalled, and answers may already wait unread in the sockets. A 0 ms timer
    // runs after this turn's I/O, so they are read before a deadline is taken for a slow instance.
    if (!this.deferred && this.head !== undefined && now - this.head.dueAt > STALL_MS) {
      this.deferred = true;
      const timer = this.clock.setTimeout(() => this.fire(), 0);
      timer.unref();
      this.timer = timer;
      return;
    }
    this.deferred = false;
    // Entries due within a millisecond fire together (timers are not more precise than that).
    while (this.head !== undefined && this.head.dueAt <= now + 1) {
      const entry = this.head;
      this.remove(entry);
      entry.onDeadline();
    }
    if (this.timer === undefined) this.arm(now);
  }

  /** Stops the timer; queued entries never fire. */
  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    while (this.head) this.remove(this.head);
  }
}
