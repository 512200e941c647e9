import { TimeoutError } from './errors.js';
import { realClock, type Clock } from './clock.js';

/**
 * Rejects with `TimeoutError` when `promise` has not settled within `ms`. The timer is cleared when the promise
 * settles, and `onTimeout` (e.g. an `AbortController.abort`) runs when it fires.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  message: string,
  options: { clock?: Clock; onTimeout?: () => void } = {},
): Promise<T> {
  const clock = options.clock ?? realClock;
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      options.onTimeout?.();
      reject(new TimeoutError(`${message} (timed out after ${ms} ms)`));
    }, ms);
    promise.then(
      (value) => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}
