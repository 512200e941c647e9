import { Registry } from 'prom-client';
import {
  ClosedError,
  InvalidArgumentError,
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertString,
  componentLogger,
  describeValue,
  realClock,
  resolveBackoffOptions,
  type Clock,
  type Logger,
  type MetricsRegistry,
  type ResolvedBackoffOptions,
} from '@shoal/core';
import {
  resolveConsulConnectionOptions,
  type ConsulConnectionOptions,
  type ResolvedConsulConnectionOptions,
} from './connection-options.js';
import { ConsulClient } from './consul-client.js';
import { consulMetrics, type ConsulMetrics } from './metrics.js';
import { SharedWatch, type WatchQuery } from './shared-watch.js';
import { WatchHandle, type Watch } from './watch.js';

export interface ServiceWatcherOptions {
  consul?: ConsulConnectionOptions;
  /** Blocking-query wait sent to Consul (`?wait=`), in ms; Consul caps it at 10 minutes. Default 300000. */
  waitMs?: number;
  /** Minimum time between the starts of two queries of one watch, in ms (stops hot loops). Default 100. */
  minQueryIntervalMs?: number;
  /**
   * Backoff after a failed query: full jitter in [0, min(capMs, baseMs·2^attempt)). Default {baseMs: 250, capMs: 2000},
   * so a watch is back within 2 s of Consul coming back.
   */
  backoff?: { baseMs?: number; capMs?: number; random?: () => number };
  /**
   * After an error or an index reset (a restarted Consul), how long an answer lacking some instances of the last
   * non-empty list is held back, in ms (until an answer has them all, or this ends). 0 disables. Default 10000.
   */
  settleGraceMs?: number;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export interface WatchOptions {
  /** Only instances whose checks all pass (`?passing`). `false` returns every registered instance whatever its health. Default true. */
  passing?: boolean;
  /** Only instances carrying this tag (`?tag=`). */
  tag?: string;
  /** Only instances whose `zone` (Service.Meta.zone) is this, filtered client-side. */
  zone?: string;
  /** Datacenter to query; default the connection's `datacenter`, else the agent's. */
  dc?: string;
  /** A Consul filter expression (`?filter=`), e.g. `Service.Meta.version == "2"`. */
  filter?: string;
}

export interface ResolvedServiceWatcherOptions {
  readonly consul: ResolvedConsulConnectionOptions;
  readonly waitMs: number;
  readonly minQueryIntervalMs: number;
  readonly backoff: ResolvedBackoffOptions;
  readonly settleGraceMs: number;
  readonly logger: Logger;
  readonly registry: MetricsRegistry;
  readonly clock: Clock;
}

const WATCHER_KEYS = [
  'consul',
  'waitMs',
  'minQueryIntervalMs',
  'backoff',
  'settleGraceMs',
  'logger',
  'registry',
  'clock',
] as const;
const WATCH_KEYS = ['passing', 'tag', 'zone', 'dc', 'filter'] as const;
const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const MAX_WAIT_MS = 600_000;
/** The watcher's default retry cap: back within 2 s of Consul. */
export const DEFAULT_WATCH_BACKOFF_CAP_MS = 2000;
/** The default settle grace: longer than a default heartbeat interval (5 s), so re-registrations are in. */
export const DEFAULT_SETTLE_GRACE_MS = 10_000;

export function resolveServiceWatcherOptions(input: ServiceWatcherOptions = {}): ResolvedServiceWatcherOptions {
  assertObject('options', input as unknown);
  assertKnownKeys('ServiceWatcher options', input as unknown as Record<string, unknown>, WATCHER_KEYS);
  const consul = resolveConsulConnectionOptions(input.consul);
  const waitMs = input.waitMs ?? 300_000;
  assertInteger('waitMs', waitMs, 1_000, MAX_WAIT_MS);
  const minQueryIntervalMs = input.minQueryIntervalMs ?? 100;
  assertInteger('minQueryIntervalMs', minQueryIntervalMs, 0, 60_000);
  if (input.backoff !== undefined) assertObject('backoff', input.backoff);
  const backoff = resolveBackoffOptions({ baseMs: 250, capMs: DEFAULT_WATCH_BACKOFF_CAP_MS, ...input.backoff });
  const settleGraceMs = input.settleGraceMs ?? DEFAULT_SETTLE_GRACE_MS;
  assertInteger('settleGraceMs', settleGraceMs, 0, MAX_WAIT_MS);
  return Object.freeze({
    consul,
    waitMs,
    minQueryIntervalMs,
    backoff,
    settleGraceMs,
    logger: componentLogger(input.logger, 'consul-watcher'),
    registry: input.registry ?? new Registry(),
    clock: input.clock ?? realClock,
  });
}

export function resolveWatchQuery(service: unknown, input: WatchOptions = {}): WatchQuery {
  assertString('service', service, { maxLength: 128 });
  if (!SERVICE_RE.test(service)) {
    throw new InvalidArgumentError(
      `service must start with a letter or digit and hold only letters, digits, '.', '_' and '-', got ${describeValue(service)}`,
    );
  }
  assertObject('watch options', input as unknown);
  assertKnownKeys('watch options', input as unknown as Record<string, unknown>, WATCH_KEYS);
  const passing = input.passing ?? true;
  assertBoolean('passing', passing);
  if (input.tag !== undefined) assertString('tag', input.tag, { maxLength: 256 });
  if (input.zone !== undefined) assertString('zone', input.zone, { maxLength: 128 });
  if (input.dc !== undefined) assertString('dc', input.dc, { maxLength: 128, pattern: /^[A-Za-z0-9_-]+$/ });
  if (input.filter !== undefined) assertString('filter', input.filter, { maxLength: 4096 });
  return Object.freeze({
    service,
    passing,
    ...(input.tag !== undefined ? { tag: input.tag } : {}),
    ...(input.zone !== undefined ? { zone: input.zone } : {}),
    ...(input.dc !== undefined ? { dc: input.dc } : {}),
    ...(input.filter !== undefined ? { filter: input.filter } : {}),
  });
}

function queryKey(q: WatchQuery): string {
  return JSON.stringify([q.service, q.passing, q.tag ?? null, q.zone ?? null, q.dc ?? null, q.filter ?? null]);
}

/**
 * Watches healthy instances of services through Consul blocking queries. Every `watch()` of the same service with
 * the same options shares one query, however many consumers it has.
 */
export class ServiceWatcher {
  readonly options: ResolvedServiceWatcherOptions;
  private readonly client: ConsulClient;
  private readonly metrics: ConsulMetrics;
  private readonly shared = new Map<string, { watch: SharedWatch; handles: Set<WatchHandle> }>();
  private closed = false;

