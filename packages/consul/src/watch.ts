import { ClosedError, type Disposable, type Event, type Instance } from '@shoal/core';
import type { SharedWatch } from './shared-watch.js';

/** One consumer's view of a (shared) service watch. */
export interface Watch extends AsyncIterable<readonly Instance[]> {
  readonly service: string;
  /** The last good list, sorted by id (undefined before the first successful answer). */
  current(): readonly Instance[] | undefined;
  /** True while Consul is failing and `current()` is the last good list. */
  readonly stale: boolean;
  /** Epoch ms of the first failure since the last success, while stale. */
  readonly staleSinceMs?: number;
  /** Epoch ms of the last successful answer from Consul. */
  readonly lastSyncMs?: number;
  /** Resolves with the first list; rejects on a non-retryable error (403, 400) before any list, or on close. */
  ready(signal?: AbortSignal): Promise<readonly Instance[]>;
  /** Fires only when the set of instances or an instance's address/port/zone/weight/tags/meta changed. */
  readonly onChange: Event<readonly Instance[]>;
  /** Fires on every failed query (the watch keeps retrying with backoff). */
  readonly onError: Event<Error>;
  /** Releases this consumer; the shared query stops when its last consumer is closed. Ends open iterators. */
  close(): void;
}

/** @internal */
export class WatchHandle implements Watch {
  private closed = false;
  private readonly disposers = new Set<Disposable>();
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly shared: SharedWatch,
    private readonly release: () => void,
  ) {}

  get service(): string {
    return this.shared.service;
  }

  get stale(): boolean {
    return this.shared.stale;
  }

  get staleSinceMs(): number | undefined {
    return this.shared.staleSinceMs;
  }

  get lastSyncMs(): number | undefined {
    return this.shared.lastSuccessMs;
  }

  get isClosed(): boolean {
    return this.closed || this.shared.isStopped;
  }

  current(): readonly Instance[] | undefined {
    return this.shared.current;
  }

  readonly onChange: Event<readonly Instance[]> = (listener) => this.track(this.shared.changes.event(listener));

  readonly onError: Event<Error> = (listener) => this.track(this.shared.errors.event(listener));

  ready(signal?: AbortSignal): Promise<readonly Instance[]> {
    return new Promise((resolve, reject) => {
      let undo: (() => void) | undefined;
      const onAbort = () => {
        undo?.();
        reject(signal?.reason);
      };
      const check = (): void => {
        const list = this.shared.current;
        if (list !== undefined) {
          signal?.removeEventListener('abort', onAbort);
          resolve(list);
          return;
        }
        if (this.isClosed) {
          signal?.removeEventListener('abort', onAbort);
          reject(new ClosedError(`the watch of ${this.service} was closed before its first list`));
          return;
        }
        const error = this.shared.lastError;
        if (error !== undefined && !error.retryable) {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
          return;
        }
        undo = this.waitNext(check);
      };
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  /** Latest-value iteration: yields the current list at once (if any), then each change; a slow consumer skips to the newest list. */
  [Symbol.asyncIterator](): AsyncIterator<readonly Instance[]> {
    let seen = 0;
    let done = false;
    let pendingUndo: (() => void) | undefined;
    const finish = (): IteratorResult<readonly Instance[]> => {
      done = true;
      pendingUndo?.();
      return { done: true, value: undefined };
    };
    return {
      next: () =>
        new Promise<IteratorResult<readonly Instance[]>>((resolve) => {
          const check = (): void => {
            pendingUndo = undefined;
            if (done || this.isClosed) {
              resolve(finish());
              return;
            }
            const list = this.shared.current;
            if (list !== undefined && this.shared.version !== seen) {
              seen = this.shared.version;
              resolve({ done: false, value: list });
              return;
            }
            pendingUndo = this.waitNext(check);
          };
          check();
        }),
      return: () => Promise.resolve(finish()),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.disposers) d();
    this.disposers.clear();
    this.release();
    const wakers = [...this.wakers];
    this.wakers.clear();
    for (const w of wakers) w();
  }

  /** Runs `fn` once on the shared watch's next event or when this handle closes. */
  private waitNext(fn: () => void): () => void {
    let fired = false;
    const once = () => {
      if (fired) return;
      fired = true;
      undo();
      fn();
    };
    const undoShared = this.shared.onNextEvent(once);
    this.wakers.add(once);
    const undo = () => {
      undoShared();
      this.wakers.delete(once);
    };
    return undo;
  }

  private track(dispose: Disposable): Disposable {
    if (this.closed) {
      dispose();
      return () => {};
    }
    this.disposers.add(dispose);
    return () => {
      dispose();
      this.disposers.delete(dispose);
    };
  }
}
