/**
 * The one way tests wait for something (the test kit): poll a condition with a deadline, or await an event.
 * Never sleep a fixed time to wait for a condition; never assert on how fast it came.
 */

/** What `waitFor` counts as "not yet": `undefined`, `null` and `false`. Anything else (0 and '' too) is the answer. */
export type Pending = undefined | null | false;

export interface WaitOptions {
  /** How long to poll before failing. Default 10 000 ms (generous: the suite runs on loaded 2-core machines). */
  timeoutMs?: number;
  /** Pause between polls. Default 20 ms. */
  intervalMs?: number;
  /** What is awaited, for the failure message; a function is called only when the wait fails. */
  what?: string | (() => string | Promise<string>);
  /** Treat a throwing/rejecting check as "not yet" (the last error is reported on timeout). Default false. */
  retryErrors?: boolean;
}

/**
 * Polls `check` until it returns something other than `undefined`/`null`/`false`, and resolves with that value;
 * rejects after `timeoutMs` with `timed out after N ms waiting for <what>`.
 */
export async function waitFor<T>(
  check: () => T | Pending | Promise<T | Pending>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 20, what = 'a condition', retryErrors = false } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      if (!retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const text = typeof what === 'function' ? await what() : what;
      const cause = lastError === undefined ? '' : ` (last error: ${String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A typed subscription as Shoal's components expose them: returns a disposer. */
export type Subscribe<T> = (listener: (value: T) => void) => () => void;

/** Resolves with the next value `event` fires; rejects after `timeoutMs` (default 10 000). */
export function nextEvent<T>(event: Subscribe<T> | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  if (event === undefined) return Promise.reject(new Error(`no event for ${what}`));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const dispose = event((value) => {
      clearTimeout(timer);
      dispose();
      resolve(value);
    });
  });
}
