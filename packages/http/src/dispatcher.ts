/**
 * `ShoalDispatcher`: an undici `Dispatcher` that sends requests for Consul services to a balanced choice of their
 * healthy instances. Works with `undici.request`, `undici.fetch`, Node's global `fetch` (through
 * `setGlobalDispatcher`) and anything else that dispatches through undici.
 *
 * - `http://orders.service.consul/...` (or a host listed in `services`) → the `orders` instances from a
 *   `ServiceWatcher` watch (pushed, no polling) → a `@shoal/balancer` `Balancer` picks one → that instance's own
 *   undici `Pool` (one pool per origin) carries the request. Other hosts go to the `fallback` dispatcher.
 * - Outcome and latency of every request go back to the balancer; a server's `x-shoal-load` response header
 *   reports its load (used by `weighted_least_load`).
 * - A request that fails before any response byte reached the caller is retried on another instance when it is
 *   idempotent and the balancer's retry budget allows; so is an idempotent request answered with a status in
 *   `retry.statusCodes` (default 502, 503, 504).
 */
import type { Duplex } from 'node:stream';
import { Balancer } from '@shoal/balancer';
import type { BalancerOptions, PickHandle } from '@shoal/balancer';
import { ServiceWatcher } from '@shoal/consul';
import type { ConsulConnectionOptions, Watch } from '@shoal/consul';
import {
  ClosedError,
  InvalidArgumentError,
  NoEndpointsError,
  ShoalError,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertPositiveInteger,
  assertString,
  componentLogger,
  describeValue,
  errorFields,
  instanceAddress,
  realClock,
  withTimeout,
} from '@shoal/core';
import type { Clock, Disposable, Instance, Logger, MetricsRegistry } from '@shoal/core';
import { Registry } from 'prom-client';
import { Agent, Dispatcher, Pool } from 'undici';
import { toLegacyHandler } from './legacy-handler.js';
import type { LegacyHandler } from './legacy-handler.js';
import { LOAD_HEADER, findRawHeader, parseLoadHeader } from './load-header.js';
import { ServiceTally, createHttpMetrics } from './metrics.js';
import type { HttpMetrics } from './metrics.js';
import { ServiceNameResolver } from './service-name.js';
import type { ServiceRoute } from './service-name.js';

export interface RetryOptions {
  /** Total attempts per request, the first included. Default 3. */
  maxAttempts?: number;
  /** Response statuses that are retried (idempotent requests only). Default `[502, 503, 504]`. */
  statusCodes?: number[];
}

