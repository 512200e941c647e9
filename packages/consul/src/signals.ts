import {
  assertObject,
  componentLogger,
  describeValue,
  errorFields,
  InvalidArgumentError,
  type Disposable,
  type Logger,
} from '@shoal/core';

export interface DeregisterOnSignalsOptions {
  /** Signals to handle. Default ['SIGTERM', 'SIGINT']. */
  signals?: NodeJS.Signals[];
  /**
   * After close() settles, re-raise the signal so the process ends as it would have without this helper (exit status
   * 128 + signal number). Default true. With false, only close() runs and the application decides what happens.
   */
  exit?: boolean;
  /** Called after close() settles, before the signal is re-raised (e.g. to flush logs). */
  onClosed?: (signal: NodeJS.Signals) => void | Promise<void>;
  logger?: Logger;
}

/**
 * Opt-in: on the first SIGTERM/SIGINT, closes `registration` (which deregisters it) before the process exits.
 * A second signal while closing gets the default behaviour (the handlers are removed first), so Ctrl-C twice still
 * kills a stuck process. Returns a disposer that removes the handlers.
 */
export function deregisterOnSignals(
  registration: { close(): Promise<void> },
  options: DeregisterOnSignalsOptions = {},
): Disposable {
  if (typeof registration !== 'object' || registration === null || typeof registration.close !== 'function') {
    throw new InvalidArgumentError(`registration must have a close() method, got ${describeValue(registration)}`);
  }
  assertObject('options', options as unknown);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  if (
    !Array.isArray(signals) ||
    signals.length === 0 ||
    signals.some((s) => typeof s !== 'string' || !/^SIG[A-Z0-9]+$/.test(s))
  ) {
    throw new InvalidArgumentError(
      `signals must be a non-empty array of signal names like "SIGTERM", got ${describeValue(signals)}`,
    );
  }
  const exit = options.exit ?? true;
  if (typeof exit !== 'boolean') throw new InvalidArgumentError(`exit must be a boolean, got ${describeValue(exit)}`);
  const log = componentLogger(options.logger, 'consul-signals');
  let disposed = false;

  const dispose: Disposable = () => {
    if (disposed) return;
    disposed = true;
    for (const s of signals) process.off(s, handler);
  };

  function handler(signal: NodeJS.Signals): void {
    dispose();
    log.info({ signal }, 'signal received; deregistering from consul before exit');
    void (async () => {
      try {
        await registration.close();
      } catch (error) {
        log.error(errorFields(error), 'closing the registration failed');
      }
      try {
        await options.onClosed?.(signal);
      } catch (error) {
        log.error(errorFields(error), 'onClosed failed');
      }
      if (exit) process.kill(process.pid, signal);
    })();
  }

  for (const s of signals) process.on(s, handler);
  return dispose;
}
