/**
 * The client side of waking a service from zero (issue #20): a call to a service with no healthy instance waits
 * here (bounded by `maxWaitMs`) while the activator tells the coordinator how many calls are waiting
 * (`POST /v1/services/:name/wake`, with a bearer token); the calls go out as soon as the service's watch lists an
 * instance. Knative buffers such calls in a proxy (its activator) and KEDA's http-add-on in an interceptor; Shoal's
 * clients already see every call, so they hold them themselves and no proxy sits in the data path.
 *
 * Used by `@shoal/grpc` (an interceptor) and `@shoal/http` (the dispatcher); both pass the service's `Watch`.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { Counter, Gauge, Registry } from 'prom-client';
import {
  AbortedError,
  Backoff,
  ClosedError,
  ColdStartTimeoutError,
  InvalidArgumentError,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertString,
  componentLogger,
  describeValue,
  errorFields,
  memoizeMetrics,
  realClock,
  withTimeout,
} from '@shoal/core';
import type { BackoffOptions, Clock, Disposable, Instance, Logger, MetricsRegistry, TimerHandle } from '@shoal/core';
import type { Watch } from './watch.js';

export interface ActivatorOptions {
  /** Base URL of the coordinator's HTTP API (`http://coordinator:8080`). Required. */
  coordinator: string;
  /** The service's wake token (`services[].wake.token` in the coordinator's config). Required; never logged. */
  token: string;
  /** How long a call waits for a first instance before failing with `SHOAL_ERR_COLD_START_TIMEOUT`. Default 30000. */
  maxWaitMs?: number;
  /** While calls wait, the count is sent again this often (the coordinator forgets it after its `demandTtlMs`). Default 1000. */
  reportIntervalMs?: number;
  /** Time limit of one report to the coordinator. Default 2000. */
  requestTimeoutMs?: number;
  /** This client's id in the coordinator's demand table (`[A-Za-z0-9._-]{1,64}`). Default: random. */
  clientId?: string;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export interface ResolvedActivatorOptions {
  readonly coordinator: URL;
  readonly token: string;
  readonly maxWaitMs: number;
  readonly reportIntervalMs: number;
  readonly requestTimeoutMs: number;
  readonly clientId: string;
  readonly logger: Logger;
  readonly registry: MetricsRegistry;
  readonly clock: Clock;
}

export const DEFAULT_ACTIVATOR_MAX_WAIT_MS = 30_000;
/** The largest count one client reports (the coordinator refuses more). */
export const MAX_REPORTED_WAITING = 10_000;
const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/;

const ACTIVATOR_KEYS = [
  'coordinator',
  'token',
  'maxWaitMs',
  'reportIntervalMs',
  'requestTimeoutMs',
  'clientId',
  'logger',
  'registry',
  'clock',
];

/** Applies defaults and validates; errors name the option (`activator.maxWaitMs must be ...`). */
export function resolveActivatorOptions(input: ActivatorOptions, prefix = 'activator'): ResolvedActivatorOptions {
  assertObject(prefix, input as unknown);
  assertKnownKeys(prefix, input as unknown as Record<string, unknown>, ACTIVATOR_KEYS);
  assertString(`${prefix}.coordinator`, input.coordinator);
  let coordinator: URL;
  try {
    coordinator = new URL(input.coordinator);
  } catch {
    throw new InvalidArgumentError(
      `${prefix}.coordinator must be an http(s) URL, got ${describeValue(input.coordinator)}`,
    );
  }
  if (coordinator.protocol !== 'http:' && coordinator.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `${prefix}.coordinator must be an http(s) URL, got ${describeValue(input.coordinator)}`,
    );
  }
  if (typeof input.token !== 'string' || !/^[\x21-\x7e]{16,4096}$/.test(input.token)) {
    // The value is never shown: it is a secret.
    throw new InvalidArgumentError(`${prefix}.token must be a string of 16 to 4096 printable characters`);
  }
  const maxWaitMs = input.maxWaitMs ?? DEFAULT_ACTIVATOR_MAX_WAIT_MS;
  assertInteger(`${prefix}.maxWaitMs`, maxWaitMs, 1, 3_600_000);
  const reportIntervalMs = input.reportIntervalMs ?? 1000;
  assertInteger(`${prefix}.reportIntervalMs`, reportIntervalMs, 50, 60_000);
  const requestTimeoutMs = input.requestTimeoutMs ?? 2000;
  assertInteger(`${prefix}.requestTimeoutMs`, requestTimeoutMs, 10, 60_000);
  const clientId = input.clientId ?? randomBytes(8).toString('hex');
  if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) {
    throw new InvalidArgumentError(
      `${prefix}.clientId must match [A-Za-z0-9._-]{1,64}, got ${describeValue(clientId)}`,
    );
  }
  return Object.freeze({
    coordinator,
    token: input.token,
    maxWaitMs,
    reportIntervalMs,
    requestTimeoutMs,
    clientId,
    logger: componentLogger(input.logger, 'activator'),
    registry: input.registry ?? new Registry(),
    clock: input.clock ?? realClock,
  });
}

