import { AbortedError, InvalidArgumentError } from './errors.js';
import { sleep, realClock, type Clock } from './clock.js';
import { assertInteger, assertPositiveNumber, describeValue } from './validate.js';

export interface BackoffOptions {
  /** First delay ceiling in ms. Default 100. */
  baseMs?: number;
  /** Largest delay ceiling in ms. Default 30000. */
  capMs?: number;
  /** Attempts after which `next()` returns `undefined`. Default Infinity. */
  maxAttempts?: number;
  /** Exponent base. Default 2. */
  factor?: number;
  /** Source of randomness in [0, 1); inject a seeded one in tests. Default Math.random. */
  random?: () => number;
  /**
   * `full` (default): uniform in [0, ceiling). `equal`: uniform in [ceiling / 2, ceiling), for loops that must
   * never retry at once (e.g. a relay a peer keeps refusing).
   */
  jitter?: 'full' | 'equal';
}

export interface ResolvedBackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
  readonly maxAttempts: number;
  readonly factor: number;
  readonly random: () => number;
  readonly jitter: 'full' | 'equal';
}

export function resolveBackoffOptions(input: BackoffOptions = {}): ResolvedBackoffOptions {
  const baseMs = input.baseMs ?? 100;
  const capMs = input.capMs ?? 30_000;
  const maxAttempts = input.maxAttempts ?? Number.POSITIVE_INFINITY;
  const factor = input.factor ?? 2;
  assertPositiveNumber('baseMs', baseMs);
  assertPositiveNumber('capMs', capMs);
  if (capMs < baseMs) throw new InvalidArgumentError(`capMs must be >= baseMs (${baseMs}), got ${capMs}`);
  if (maxAttempts !== Number.POSITIVE_INFINITY) assertInteger('maxAttempts', maxAttempts, 1);
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    throw new InvalidArgumentError(`factor must be a finite number >= 1, got ${describeValue(factor)}`);
  }
  if (input.random !== undefined && typeof input.random !== 'function') {
    throw new InvalidArgumentError(`random must be a function, got ${describeValue(input.random)}`);
  }
  const jitter = input.jitter ?? 'full';
  if (jitter !== 'full' && jitter !== 'equal') {
    throw new InvalidArgumentError(`jitter must be "full" or "equal", got ${describeValue(jitter)}`);
  }
  return Object.freeze({ baseMs, capMs, maxAttempts, factor, random: input.random ?? Math.random, jitter });
}

/**
 * The full-jitter delay for the `attempt`-th retry (0-based): uniform in [0, min(cap, base * factor^attempt)).
 * See AWS's "Exponential Backoff And Jitter".
 */
export function fullJitterDelay(attempt: number, options: ResolvedBackoffOptions, boundMs?: number): number {
  return Math.floor(options.random() * ceilingOf(attempt, options, boundMs));
}

/**
 * The delay for the `attempt`-th retry (0-based) under the options' `jitter` (full or equal). `boundMs`, when given,
 * lowers this draw's ceiling below `capMs` (e.g. a reconnect loop that keeps its waits short while the peer was
 * reachable a moment ago).
 */
export function backoffDelay(attempt: number, options: ResolvedBackoffOptions, boundMs?: number): number {
  if (options.jitter === 'full') return fullJitterDelay(attempt, options, boundMs);
  const ceiling = ceilingOf(attempt, options, boundMs);
  return Math.floor(ceiling / 2 + options.random() * (ceiling / 2));
}

function ceilingOf(attempt: number, options: ResolvedBackoffOptions, boundMs: number | undefined): number {
  const ceiling = Math.min(options.capMs, options.baseMs * Math.pow(options.factor, Math.min(attempt, 64)));
  return boundMs !== undefined && boundMs >= 0 ? Math.min(ceiling, boundMs) : ceiling;
}

/** A stateful backoff sequence: `next()` gives the next delay, or `undefined` once attempts are spent. */
export class Backoff {
  readonly options: ResolvedBackoffOptions;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.options = resolveBackoffOptions(options);
  }

  /** Attempts made so far (calls to `next()` since the last reset). */
  get attempts(): number {
    return this.attempt;
  }

  /** The next delay (its ceiling lowered to `boundMs` when given), or `undefined` once attempts are spent. */
  next(boundMs?: number): number | undefined {
    if (this.attempt >= this.options.maxAttempts) return undefined;
    return backoffDelay(this.attempt++, this.options, boundMs);
  }

  reset(): void {
    this.attempt = 0;
  }
}

export interface RetryOptions extends BackoffOptions {
  clock?: Clock;
  signal?: AbortSignal;
  /** Decides whether an error is worth another attempt. Default: always. */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Called before each wait, e.g. to log or count the failure. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn` until it resolves, waiting a full-jitter backoff between failures. Rejects with the last error once
 * `maxAttempts` attempts failed (so `maxAttempts: 3` means at most 3 calls), or with `AbortedError` when aborted.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const resolved = resolveBackoffOptions(options);
  const clock = options.clock ?? realClock;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw new AbortedError('retry aborted', { cause: options.signal.reason });
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt + 1 >= resolved.maxAttempts) throw error;
      if (options.shouldRetry && !options.shouldRetry(error, attempt)) throw error;
      const delay = backoffDelay(attempt, resolved);
      options.onRetry?.(error, attempt, delay);
      try {
        await sleep(clock, delay, options.signal);
      } catch (abortReason) {
        throw new AbortedError('retry aborted', { cause: abortReason });
      }
    }
  }
}
