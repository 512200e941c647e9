/**
 * `ShoalDispatcher`: an undici `Dispatcher` that sends requests for Consul services to a balanced choice of their
 * healthy instances. Works with `undici.request`, `undici.fetch`, Node's global `fetch` (through
 * `setGlobalDispatcher`) and anything else that dispatches through undici.
 *
 * - `http://orders.service.consul/...` (or a host listed in `services`) → the `orders` instances from a
 *   `ServiceWatcher` watch (pushed, no polling) → a `@shoal/balancer` `Balancer` picks one → that instance's own
 *   undici `Pool` carries the request (`balanced-service.ts`). Other hosts go to the `fallback` dispatcher.
 * - Each request is handled by a `BalancedRequest` (`balanced-request.ts`): retries, per-try timeouts and hedging
 *   of idempotent requests, outcome and latency back to the balancer.
 */
import type { Balancer } from '@shoal/balancer';
import { ServiceWatcher } from '@shoal/consul';
import { ClosedError, InvalidArgumentError, describeValue } from '@shoal/core';
import type { Logger } from '@shoal/core';
import { Agent, Dispatcher } from 'undici';
import { BalancedRequest } from './balanced-request.js';
import type { RequestContext } from './balanced-request.js';
import { BalancedService } from './balanced-service.js';
import { DeadlineQueue } from './deadline-queue.js';
import { resolveDispatcherOptions } from './dispatcher-options.js';
import type { ResolvedDispatcherOptions, ShoalDispatcherOptions } from './dispatcher-options.js';
import { toLegacyHandler } from './legacy-handler.js';
import { createHttpMetrics } from './metrics.js';
import type { HttpMetrics } from './metrics.js';
import type { ServiceRoute } from './service-name.js';

/** The balanced dispatcher. Create with `createDispatcher(options)`. */
export class ShoalDispatcher extends Dispatcher {
  private readonly opts: ResolvedDispatcherOptions;
  private readonly ctx: RequestContext;
  private readonly watcher: ServiceWatcher;
  private readonly ownsWatcher: boolean;
  private readonly fallback: Dispatcher;
  private readonly ownsFallback: boolean;
  private readonly services = new Map<string, BalancedService>();
  private readonly metrics: HttpMetrics;
  private readonly logger: Logger;
  private closed = false;

  constructor(options: ShoalDispatcherOptions = {}) {
    super();
    this.opts = resolveDispatcherOptions(options);
    const { retry, clock } = this.opts;
    this.ctx = {
      opts: this.opts,
      perTry: retry.perTryTimeoutMs > 0 ? new DeadlineQueue(clock, retry.perTryTimeoutMs) : undefined,
      hedge: retry.hedgeDelayMs > 0 ? new DeadlineQueue(clock, retry.hedgeDelayMs) : undefined,
    };
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
    const target = this.opts.names.resolveOrigin(options.origin);
    if (target === null) return this.fallback.dispatch(options, handler);
    if (target === 'not-http') {
      legacy.onError(
        new InvalidArgumentError(`only http:// origins can be balanced, got ${describeValue(String(options.origin))}`),
      );
      return false;
    }
    let service: BalancedService;
    try {
      service = this.serviceFor(target);
    } catch (error) {
      legacy.onError(error as Error);
      return false;
    }
    const request = new BalancedRequest(this.ctx, service, options, legacy);
    if (service.listed) this.startOrWake(service, request);
    else
      service.whenReady().then(
        () => this.startOrWake(service, request),
        (error: unknown) => request.fail(error instanceof Error ? error : new Error(String(error))),
      );
    return true;
  }

  /**
   * Sends the request, or, when the service has no healthy instance and an activator is set, waits for one (the
   * coordinator is told how many requests wait) and then sends it; fails with `SHOAL_ERR_COLD_START_TIMEOUT` when
   * none passes within the activator's maxWaitMs.
   */
  private startOrWake(service: BalancedService, request: BalancedRequest): void {
    const activator = this.opts.activator?.activator;
    const list = service.instances.current();
    if (!activator || (list !== undefined && list.length > 0)) {
      request.start();
      return;
    }
    // The caller can abort while the request waits: that ends the wait (and the request) at once.
    const waiting = new AbortController();
    request.waitBeforeStart((reason) => waiting.abort(reason));
    activator.waitForInstance(service.instances, waiting.signal).then(
      // The dispatcher's own watch listener (the balancer's endpoints) ran before the activator's: pick now.
      () => {
        request.waitOver();
        request.start();
      },
      (error: unknown) => {
        request.waitOver();
        request.fail(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  private serviceFor(route: ServiceRoute): BalancedService {
    const key = `${route.service}|${route.tag ?? ''}|${route.dc ?? ''}`;
    let service = this.services.get(key);
    if (!service) {
      const watch = this.watcher.watch(route.service, {
        ...(route.tag !== undefined ? { tag: route.tag } : {}),
        ...(route.dc !== undefined ? { dc: route.dc } : {}),
      });
      try {
        service = new BalancedService(route, watch, this.opts, this.metrics);
      } catch (error) {
        watch.close();
        throw error;
      }
      this.services.set(key, service);
    }
    return service;
  }

  /** @internal */
  get internals(): { opts: ResolvedDispatcherOptions; metrics: HttpMetrics; logger: Logger } {
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
      (s) => s.close(err),
      () => this.fallback.destroy(err),
    );
    if (callback) {
      done.then(callback, callback);
      return;
    }
    return done;
  }

  private async shutdown(each: (s: BalancedService) => Promise<void>, fallback: () => Promise<void>): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const services = [...this.services.values()];
    this.services.clear();
    await Promise.all(services.map(each));
    // After the pools: a graceful close lets in-flight requests finish, their deadlines no longer matter.
    this.ctx.perTry?.close();
    this.ctx.hedge?.close();
    if (this.opts.activator?.owned) await this.opts.activator.activator.close();
    if (this.ownsFallback) await fallback();
    if (this.ownsWatcher) await this.watcher.close();
  }
}

/** Creates a balanced dispatcher: `setGlobalDispatcher(createDispatcher({ consul: { url } }))`. */
export function createDispatcher(options: ShoalDispatcherOptions = {}): ShoalDispatcher {
  return new ShoalDispatcher(options);
}
