/** Polls `condition` every 10 ms until it holds, failing with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves with the next value an `Event<T>` fires. */
export function nextEvent<T>(
  event: ((listener: (value: T) => void) => () => void) | undefined,
  what: string,
  timeoutMs = 5000,
): Promise<T> {
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