export interface ShoalDispatcherOptions {
  /** Watcher to resolve services with (not closed by the dispatcher). Default: one created from `consul`. */
  watcher?: ServiceWatcher;
  /** Consul agent for the watcher the dispatcher creates when `watcher` is not given. */
  consul?: ConsulConnectionOptions;
  /** Host name → service (or `{ service, tag?, dc? }`), e.g. `{ 'orders.internal': 'orders' }`. */
  services?: Record<string, string | ServiceRoute>;
  /** Hosts `<service>.<domain>` and `<tag>.<service>.<domain>` are services. `false` = only `services`. Default `service.consul`. */
  domain?: string | false;
  /** `@shoal/balancer` strategy name (or class/factory). Default `peak_ewma`. */
  strategy?: BalancerOptions['strategy'];
  strategyOptions?: BalancerOptions['strategyOptions'];
  slowStart?: BalancerOptions['slowStart'];
  outlierDetection?: BalancerOptions['outlierDetection'];
  /** Retry budget shared by the requests to one service. Default: the balancer's (20 % + 10/s over 10 s). */
  retryBudget?: BalancerOptions['retryBudget'];
  /** Prefer instances in this zone. */
  localZone?: string;
  /** Retries of idempotent requests; `false` = never retry. */
  retry?: RetryOptions | false;
  /** Response statuses counted as failures of the instance (outlier detection). Default `[502, 503, 504]`. */
  failureStatusCodes?: number[];
  /** Response header carrying the server's load. Default `x-shoal-load`; `false` = ignore. */
  loadHeader?: string | false;
  /** Options for each per-instance undici `Pool` (e.g. `{ connections: 32 }`). */
  pool?: Pool.Options;
  /** Dispatcher for hosts that are not services. Default: a new undici `Agent` (closed with this dispatcher). */
  fallback?: Dispatcher;
  /** How long a request waits for a service's first instance list, ms. Default 5000. */
  resolveTimeoutMs?: number;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const KNOWN = [
  'watcher',
  'consul',
  'services',
  'domain',
  'strategy',
  'strategyOptions',
  'slowStart',
  'outlierDetection',
  'retryBudget',
  'localZone',
  'retry',
  'failureStatusCodes',
  'loadHeader',
  'pool',
  'fallback',
  'resolveTimeoutMs',
  'logger',
  'registry',
  'clock',
] as const;

function statusList(name: string, value: unknown, fallback: number[]): ReadonlySet<number> {
  const list = value ?? fallback;
  if (!Array.isArray(list))
    throw new InvalidArgumentError(`${name} must be an array of HTTP status codes, got ${describeValue(list)}`);
  list.forEach((c, i) => assertInteger(`${name}[${i}]`, c, 100, 599));
  return new Set(list as number[]);
}

export function resolveDispatcherOptions(input: ShoalDispatcherOptions = {}) {
  assertObject('options', input as unknown);
  assertKnownKeys('options', input as Record<string, unknown>, KNOWN);
  if (input.watcher !== undefined && typeof (input.watcher as { watch?: unknown }).watch !== 'function') {
    throw new InvalidArgumentError(`watcher must be a ServiceWatcher, got ${describeValue(input.watcher)}`);
  }
  const names = new ServiceNameResolver(input.services ?? {}, input.domain ?? 'service.consul');
  let retry: { maxAttempts: number; statusCodes: ReadonlySet<number> } | false = false;
  if (input.retry !== false) {
    const r = input.retry ?? {};
    assertObject('retry', r as unknown);
    assertKnownKeys('retry', r as Record<string, unknown>, ['maxAttempts', 'statusCodes']);
    const maxAttempts = r.maxAttempts ?? 3;
    assertInteger('retry.maxAttempts', maxAttempts, 1, 10);
    retry = { maxAttempts, statusCodes: statusList('retry.statusCodes', r.statusCodes, [502, 503, 504]) };
  }
  const loadHeader = input.loadHeader ?? LOAD_HEADER;
  if (loadHeader !== false) assertString('loadHeader', loadHeader, { pattern: /^[A-Za-z0-9-]+$/ });
  const resolveTimeoutMs = input.resolveTimeoutMs ?? 5000;
  assertPositiveInteger('resolveTimeoutMs', resolveTimeoutMs);
  if (input.fallback !== undefined && typeof (input.fallback as { dispatch?: unknown }).dispatch !== 'function') {
    throw new InvalidArgumentError(`fallback must be an undici Dispatcher, got ${describeValue(input.fallback)}`);
  }
  if (input.pool !== undefined) assertObject('pool', input.pool as unknown);
  const balancer: BalancerOptions = {
    ...(input.strategy !== undefined ? { strategy: input.strategy } : {}),
    ...(input.strategyOptions !== undefined ? { strategyOptions: input.strategyOptions } : {}),
    ...(input.slowStart !== undefined ? { slowStart: input.slowStart } : {}),
    ...(input.outlierDetection !== undefined ? { outlierDetection: input.outlierDetection } : {}),
    ...(input.retryBudget !== undefined ? { retryBudget: input.retryBudget } : {}),
    ...(input.localZone !== undefined ? { localZone: input.localZone } : {}),
  };
  // Validate the balancer options now (errors name the option), not at the first request.
  const probe = new Balancer({ ...balancer, registry: new Registry() });
  probe.close().catch(() => {});
  return Object.freeze({
    watcher: input.watcher,
    consul: input.consul,
    names,
    balancer,
    retry,
    failureStatusCodes: statusList('failureStatusCodes', input.failureStatusCodes, [502, 503, 504]),
    loadHeader: loadHeader === false ? undefined : loadHeader.toLowerCase(),
    pool: input.pool ?? {},
    fallback: input.fallback,
    resolveTimeoutMs,
    logger: componentLogger(input.logger, 'http-dispatcher'),
    registry: input.registry ?? new Registry(),
    clock: input.clock ?? realClock,
  });
}

type ResolvedOptions = ReturnType<typeof resolveDispatcherOptions>;

/** One service's instances, balancer and per-instance pools. */
class ServiceState {
  readonly balancer: Balancer;
  /** Plain-number tallies flushed into the counters on scrape, so the hot path does not touch prom-client. */
  readonly tally: ServiceTally;
  private readonly untrack: () => void;
  private readonly pools = new Map<string, { pool: Pool; origin: string; instance: Instance }>();
  private readonly dispose: Disposable[] = [];
  private ready: Promise<void> | undefined;
  private hasList = false;