interface ActivatorMetrics {
  waiting: Gauge<'service'>;
  calls: Counter<'service' | 'outcome'>;
  reports: Counter<'service' | 'outcome'>;
}

const activatorMetrics = memoizeMetrics((registry: MetricsRegistry): ActivatorMetrics => ({
  waiting: new Gauge({
    name: 'shoal_activator_waiting_calls',
    help: 'Calls waiting for a service at zero replicas to wake.',
    labelNames: ['service'],
    registers: [registry],
  }),
  calls: new Counter({
    name: 'shoal_activator_calls_total',
    help: 'Calls that waited for a wake, by outcome (released, timed_out, aborted).',
    labelNames: ['service', 'outcome'],
    registers: [registry],
  }),
  reports: new Counter({
    name: 'shoal_activator_reports_total',
    help: 'Waiting-call counts sent to the coordinator, by outcome (ok, refused, failed).',
    labelNames: ['service', 'outcome'],
    registers: [registry],
  }),
}));

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * The wait before a report is sent again after it failed or was refused: core's backoff, 100 ms doubling up to
 * 4 × `reportIntervalMs`, with equal jitter (each wait uniform in the upper half of its ceiling), so the clients of
 * a coordinator that is down or restarting neither retry in step nor at once.
 */
export function reportRetryBackoff(reportIntervalMs: number): BackoffOptions {
  return { baseMs: Math.min(100, reportIntervalMs), capMs: 4 * reportIntervalMs, jitter: 'equal' };
}

/** One service's waiting calls and its report loop. */
class ServiceDemand {
  readonly waiters = new Set<Waiter>();
  /** The count the coordinator last acknowledged (or was last sent). */
  sent = 0;
  sending = false;
  timer: TimerHandle | undefined;
  readonly backoff: Backoff;
  lastProblem: string | undefined;

  constructor(
    readonly service: string,
    reportIntervalMs: number,
  ) {
    this.backoff = new Backoff(reportRetryBackoff(reportIntervalMs));
  }
}

/**
 * Holds calls to services at zero and reports how many wait. One per client (or shared by several); `close()`
 * fails the calls still waiting with `SHOAL_ERR_CLOSED`.
 */
export class Activator {
  readonly options: ResolvedActivatorOptions;
  private readonly metrics: ActivatorMetrics;
  private readonly demand = new Map<string, ServiceDemand>();
  private closed = false;

  constructor(options: ActivatorOptions) {
    this.options = resolveActivatorOptions(options);
    this.metrics = activatorMetrics(this.options.registry);
  }

  /** Calls waiting now for `service` (all services when omitted). */
  waiting(service?: string): number {
    if (service !== undefined) return this.demand.get(service)?.waiters.size ?? 0;
    let n = 0;
    for (const d of this.demand.values()) n += d.waiters.size;
    return n;
  }

  /**
   * Resolves at once when `watch` lists an instance; otherwise counts the call as waiting, tells the coordinator,
   * and resolves when an instance passes. Rejects with `ColdStartTimeoutError` after `maxWaitMs` (or
   * `waitMs`, when the call's own deadline is nearer), `AbortedError` on `signal`, `ClosedError` on close().
   */
  async waitForInstance(watch: Watch, signal?: AbortSignal, waitMs?: number): Promise<void> {
    if (hasInstances(watch.current())) return;
    if (this.closed) throw new ClosedError('the activator is closed');
    const service = watch.service;
    const { clock } = this.options;
    let limit = Math.max(0, Math.min(waitMs ?? Infinity, this.options.maxWaitMs));
    if (watch.current() === undefined) {
      // No list yet (a new watch): an empty service and an unread one differ; only the first one is woken.
      const started = clock.monotonic();
      await withTimeout(watch.ready(signal), limit, `no instance list for service "${service}"`, { clock }).catch(
        () => undefined,
      );
      if (hasInstances(watch.current())) return;
      limit = Math.max(0, limit - (clock.monotonic() - started));
    }
    const d = this.serviceDemand(service);
    return new Promise<void>((resolve, reject) => {
      const held: { timer?: TimerHandle; dispose?: Disposable } = {};
      const finish = (outcome: string, error?: Error) => {
        if (!d.waiters.delete(waiter)) return;
        clock.clearTimeout(held.timer);
        held.dispose?.();
        signal?.removeEventListener('abort', onAbort);
        this.metrics.calls.inc({ service, outcome });
        this.changed(d);
        if (error) reject(error);
        else resolve();
      };
      const waiter: Waiter = {
        resolve: () => finish('released'),
        reject: (error) => finish(error instanceof ClosedError ? 'closed' : 'aborted', error),
      };
      const onAbort = () => finish('aborted', new AbortedError(`the call to ${service} was cancelled while it waited`));
      if (signal?.aborted) {
        reject(new AbortedError(`the call to ${service} was cancelled`));
        return;
      }
      d.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      held.dispose = watch.onChange((list) => {
        if (hasInstances(list)) waiter.resolve();
      });
      held.timer = clock.setTimeout(() => {
        const why = d.lastProblem ? `; the coordinator could not be told: ${d.lastProblem}` : '';
        finish(
          'timed_out',
          new ColdStartTimeoutError(
            `no instance of service "${service}" passed its checks within ${Math.round(limit)} ms ` +
              `(${limit < this.options.maxWaitMs ? "the call's deadline" : 'activator maxWaitMs'}; ` +
              `${d.waiters.size} calls were waiting${why})`,
          ),
        );
      }, limit);
      held.timer.unref();
      // Listed between the check above and now: go at once.
      if (hasInstances(watch.current())) waiter.resolve();
      else this.changed(d);
    });
  }

