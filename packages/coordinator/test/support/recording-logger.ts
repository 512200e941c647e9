import type { Logger } from '@shoal/core';

export interface LogRecord {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every record, for assertions on what a component logged. */
export function recordingLogger(
  records: LogRecord[] = [],
  bindings: Record<string, unknown> = {},
): Logger & {
  records: LogRecord[];
} {
  const make = (level: string) =>
    ((a: unknown, b?: unknown) => {
      if (typeof a === 'string') records.push({ level, msg: a, fields: { ...bindings } });
      else records.push({ level, msg: typeof b === 'string' ? b : '', fields: { ...bindings, ...(a as object) } });
    }) as Logger['info'];
  return {
    records,
    trace: make('trace'),
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    fatal: make('fatal'),
    child: (more: Record<string, unknown>) => recordingLogger(records, { ...bindings, ...more }),
  };
}

/** Polls `condition` every 20 ms until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
