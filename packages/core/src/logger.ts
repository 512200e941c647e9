/**
 * Logger injection. Shoal takes the application's `pino` logger; the type is the structural subset Shoal calls,
 * so `pino.Logger` satisfies it and `@shoal/core` needs no runtime dependency on pino.
 */
export interface LogFn {
  (obj: object, msg?: string, ...args: unknown[]): void;
  (msg: string, ...args: unknown[]): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

const noop: LogFn = () => {};

/** A logger that drops everything; the default when none is passed in. */
export const silentLogger: Logger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => silentLogger,
});

/** One child logger per component, as the house style asks: `componentLogger(logger, 'consul-watcher')`. */
export function componentLogger(
  logger: Logger | undefined,
  component: string,
  bindings: Record<string, unknown> = {},
): Logger {
  return (logger ?? silentLogger).child({ component, ...bindings });
}

/** Error fields safe to log: name, code, message, never the whole object (which may carry request options). */
export function errorFields(error: unknown): { err: { name: string; code?: string; message: string } } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { err: { name: error.name, ...(typeof code === 'string' ? { code } : {}), message: error.message } };
  }
  return { err: { name: 'NonError', message: String(error) } };
}
