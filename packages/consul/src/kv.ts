import {
  ClosedError,
  InvalidArgumentError,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertOneOf,
  assertString,
  componentLogger,
  describeValue,
  errorFields,
  isShoalError,
  realClock,
  resolveBackoffOptions,
  retry,
  type Clock,
  type Logger,
  type ResolvedBackoffOptions,
} from '@shoal/core';
import {
  resolveConsulConnectionOptions,
  type ConsulConnectionOptions,
  type ResolvedConsulConnectionOptions,
} from './connection-options.js';
import { ConsulClient, type KvEntry, type KvWriteFlags, type SessionEntry } from './consul-client.js';
import { isConnectionRefused } from './consul-errors.js';
import { goDuration } from './registration-options.js';

export interface ConsulKvOptions {
  consul?: ConsulConnectionOptions;
  /**
   * Retries of one call after a retryable failure (unreachable, timeout, 429/5xx), with full-jitter backoff.
   * Calls that are safe to repeat (reads, plain writes, acquire, renew, destroy, list) retry on any retryable
   * error; the others (cas, release, session create) only when the connection was refused, i.e. Consul never saw
   * them. Default `{ maxAttempts: 3, baseMs: 100, capMs: 1000 }`.
   */
  retry?: { maxAttempts?: number; baseMs?: number; capMs?: number; random?: () => number };
  logger?: Logger;
  clock?: Clock;
}

export interface ResolvedConsulKvOptions {
  readonly consul: ResolvedConsulConnectionOptions;
  readonly retry: ResolvedBackoffOptions;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** What `createSession()` takes. */
export interface SessionOptions {
  /** A name to find the session by later (e.g. the owner's identity). At most 256 characters. */
  name: string;
  /** Session TTL in ms, 10000..86400000; Consul invalidates it after up to 2 × TTL without a renewal. Omit for none. */
  ttlMs?: number;
  /** Consul's lock-delay after the session is invalidated, in ms (0..60000). Default 15000 (Consul's default). */
  lockDelayMs?: number;
  /** What happens to the keys it locks when it is invalidated. Default 'release'. */
  behavior?: 'release' | 'delete';
}

export interface KvCallOptions {
  /** Aborts the call (and its retries). */
  signal?: AbortSignal;
}

export type { KvEntry, KvWriteFlags, SessionEntry };

const KEYS = ['consul', 'retry', 'logger', 'clock'] as const;
const SESSION_KEYS = ['name', 'ttlMs', 'lockDelayMs', 'behavior'] as const;
const FLAG_KEYS = ['cas', 'acquire', 'release'] as const;

export function resolveConsulKvOptions(input: ConsulKvOptions = {}): ResolvedConsulKvOptions {
  assertObject('ConsulKv options', input as unknown);
  assertKnownKeys('ConsulKv options', input as unknown as Record<string, unknown>, KEYS);
  const consul = resolveConsulConnectionOptions(input.consul);
  if (input.retry !== undefined) assertObject('retry', input.retry);
  const retryOptions = resolveBackoffOptions({ maxAttempts: 3, baseMs: 100, capMs: 1000, ...input.retry });
  if (retryOptions.maxAttempts === Number.POSITIVE_INFINITY || retryOptions.maxAttempts > 10) {
    throw new InvalidArgumentError(
      `retry.maxAttempts must be an integer from 1 to 10, got ${describeValue(input.retry?.maxAttempts)}`,
    );
  }
  return Object.freeze({
    consul,
    retry: retryOptions,
    logger: componentLogger(input.logger, 'consul-kv'),
    clock: input.clock ?? realClock,
  });
}

function assertKey(key: unknown): asserts key is string {
  assertString('key', key, { maxLength: 1024 });
  if (key.startsWith('/')) throw new InvalidArgumentError(`key must not start with '/', got ${describeValue(key)}`);
}

function assertSessionId(name: string, id: unknown): asserts id is string {
  assertString(name, id, { maxLength: 128, pattern: /^[A-Za-z0-9-]+$/ });
}

/**
 * Consul KV and sessions (locks), through the project's one Consul client: the same error codes as registration
 * and watching (401/403 → `SHOAL_ERR_CONSUL_PERMISSION_DENIED`, 429/5xx/unreachable → `SHOAL_ERR_CONSUL_UNAVAILABLE`),
 * the connection's TLS `ca`, ACL token and datacenter, a timeout on every call on the injected clock, and a bounded
 * retry with backoff. Consul's leader-election recipe is built from `createSession`, `set(key, v, { acquire })`,
 * `renewSession` and `destroySession`.
 */
export class ConsulKv {
  readonly options: ResolvedConsulKvOptions;
  private readonly client: ConsulClient;
  private readonly log: Logger;
  private closed = false;

