/**
 * One service as the dispatcher sees it: its watch (instances pushed by Consul), its `Balancer`, one undici `Pool`
 * per instance (closed when the instance leaves), its metric tallies, and the first-list wait of a fresh service.
 */
import { Balancer } from '@shoal/balancer';
import type { Watch } from '@shoal/consul';
import { errorFields, instanceAddress, withTimeout } from '@shoal/core';
import type { Disposable, Instance, Logger } from '@shoal/core';
import { Pool } from 'undici';
import type { ResolvedDispatcherOptions } from './dispatcher-options.js';
import { ServiceTally } from './metrics.js';
import type { HttpMetrics } from './metrics.js';
import type { ServiceRoute } from './service-name.js';

interface PoolEntry {
  pool: Pool;
  origin: string;
  instance: Instance;
}

export class BalancedService {
  readonly balancer: Balancer;
  /** Plain-number tallies flushed into the counters on scrape, so the hot path does not touch prom-client. */
  readonly tally: ServiceTally;
  private readonly untrack: () => void;
  private readonly pools = new Map<string, PoolEntry>();
  private readonly dispose: Disposable[] = [];
  private ready: Promise<void> | undefined;
  private hasList = false;

  constructor(
    readonly route: ServiceRoute,
    private readonly watch: Watch,
    private readonly opts: ResolvedDispatcherOptions,
    readonly metrics: HttpMetrics,
  ) {
    this.tally = new ServiceTally(route.service);
    this.untrack = metrics.track(this.tally);
    // Resolved once by the dispatcher; each service adds only its context.
    this.balancer = new Balancer(opts.balancer, {
      name: route.service,
      logger: opts.logger,
      registry: opts.registry,
      clock: opts.clock,
    });
    const current = watch.current();
    if (current) this.update(current);
    this.dispose.push(watch.onChange((list) => this.update(list)));
  }

  get logger(): Logger {
    return this.opts.logger;
  }

  private update(list: readonly Instance[]): void {
    this.hasList = true;
    this.balancer.setEndpoints(list);
    const keep = new Set(list.map((i) => i.id));
    for (const [id, entry] of this.pools) {
      if (keep.has(id)) continue;
      this.pools.delete(id);
      entry.pool.close().catch((error: unknown) => this.opts.logger.debug(errorFields(error), 'closing a pool failed'));
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

  /** The service's Consul watch (the activator waits on it). */
  get instances(): Watch {
    return this.watch;
  }

  get listed(): boolean {
    return this.hasList;
  }

  /** The pool of an instance's origin (created on first use, replaced when the instance's address changes). */
  poolFor(instance: Instance): Pool {
    let entry = this.pools.get(instance.id);
    if (entry && entry.instance === instance) return entry.pool;
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
    return entry.pool;
  }

  /** Closes gracefully (`close`) or at once (`destroy`). */
  async close(err?: Error | null): Promise<void> {
    this.untrack();
    for (const d of this.dispose.splice(0)) d();
    this.watch.close();
    await this.balancer.close();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => (err === undefined ? p.pool.close() : p.pool.destroy(err)).catch(() => {})));
  }
}
