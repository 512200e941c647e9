import { parseGoDurationMs } from './duration.js';
import { badRequest } from './http-error.js';

/** Consul's `DefaultQueryTime` and `MaxQueryTime`. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;

export interface BlockingParams {
  /** `?index=`; 0 means "answer at once". */
  minIndex: number;
  /** Timeout before jitter: `?wait=` clamped to (0, 10m], default 5m. */
  waitMs: number;
}

/** Parses `?wait=` and `?index=` as Consul's `parseWait` does (400 `Invalid wait time` / `Invalid index`). */
export function parseBlockingParams(query: URLSearchParams): BlockingParams {
  let waitMs = 0;
  const wait = query.get('wait');
  if (wait !== null && wait !== '') {
    const ms = parseGoDurationMs(wait);
    if (ms === undefined) throw badRequest('Invalid wait time');
    waitMs = ms;
  }
  let minIndex = 0;
  const index = query.get('index');
  if (index !== null && index !== '') {
    if (!/^\d+$/.test(index) || BigInt(index) > 18446744073709551615n) throw badRequest('Invalid index');
    // Indexes past 2^53 only come from confused clients; they block like any index ahead of ours.
    minIndex = Number(index);
  }
  if (waitMs <= 0) waitMs = DEFAULT_WAIT_MS;
  if (waitMs > MAX_WAIT_MS) waitMs = MAX_WAIT_MS;
  if (query.has('stale') && query.has('consistent'))
    throw badRequest('Cannot specify ?stale with ?consistent, conflicting semantics.');
  if (query.has('cached') && query.has('consistent'))
    throw badRequest('Cannot specify ?cached with ?consistent, conflicting semantics.');
  return { minIndex, waitMs };
}

/** A boolean query flag as Consul reads `?passing`: present-without-value, or true/1/t/T/TRUE/True. */
export function parseBoolFlag(query: URLSearchParams, name: string, reason: string): boolean {
  if (!query.has(name)) return false;
  const v = query.get(name) ?? '';
  if (v === '') return true;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw badRequest(reason);
}

/** Presence flags such as `?recurse`, `?raw`, `?keys`, `?replace-existing-checks`: present, empty or "true". */
export function hasFlag(query: URLSearchParams, name: string): boolean {
  if (!query.has(name)) return false;
  const v = query.get(name);
  return v === '' || v === 'true' || v === '1';
}