  constructor(options: ConsulKvOptions = {}) {
    this.options = resolveConsulKvOptions(options);
    this.client = new ConsulClient(this.options.consul, this.options.clock);
    this.log = this.options.logger;
  }

  /** The entry at `key`, or undefined when there is none. */
  async get(key: string, options: KvCallOptions = {}): Promise<KvEntry | undefined> {
    assertKey(key);
    return this.run('kv.get', true, options, (signal) => this.client.kvGet(key, { signal }));
  }

  /**
   * Writes `value` at `key`. Resolves Consul's answer: always true for a plain write; false when a `cas` index did
   * not match, an `acquire` found the lock held (or in its lock-delay), or a `release` named a session that does not
   * hold the lock.
   */
  async set(key: string, value: string, flags: KvWriteFlags = {}, options: KvCallOptions = {}): Promise<boolean> {
    assertKey(key);
    if (typeof value !== 'string')
      throw new InvalidArgumentError(`value must be a string, got ${describeValue(value)}`);
    assertObject('flags', flags as unknown);
    assertKnownKeys('flags', flags as unknown as Record<string, unknown>, FLAG_KEYS);
    const given = FLAG_KEYS.filter((k) => flags[k] !== undefined);
    if (given.length > 1) {
      throw new InvalidArgumentError(`flags may hold one of cas, acquire and release, got ${given.join(' and ')}`);
    }
    if (flags.cas !== undefined) assertInteger('flags.cas', flags.cas, 0);
    if (flags.acquire !== undefined) assertSessionId('flags.acquire', flags.acquire);
    if (flags.release !== undefined) assertSessionId('flags.release', flags.release);
    // Repeating a plain write or an acquire by the same session gives the same result; a cas or a release whose
    // first attempt was applied would answer false the second time.
    const repeatable = flags.cas === undefined && flags.release === undefined;
    return this.run('kv.set', repeatable, options, (signal) => this.client.kvSet(key, value, flags, { signal }));
  }

  /** Creates a session; resolves its ID. */
  async createSession(session: SessionOptions, options: KvCallOptions = {}): Promise<string> {
    assertObject('session', session as unknown);
    assertKnownKeys('session', session as unknown as Record<string, unknown>, SESSION_KEYS);
    assertString('session.name', session.name, { maxLength: 256 });
    if (session.ttlMs !== undefined) assertInteger('session.ttlMs', session.ttlMs, 10_000, 86_400_000);
    const lockDelayMs = session.lockDelayMs ?? 15_000;
    assertInteger('session.lockDelayMs', lockDelayMs, 0, 60_000);
    const behavior = session.behavior ?? 'release';
    assertOneOf('session.behavior', behavior, ['release', 'delete'] as const);
    return this.run('session.create', false, options, (signal) =>
      this.client.sessionCreate(
        {
          Name: session.name,
          ...(session.ttlMs !== undefined ? { TTL: goDuration(session.ttlMs) } : {}),
          // A string, so that 0 is sent (the client drops a falsy number) and means no delay.
          LockDelay: `${lockDelayMs}ms`,
          Behavior: behavior,
        },
        { signal },
      ),
    );
  }

  /** Renews a session's TTL; resolves false when Consul no longer has it (expired, destroyed, Consul restarted). */
  async renewSession(id: string, options: KvCallOptions = {}): Promise<boolean> {
    assertSessionId('id', id);
    return this.run('session.renew', true, options, (signal) => this.client.sessionRenew(id, { signal }));
  }

  /** Destroys a session: the locks it holds are released (or their keys deleted) and their lock-delay starts. */
  async destroySession(id: string, options: KvCallOptions = {}): Promise<void> {
    assertSessionId('id', id);
    await this.run('session.destroy', true, options, (signal) => this.client.sessionDestroy(id, { signal }));
  }

  /** Every session Consul has (`/v1/session/list`); filter by `Name` to find one's own. */
  async listSessions(options: KvCallOptions = {}): Promise<SessionEntry[]> {
    return this.run('session.list', true, options, (signal) => this.client.sessionList({ signal }));
  }

  /** Closes the keep-alive sockets; later calls reject with `ClosedError`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  private async run<T>(
    operation: string,
    repeatable: boolean,
    options: KvCallOptions,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new ClosedError(`ConsulKv is closed (${operation})`);
    const { retry: backoff, clock } = this.options;
    return retry(() => fn(options.signal), {
      ...backoff,
      clock,
      ...(options.signal ? { signal: options.signal } : {}),
      shouldRetry: (error) =>
        !this.closed && isShoalError(error) && error.retryable && (repeatable || isConnectionRefused(error)),
      onRetry: (error, attempt, delayMs) =>
        this.log.debug({ operation, attempt: attempt + 1, retryInMs: delayMs, ...errorFields(error) }, 'retrying'),
    });
  }
}
