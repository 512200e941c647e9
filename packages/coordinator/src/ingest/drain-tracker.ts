import type { Clock, TimerHandle } from '@shoal/core';
import type { Directive } from '@shoal/protocol';

export type DrainOutcome = 'drained' | 'timeout' | 'not-connected';

/**
 * Drains in progress, by `service/instanceId`: the directive an instance without a stream gets on its next unary
 * report, and who waits for an instance to be gone. An instance is gone when its stream ends or it reports not
 * ready with nothing in flight (`resolve`).
 */
export class DrainTracker {
  private readonly waiters = new Map<string, Array<() => void>>();
  private readonly pending = new Map<string, Directive>();

  constructor(private readonly clock: Clock) {}

  /**
   * Waits for `key` to be gone or `timeoutMs`. `sent` says whether the directive reached a stream; when it did not,
   * it is kept for the instance's next unary report, and a timeout reads as `not-connected`.
   */
  async wait(key: string, directive: Directive, sent: boolean, timeoutMs: number): Promise<DrainOutcome> {
    if (!sent) this.pending.set(key, directive);
    let resolveDone: () => void = () => {};
    const done = new Promise<'drained'>((resolve) => (resolveDone = () => resolve('drained')));
    const list = this.waiters.get(key) ?? [];
    list.push(resolveDone);
    this.waiters.set(key, list);
    let timer: TimerHandle | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const result = await Promise.race([done, timeout]);
    this.clock.clearTimeout(timer);
    this.waiters.delete(key);
    this.pending.delete(key);
    return result === 'timeout' && !sent ? 'not-connected' : result;
  }

  /** The drain directive waiting for `key`'s next unary report, if any. */
  pendingFor(key: string): Directive | undefined {
    return this.pending.get(key);
  }

  /** `key` is gone: everyone waiting for it resolves. */
  resolve(key: string): void {
    const list = this.waiters.get(key);
    if (list) for (const w of list) w();
  }

  /** Resolves every wait (shutdown). */
  close(): void {
    for (const list of this.waiters.values()) for (const w of list) w();
    this.waiters.clear();
  }
}
