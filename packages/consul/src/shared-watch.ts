import {
  Backoff,
  ConsulUnavailableError,
  EventEmitter,
  errorFields,
  instanceSetsEqual,
  isShoalError,
  sleep,
  type Clock,
  type Instance,
  type Logger,
  type ResolvedBackoffOptions,
  type ShoalError,
} from '@shoal/core';
import type { ConsulClient } from './consul-client.js';
import { compareInstances, instanceFromHealthEntry } from './instance-mapping.js';
import { errorCode, type ConsulMetrics, type WatchMetricsSource } from './metrics.js';

/** A watch query after defaults: what makes two `watch()` calls share one blocking loop. */
export interface WatchQuery {
  readonly service: string;
  readonly passing: boolean;
  readonly tag?: string;
  readonly zone?: string;
  readonly dc?: string;
  readonly filter?: string;
}

export interface SharedWatchSettings {
  client: ConsulClient;
  clock: Clock;
  logger: Logger;
  metrics: ConsulMetrics;
  waitMs: number;
  minQueryIntervalMs: number;
  requestTimeoutMs: number;
  backoff: ResolvedBackoffOptions;
  settleGraceMs: number;
}

/** The shortest time between two query starts of a watch whose list is empty and whose index keeps moving. */
const EMPTY_LIST_INTERVAL_MS = 10;

/**
 * One blocking-query loop over `/v1/health/service/:service` for one query, shared by every consumer of that query.
 *
 * Index rules (Consul's blocking.mdx "Implementation Details"): the first query sends no index (answers at once);
 * each answer's `X-Consul-Index` is the next index; an index that went backwards resets to 0, and so does any
 * failure (a restarted Consul may have a lower index, and blocking on the old one would hang). Query starts are
 * at least `minQueryIntervalMs` apart (10 ms while the list is empty and the index moves), so an index that keeps
 * moving (or keeps resetting) can never loop hot.
 * Errors keep the last good list (marked stale) and back off with full jitter.
 *
 * Settling: a Consul that restarted (an error, or an index that went backwards) first answers with whatever it has
 * re-learned so far, often nothing, while its agents and the services re-register within seconds. For
 * `settleGraceMs` after the first answer that follows such a reset, an answer that lacks an instance of a non-empty
 * last list does not replace it; the list is held until an answer has everything it had (or more), or the grace
 * ends, whichever comes first. Blocking queries during the grace wait at most until its end, so the held list is
 * re-checked then.
 */
export class SharedWatch implements WatchMetricsSource {
  readonly service: string;
  readonly changes: EventEmitter<readonly Instance[]>;
  readonly errors: EventEmitter<Error>;
  /** Bumped on every emitted change; consumers' iterators compare against it. */
  version = 0;
  current: readonly Instance[] | undefined;
  lastError: ShoalError | undefined;
  stale = false;
  staleSinceMs: number | undefined;
  lastSuccessMs: number | undefined;
  queries = 0;

  private index = 0n;
  private lastStart = Number.NEGATIVE_INFINITY;
  /** The last answer moved the index forward (a real change, not a hot loop). */
  private lastAdvanced = false;
  /** The one immediate re-query allowed after a fast, advancing answer has been used since the last slow one. */
  private burstUsed = false;
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private readonly waiters = new Set<() => void>();
  private readonly log: Logger;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private readonly skipped = new Set<string>();
  /** A failure or an index reset happened since the list was last known settled. */
  private unsettled = false;
  /** Monotonic time until which a shrunken answer is held back (set by the first answer after a reset). */
  private settleUntil: number | undefined;
  /** Shrunken answers held back during the current grace (for the log). */
  private held = 0;

  constructor(
    readonly query: WatchQuery,
    private readonly settings: SharedWatchSettings,
  ) {
    this.service = query.service;
    this.log = settings.logger.child({ service: query.service });
    const onListenerError = (error: unknown) =>
      this.log.error(errorFields(error), 'a service watch listener threw; the watch goes on');
    this.changes = new EventEmitter(onListenerError);
    this.errors = new EventEmitter(onListenerError);
    this.backoff = new Backoff(settings.backoff);
  }