  constructor(
    readonly key: string,
    readonly route: ServiceRoute,
    private readonly watch: Watch,
    private readonly opts: ResolvedOptions,
    private readonly logger: Logger,
    metrics: HttpMetrics,
  ) {
    this.tally = new ServiceTally(route.service);
    this.untrack = metrics.track(this.tally);
    this.balancer = new Balancer({
      ...opts.balancer,
      name: route.service,
      logger: opts.logger,
      registry: opts.registry,
      clock: opts.clock,
    });
    const current = watch.current();
    if (current) this.update(current);
    this.dispose.push(watch.onChange((list) => this.update(list)));
  }

  private update(list: readonly Instance[]): void {
    this.hasList = true;
    this.balancer.setEndpoints(list);
    const keep = new Set(list.map((i) => i.id));
    for (const [id, entry] of this.pools) {
      if (keep.has(id)) continue;
      this.pools.delete(id);
      entry.pool.close().catch((error: unknown) => this.logger.debug(errorFields(error), 'closing a pool failed'));
    }
  }

  /** Resolves once the service has an instance list (at once if it has one). */
  whenReady(): Promise<void> {
    if (this.hasList) return Promise.resolve();
    this.ready ??= withTimeout(
      this.watch.ready().then((list) => {
        if (!this.hasList) this.update(list);
      }),
      this.opts.resolveTimeoutMs,
      `no instance list for service ${JSON.stringify(this.route.service)} within ${this.opts.resolveTimeoutMs} ms`,
      { clock: this.opts.clock },
    ).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  get listed(): boolean {
    return this.hasList;
  }

  poolFor(instance: Instance): { pool: Pool; origin: string } {
    let entry = this.pools.get(instance.id);
    if (entry && entry.instance === instance) return entry;
    const origin = `http://${instanceAddress(instance)}`;
    if (entry && entry.origin !== origin) {
      entry.pool.close().catch(() => {});
      entry = undefined;
    }
    if (entry) entry.instance = instance;
    else {
      entry = { pool: new Pool(origin, this.opts.pool), origin, instance };
      this.pools.set(instance.id, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    this.untrack();
    for (const d of this.dispose.splice(0)) d();
    this.watch.close();
    await this.balancer.close();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.close().catch(() => {})));
  }

  async destroy(err: Error | null): Promise<void> {
    this.untrack();
    for (const d of this.dispose.splice(0)) d();
    this.watch.close();
    await this.balancer.close();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy(err).catch(() => {})));
  }
}

