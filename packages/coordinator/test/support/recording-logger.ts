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