  private serviceDemand(service: string): ServiceDemand {
    let d = this.demand.get(service);
    if (!d) {
      d = new ServiceDemand(service, this.options.reportIntervalMs);
      this.demand.set(service, d);
    }
    return d;
  }

  /** The waiting count changed: report it (coalesced: one report in flight per service, then the latest count). */
  private changed(d: ServiceDemand): void {
    this.metrics.waiting.set({ service: d.service }, d.waiters.size);
    if (d.sending || this.closed) return;
    const count = Math.min(d.waiters.size, MAX_REPORTED_WAITING);
    if (count === d.sent) {
      if (count === 0 && d.timer === undefined) this.demand.delete(d.service);
      return; // the periodic refresh (if any) sends it again
    }
    // The last report failed and its retry is scheduled: that retry sends the latest count (no report per new call
    // while the coordinator is down).
    if (d.lastProblem !== undefined && d.timer !== undefined) return;
    this.options.clock.clearTimeout(d.timer);
    d.timer = undefined;
    // A burst arrives within a few microtasks: let it gather so it costs one report, not one per call.
    d.sending = true;
    queueMicrotask(() => void this.send(d));
  }

  private async send(d: ServiceDemand): Promise<void> {
    const count = Math.min(d.waiters.size, MAX_REPORTED_WAITING);
    const { clock, reportIntervalMs, logger } = this.options;
    let next = reportIntervalMs;
    d.sending = true;
    try {
      await this.post(d.service, count);
      d.sent = count;
      d.lastProblem = undefined;
      d.backoff.reset();
      this.metrics.reports.inc({ service: d.service, outcome: 'ok' });
    } catch (error) {
      const refused = (error as { refused?: boolean }).refused === true;
      d.lastProblem = (error as Error).message;
      this.metrics.reports.inc({ service: d.service, outcome: refused ? 'refused' : 'failed' });
      logger.warn({ service: d.service, ...errorFields(error) }, 'cannot tell the coordinator about waiting calls');
      next = d.backoff.next() ?? reportIntervalMs;
    } finally {
      d.sending = false;
    }
    if (this.closed) return;
    const now = Math.min(d.waiters.size, MAX_REPORTED_WAITING);
    if (d.lastProblem === undefined && now !== d.sent) {
      this.changed(d);
      return;
    }
    if (now === 0 && d.lastProblem === undefined) {
      this.demand.delete(d.service);
      return;
    }
    if (now === 0 && d.waiters.size === 0 && d.lastProblem !== undefined && count === 0) {
      // Nobody waits and the coordinator could not be told so: its entry expires after its demandTtlMs.
      this.demand.delete(d.service);
      return;
    }
    // Still waiting (or a report failed): send again after the interval, keeping the coordinator's entry fresh.
    clock.clearTimeout(d.timer);
    d.timer = clock.setTimeout(() => {
      d.timer = undefined;
      if (!this.closed) void this.send(d);
    }, next);
    d.timer.unref();
  }

  private post(service: string, waiting: number): Promise<void> {
    const { coordinator, token, requestTimeoutMs, clientId } = this.options;
    const url = new URL(`v1/services/${encodeURIComponent(service)}/wake`, withSlash(coordinator));
    const body = JSON.stringify({ client: clientId, waiting });
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<void>((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            authorization: `Bearer ${token}`,
          },
          timeout: requestTimeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= 4096) chunks.push(c);
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve();
              return;
            }
            let detail = '';
            try {
              const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: unknown };
              if (typeof parsed.error === 'string') detail = `: ${parsed.error.slice(0, 200)}`;
            } catch {
              // not JSON: the status says enough
            }
            const error = new Error(`the coordinator answered ${status}${detail}`) as Error & { refused?: boolean };
            error.refused = status === 401 || status === 403 || status === 404 || status === 400;
            reject(error);
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from the coordinator within ${requestTimeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Fails every waiting call with `SHOAL_ERR_CLOSED` and stops reporting (the coordinator forgets the demand after its TTL). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.demand.values()) {
      this.options.clock.clearTimeout(d.timer);
      for (const w of [...d.waiters]) w.reject(new ClosedError('the activator was closed while the call waited'));
    }
    this.demand.clear();
  }
}

function hasInstances(list: readonly Instance[] | undefined): boolean {
  return list !== undefined && list.length > 0;
}

function withSlash(url: URL): URL {
  const u = new URL(url.href);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

/** `activator` is an `Activator`, options to build one, or `false`/undefined (off). */
export function isActivator(value: unknown): value is Activator {
  return value instanceof Activator;
}