  constructor(options: ServiceWatcherOptions = {}) {
    this.options = resolveServiceWatcherOptions(options);
    this.client = new ConsulClient(this.options.consul, this.options.clock);
    this.metrics = consulMetrics(this.options.registry);
  }

  /** Number of distinct queries running (for diagnostics and tests). */
  get activeQueries(): number {
    return this.shared.size;
  }

  watch(service: string, options: WatchOptions = {}): Watch {
    if (this.closed) throw new ClosedError('ServiceWatcher is closed');
    const query = resolveWatchQuery(service, options);
    const key = queryKey(query);
    let entry = this.shared.get(key);
    if (!entry) {
      const watch = new SharedWatch(query, {
        client: this.client,
        clock: this.options.clock,
        logger: this.options.logger,
        metrics: this.metrics,
        waitMs: this.options.waitMs,
        minQueryIntervalMs: this.options.minQueryIntervalMs,
        requestTimeoutMs: this.options.consul.requestTimeoutMs,
        backoff: this.options.backoff,
        settleGraceMs: this.options.settleGraceMs,
      });
      entry = { watch, handles: new Set() };
      this.shared.set(key, entry);
      watch.start();
    }
    const current = entry;
    const handle: WatchHandle = new WatchHandle(current.watch, () => {
      current.handles.delete(handle);
      if (current.handles.size === 0 && this.shared.get(key) === current) {
        this.shared.delete(key);
        void current.watch.stop();
      }
    });
    current.handles.add(handle);
    return handle;
  }

  /** Stops every query (aborting in-flight blocking requests), ends every iterator, closes the HTTP agent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const entries = [...this.shared.values()];
    this.shared.clear();
    for (const e of entries) for (const h of [...e.handles]) h.close();
    await Promise.all(entries.map((e) => e.watch.stop()));
    this.client.destroy();
  }
}