function isReplayable(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** The balanced dispatcher. Create with `createDispatcher(options)`. */
export class ShoalDispatcher extends Dispatcher {
  private readonly opts: ResolvedOptions;
  private readonly watcher: ServiceWatcher;
  private readonly ownsWatcher: boolean;
  private readonly fallback: Dispatcher;
  private readonly ownsFallback: boolean;
  private readonly services = new Map<string, ServiceState>();
  private readonly routes = new Map<string, ServiceRoute | 'not-http' | null>();
  private readonly metrics: HttpMetrics;
  private readonly logger: Logger;
  private closed = false;

  constructor(options: ShoalDispatcherOptions = {}) {
    super();
    this.opts = resolveDispatcherOptions(options);
    this.logger = this.opts.logger;
    this.metrics = createHttpMetrics(this.opts.registry);
    this.ownsWatcher = this.opts.watcher === undefined;
    this.watcher =
      this.opts.watcher ??
      new ServiceWatcher({
        ...(this.opts.consul ? { consul: this.opts.consul } : {}),
        logger: this.opts.logger,
        registry: this.opts.registry,
        clock: this.opts.clock,
      });
    this.ownsFallback = this.opts.fallback === undefined;
    this.fallback = this.opts.fallback ?? new Agent();
  }

  /** The service a host name maps to, or undefined when requests to it bypass balancing. */
  routeFor(hostname: string): ServiceRoute | undefined {
    return this.opts.names.resolve(hostname);
  }

  /** The balancer of a service (created on first use), e.g. to read `endpoints()`. */
  balancerFor(service: string): Balancer | undefined {
    for (const state of this.services.values()) if (state.route.service === service) return state.balancer;
    return undefined;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const legacy = toLegacyHandler(handler);
    if (this.closed) {
      legacy.onError(new ClosedError('the Shoal dispatcher is closed'));
      return false;
    }
    const target = this.targetFor(options.origin);
    if (target === undefined) return this.fallback.dispatch(options, handler);
    if (target === 'not-http') {
      legacy.onError(
        new InvalidArgumentError(`only http:// origins can be balanced, got ${describeValue(String(options.origin))}`),
      );
      return false;
    }
    const state = this.stateFor(target);
    const request = new BalancedRequest(this, state, options, legacy);
    if (state.listed) request.attempt();
    else
      state.whenReady().then(
        () => request.attempt(),
        (error: unknown) => request.fail(error instanceof Error ? error : new Error(String(error))),
      );
    return true;
  }

  /**
   * The service an origin maps to (cached per origin string: parsing a URL per request is measurable at tens of
   * thousands of requests per second), `'not-http'` for a service name on another scheme, undefined otherwise.
   */
  private targetFor(origin: unknown): ServiceRoute | 'not-http' | undefined {
    const key = typeof origin === 'string' ? origin : origin instanceof URL ? origin.origin : String(origin ?? '');
    let cached = this.routes.get(key);
    if (cached === undefined) {
      let url: URL | undefined;
      try {
        url = new URL(key);
      } catch {
        url = undefined;
      }
      const route = url ? this.routeFor(url.hostname) : undefined;
      cached = route === undefined ? null : url!.protocol === 'http:' ? route : 'not-http';
      if (this.routes.size >= 1024) this.routes.clear();
      this.routes.set(key, cached);
    }
    return cached ?? undefined;
  }

  private stateFor(route: ServiceRoute): ServiceState {
    const key = `${route.service}|${route.tag ?? ''}|${route.dc ?? ''}`;
    let state = this.services.get(key);
    if (!state) {
      const watch = this.watcher.watch(route.service, {
        ...(route.tag !== undefined ? { tag: route.tag } : {}),
        ...(route.dc !== undefined ? { dc: route.dc } : {}),
      });
      state = new ServiceState(key, route, watch, this.opts, this.logger, this.metrics);
      this.services.set(key, state);
    }
    return state;
  }

  /** @internal */
  get internals(): { opts: ResolvedOptions; metrics: HttpMetrics; logger: Logger } {
    return { opts: this.opts, metrics: this.metrics, logger: this.logger };
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = this.shutdown(
      (s) => s.close(),
      () => this.fallback.close(),
    );
    if (callback) {
      done.then(callback, callback);
      return;
    }
    return done;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    const done = this.shutdown(
      (s) => s.destroy(err),
      () => this.fallback.destroy(err),
    );
    if (callback) {
      done.then(callback, callback);
      return;
    }
    return done;
  }

  private async shutdown(each: (s: ServiceState) => Promise<void>, fallback: () => Promise<void>): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const states = [...this.services.values()];
    this.services.clear();
    await Promise.all(states.map(each));
    if (this.ownsFallback) await fallback();
    if (this.ownsWatcher) await this.watcher.close();
  }
}

/** One request through the dispatcher: picks, dispatches, and retries when allowed. */
class BalancedRequest implements LegacyHandler {
  private attempts = 0;
  /** Instances this request already tried (created on the first retry). */
  private tried: Set<string> | undefined;
  private lastInstance: string | undefined;
  private handle: PickHandle | undefined;
  private startedAt = 0;
  private abortCurrent: ((err?: Error) => void) | undefined;
  private connected = false;
  private aborted: Error | undefined;
  /** Response bytes have been handed to the caller: no retry from here on. */
  private committed = false;
  /** The current response is being discarded because it will be retried. */
  private swallowing = false;
  private status = 0;
  private load: ReturnType<typeof parseLoadHeader>;
  private readonly idempotent: boolean;
  private finished = false;

  constructor(
    private readonly dispatcher: ShoalDispatcher,
    private readonly state: ServiceState,
    private readonly options: Dispatcher.DispatchOptions,
    private readonly user: LegacyHandler,
  ) {
    const method = (options.method ?? 'GET').toUpperCase();
    this.idempotent =
      (options.idempotent ?? IDEMPOTENT.has(method)) && isReplayable(options.body) && options.upgrade == null;
  }