  start(): void {
    if (this.loop) return;
    this.settings.metrics.watchSources.add(this);
    this.loop = this.run().catch((error: unknown) => {
      // run() handles its own errors; this only guards against a bug turning into an unhandled rejection.
      this.log.error(errorFields(error), 'service watch loop stopped unexpectedly');
    });
  }

  /** Stops the loop, aborting an in-flight blocking query; resolves when the loop has exited. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.abort.abort();
      this.settings.metrics.watchSources.delete(this);
      this.notify();
    }
    await this.loop;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Calls `fn` on the next change, error or stop (once). */
  onNextEvent(fn: () => void): () => void {
    this.waiters.add(fn);
    return () => this.waiters.delete(fn);
  }

  instanceIds(): Iterable<string> {
    return (this.current ?? []).map((i) => i.id);
  }

  syncAgeSeconds(): number {
    if (!this.stale) return 0;
    const since = this.lastSuccessMs ?? this.staleSinceMs ?? this.settings.clock.now();
    return Math.max(0, (this.settings.clock.now() - since) / 1000);
  }

  private notify(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  private async run(): Promise<void> {
    const { client, clock, waitMs, minQueryIntervalMs, requestTimeoutMs, metrics } = this.settings;
    const signal = this.abort.signal;
    while (!this.stopped) {
      // Queries start at least minQueryIntervalMs apart, except that one fast answer which moved the index may be
      // followed at once by another query (Consul often bumps the index twice for one logical change, e.g. a
      // registration and then its first passing check); a second fast answer in a row pays the full interval.
      // An empty list waits for its first instance (a service starting, or woken from zero with calls held at
      // clients): each answer that moved the index is followed at once, so the instance that passes is seen the moment
      // Consul has it, not up to an interval later. Still at most one query per EMPTY_LIST_INTERVAL_MS.
      const interval =
        this.lastAdvanced && this.current !== undefined && this.current.length === 0
          ? Math.min(minQueryIntervalMs, EMPTY_LIST_INTERVAL_MS)
          : minQueryIntervalMs;
      let gap = this.lastStart + interval - clock.monotonic();
      if (gap <= 0) this.burstUsed = false;
      else if (this.lastAdvanced && !this.burstUsed) {
        this.burstUsed = true;
        gap = 0;
      }
      if (gap > 0 && !(await this.pause(gap))) break;
      this.lastStart = clock.monotonic();
      const blocking = this.index > 0n;
      // While a held list waits for Consul to settle, a blocking query returns by the end of the grace.
      const wait =
        this.settleUntil === undefined
          ? waitMs
          : Math.min(waitMs, Math.max(50, Math.ceil(this.settleUntil - clock.monotonic())));
      try {
        this.queries++;
        metrics.watchQueries.inc({ service: this.service });
        const result = await client.healthService(
          {
            service: this.query.service,
            passing: this.query.passing,
            ...(this.query.tag !== undefined ? { tag: this.query.tag } : {}),
            ...(this.query.filter !== undefined ? { filter: this.query.filter } : {}),
            ...(this.query.dc !== undefined ? { datacenter: this.query.dc } : {}),
            index: this.index,
            waitMs: wait,
          },
          {
            signal,
            // Consul adds up to wait/16 of jitter to a blocking wait; allow for it plus an ordinary request's time.
            timeoutMs: blocking ? wait + Math.ceil(wait / 16) + requestTimeoutMs : requestTimeoutMs,
          },
        );
        if (this.stopped) break;
        if (result.index === undefined) {
          throw new ConsulUnavailableError(
            `consul health.service at ${client.target} answered without a valid X-Consul-Index header`,
          );
        }
        this.lastAdvanced = result.index > this.index;
        if (result.index < this.index) {
          this.log.info(
            { previousIndex: this.index.toString(), index: result.index.toString() },
            'consul index went backwards; starting over from index 0',
          );
          this.index = 0n;
          this.unsettled = true;
        } else {
          this.index = result.index;
        }
        this.succeeded(result.entries);
        this.backoff.reset();
      } catch (error) {
        if (this.stopped) break;
        this.lastAdvanced = false;
        this.unsettled = true;
        // After a failure the server may have restarted with a lower index; a blocking query with our old index
        // would then hang until its wait ran out. The first query after a failure therefore does not block.
        this.index = 0n;
        const delay = this.failed(error);
        if (!(await this.pause(delay))) break;
      }
    }
  }

  /** Sleeps on the clock (unref'd); false when the watch stopped meanwhile. */
  private async pause(ms: number): Promise<boolean> {
    try {
      await sleep(this.settings.clock, ms, this.abort.signal, true);
      return !this.stopped;
    } catch {
      return false;
    }
  }

  private succeeded(entries: readonly unknown[]): void {
    const list: Instance[] = [];
    for (const entry of entries) {
      let instance: Instance;
      try {
        instance = instanceFromHealthEntry(entry as never);
      } catch (error) {
        const id = String((entry as { Service?: { ID?: unknown } } | null)?.Service?.ID ?? '?');
        if (!this.skipped.has(id)) {
          this.skipped.add(id);
          this.log.warn(
            { instanceId: id, ...errorFields(error) },
            'skipping a Consul entry that is not a usable instance',
          );
        }
        continue;
      }
      if (this.query.zone !== undefined && instance.zone !== this.query.zone) continue;
      list.push(instance);
    }
    list.sort(compareInstances);
    const now = this.settings.clock.now();
    const hold = this.holdForSettling(list);
    this.lastSuccessMs = now;
    this.lastError = undefined;
    if (this.stale) {
      this.log.info({ staleForMs: now - (this.staleSinceMs ?? now) }, 'consul answered again; watch is current');
      this.stale = false;
      this.staleSinceMs = undefined;
    }
    if (!hold && (this.current === undefined || !instanceSetsEqual(this.current, list))) {
      this.current = Object.freeze(list);
      this.version++;
      this.log.debug({ instances: list.length }, 'service instances changed');
      this.changes.emit(this.current);
    }
    this.notify();
  }

  /** True when `list` must not replace the current one yet (see "Settling" above); ends the grace otherwise. */
  private holdForSettling(list: readonly Instance[]): boolean {
    const { clock, settleGraceMs } = this.settings;
    const current = this.current;
    if (this.unsettled) {
      this.unsettled = false;
      if (settleGraceMs > 0 && current !== undefined && current.length > 0) {
        this.settleUntil = clock.monotonic() + settleGraceMs;
        this.held = 0;
      }
    }
    if (this.settleUntil === undefined) return false;
    const ids = new Set(list.map((i) => i.id));
    const missing = current === undefined ? 0 : current.filter((i) => !ids.has(i.id)).length;
    const expired = clock.monotonic() >= this.settleUntil;
    if (missing > 0 && !expired) {
      if (this.held++ === 0) {
        this.log.info(
          { instances: current?.length ?? 0, answered: list.length, missing, settleGraceMs },
          'consul answered without some instances right after a reset; keeping the last list while it settles',
        );
      }
      return true;
    }
    if (this.held > 0) {
      this.log.info(
        { missing, heldAnswers: this.held },
        missing > 0 ? 'consul settle grace over; taking its answer' : 'consul settled; every instance is back',
      );
    }
    this.settleUntil = undefined;
    this.held = 0;
    return false;
  }

  /** Records a failure and returns the backoff delay before the next query. */
  private failed(raw: unknown): number {
    const error: ShoalError = isShoalError(raw)
      ? raw
      : new ConsulUnavailableError(`service watch of ${this.service} failed`, { cause: raw });
    const now = this.settings.clock.now();
    this.lastError = error;
    if (!this.stale) {
      this.stale = true;
      this.staleSinceMs = now;
    }
    const delay = this.backoff.next() ?? this.settings.backoff.capMs;
    this.settings.metrics.watchErrors.inc({ service: this.service, code: errorCode(error) });
    this.log.warn(
      {
        ...errorFields(error),
        attempt: this.backoff.attempts,
        retryInMs: delay,
        servingLastList: this.current !== undefined,
        instances: this.current?.length ?? 0,
      },
      'consul health query failed; keeping the last good list and retrying',
    );
    this.errors.emit(error);
    this.notify();
    return delay;
  }
}