  attempt(): void {
    if (this.aborted) return this.finish(this.aborted);
    const { opts } = this.dispatcher.internals;
    let handle: PickHandle;
    try {
      handle = this.state.balancer.pick(this.tried !== undefined ? { exclude: this.tried } : undefined);
    } catch (error) {
      if (error instanceof ShoalError && error.code === 'SHOAL_ERR_NO_ENDPOINTS') {
        return this.finish(
          new NoEndpointsError(
            `no healthy instance of service ${JSON.stringify(this.state.route.service)} to send to`,
            {
              cause: error,
            },
          ),
        );
      }
      return this.finish(error as Error);
    }
    this.attempts++;
    this.handle = handle;
    this.lastInstance = handle.instance.id;
    this.status = 0;
    this.swallowing = false;
    this.load = undefined;
    this.startedAt = opts.clock.monotonic();
    this.state.tally.attempts++;
    const { pool } = this.state.poolFor(handle.instance);
    // Pools take the origin from their own URL; `options.origin` (the service name) is ignored by them.
    pool.dispatch(this.options, this);
  }

  /** Fails the request before or between attempts (e.g. the service never resolved). */
  fail(error: Error): void {
    this.finish(error);
  }

  private finish(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.user.onError(error);
  }

  private complete(outcome: 'success' | 'failure'): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = undefined;
    const latency = this.dispatcher.internals.opts.clock.monotonic() - this.startedAt;
    try {
      handle.complete(outcome, Math.max(0, latency), this.load);
    } catch {
      handle.complete(outcome, Math.max(0, latency));
    }
  }

  /** Whether this request may be attempted again (idempotent, nothing delivered, attempts left). */
  private retryAllowed(): boolean {
    const { opts } = this.dispatcher.internals;
    return (
      !this.committed &&
      !this.aborted &&
      this.idempotent &&
      opts.retry !== false &&
      this.attempts < opts.retry.maxAttempts
    );
  }

  /** Takes one retry from the service's retry budget. */
  private takeBudget(): boolean {
    const { metrics } = this.dispatcher.internals;
    if (this.state.balancer.tryRetry()) return true;
    metrics.retries.inc({ service: this.state.route.service, result: 'budget_exhausted' });
    return false;
  }

  private retry(reason: string): void {
    const { metrics, logger } = this.dispatcher.internals;
    metrics.retries.inc({ service: this.state.route.service, result: 'retried' });
    logger.debug({ service: this.state.route.service, reason, attempt: this.attempts }, 'retrying on another instance');
    this.tried ??= new Set();
    if (this.lastInstance !== undefined) this.tried.add(this.lastInstance);
    // Every instance tried once already: allow them again rather than fail.
    if (this.tried.size >= this.state.balancer.size) this.tried.clear();
    queueMicrotask(() => this.attempt());
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.abortCurrent = abort;
    if (this.connected) return;
    this.connected = true;
    const onConnect = this.user.onConnect as ((abort: (err?: Error) => void, context?: unknown) => void) | undefined;
    onConnect?.call(
      this.user,
      (err?: Error) => {
        this.aborted = err ?? new Error('aborted');
        this.abortCurrent?.(err);
      },
      context,
    );
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    const { opts } = this.dispatcher.internals;
    this.status = statusCode;
    if (opts.loadHeader !== undefined) this.load = parseLoadHeader(findRawHeader(rawHeaders, opts.loadHeader));
    if (opts.retry !== false && opts.retry.statusCodes.has(statusCode) && this.retryAllowed() && this.takeBudget()) {
      // Discard this response and try another instance once it has been read.
      this.swallowing = true;
      return true;
    }
    this.committed = true;
    return this.user.onHeaders?.(statusCode, rawHeaders, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    if (this.swallowing) return true;
    return this.user.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    const { opts } = this.dispatcher.internals;
    const failed = opts.failureStatusCodes.has(this.status);
    this.complete(failed ? 'failure' : 'success');
    if (failed) this.state.tally.failures++;
    else this.state.tally.successes++;
    if (this.swallowing) {
      this.swallowing = false;
      return this.retry(`status ${this.status}`);
    }
    this.finished = true;
    this.user.onComplete?.(trailers);
  }

  onError(err: Error): void {
    this.complete('failure');
    this.state.tally.errors++;
    if (this.swallowing || (this.retryAllowed() && this.takeBudget())) {
      this.swallowing = false;
      return this.retry(err.message);
    }
    this.finish(err);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.committed = true;
    this.complete('success');
    this.finished = true;
    this.user.onUpgrade?.(statusCode, rawHeaders, socket);
  }

  onResponseStarted(): void {
    this.user.onResponseStarted?.();
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    this.user.onBodySent?.(chunkSize, totalBytesSent);
  }
}

/** Creates a balanced dispatcher: `setGlobalDispatcher(createDispatcher({ consul: { url } }))`. */
export function createDispatcher(options: ShoalDispatcherOptions = {}): ShoalDispatcher {
  return new ShoalDispatcher(options);
}
