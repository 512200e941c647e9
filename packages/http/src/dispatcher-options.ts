/**
 * The dispatcher's options: types, defaults and `resolveDispatcherOptions()`, which validates them once (errors name
 * the option and the value) and freezes the result. The balancer options are resolved here, once, by
 * `@shoal/balancer`'s own `resolveBalancerOptions`; every per-service `Balancer` is built from that result.
 */
import { getStrategyFactory, resolveBalancerOptions, strategyNames } from '@shoal/balancer';
import type { BalancerOptions, ResolvedBalancerOptions } from '@shoal/balancer';
import { Activator, resolveActivatorOptions } from '@shoal/consul';
import type { ActivatorOptions, ServiceWatcher } from '@shoal/consul';
import type { ConsulConnectionOptions } from '@shoal/consul';
import {
  InvalidArgumentError,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertPositiveInteger,
  assertString,
  componentLogger,
  describeValue,
  realClock,
} from '@shoal/core';
import type { Clock, Logger, MetricsRegistry } from '@shoal/core';
import { Registry } from 'prom-client';
import type { Dispatcher, Pool } from 'undici';
import { LOAD_HEADER } from './load-header.js';
import { ServiceNameResolver } from './service-name.js';
import type { ServiceRoute } from './service-name.js';

export interface HttpRetryOptions {
  /** Total attempts per request, the first and any hedges included. Default 3. */
  maxAttempts?: number;
  /** Response statuses that are retried (idempotent requests only). Default `[502, 503, 504]`. */
  statusCodes?: number[];
  /**
   * Per-attempt timeout of an idempotent request, until its response headers arrive, ms. When it passes and
   * another attempt is allowed (attempts left, retry budget), the attempt is abandoned (counted as a failure of
   * that instance) and the request goes to another instance; the last allowed attempt keeps waiting.
   * `false` = none. Default 10000.
   */
  perTryTimeoutMs?: number | false;
}

export interface HedgeOptions {
  /**
   * Start another attempt of an idempotent request on another instance when no response headers arrived within
   * this time, ms; the first answer wins and the others are aborted. Each hedge takes one retry from the budget.
   */
  delayMs: number;
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
  /** Retries of idempotent requests; `false` = never retry (no per-try timeout or hedging either). */
  retry?: HttpRetryOptions | false;
  /** Hedging of idempotent requests; `false` = none. Default `false`. */
  hedge?: HedgeOptions | false;
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
  /**
   * Wake from zero: a request to a service with no healthy instance waits (up to `maxWaitMs`, default 30000) and
   * the coordinator is told how many wait, instead of failing with `SHOAL_ERR_NO_ENDPOINTS`. Options (the
   * dispatcher builds and closes the `Activator`, sharing its logger, registry and clock), an `Activator` (shared,
   * not closed), or `false`. Default `false` (no coordinator known).
   */
  activator?: ActivatorOptions | Activator | false;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

/** The retry settings a request follows (`retry: false` resolves to `maxAttempts: 1`). */
export interface ResolvedRetry {
  readonly maxAttempts: number;
  readonly statusCodes: ReadonlySet<number>;
  /** 0 = no per-try timeout. */
  readonly perTryTimeoutMs: number;
  /** 0 = no hedging. */
  readonly hedgeDelayMs: number;
}

export interface ResolvedDispatcherOptions {
  readonly watcher: ServiceWatcher | undefined;
  readonly consul: ConsulConnectionOptions | undefined;
  readonly names: ServiceNameResolver;
  /** Resolved once; each service's balancer adds its name, logger, registry and clock. */
  readonly balancer: ResolvedBalancerOptions;
  readonly retry: ResolvedRetry;
  readonly failureStatusCodes: ReadonlySet<number>;
  readonly loadHeader: string | undefined;
  readonly pool: Pool.Options;
  readonly fallback: Dispatcher | undefined;
  readonly resolveTimeoutMs: number;
  /** The activator and whether the dispatcher owns (closes) it; undefined = off. */
  readonly activator: { readonly activator: Activator; readonly owned: boolean } | undefined;
  readonly logger: Logger;
  readonly registry: MetricsRegistry;
  readonly clock: Clock;
}

export const DEFAULT_PER_TRY_TIMEOUT_MS = 10_000;
const DEFAULT_STATUSES = [502, 503, 504];
const DAY_MS = 86_400_000;

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
  'hedge',
  'failureStatusCodes',
  'loadHeader',
  'pool',
  'fallback',
  'resolveTimeoutMs',
  'activator',
  'logger',
  'registry',
  'clock',
] as const;
const BALANCER_KEYS = [
  'strategy',
  'strategyOptions',
  'slowStart',
  'outlierDetection',
  'retryBudget',
  'localZone',
] as const;

function statusList(name: string, value: unknown, fallback: number[]): ReadonlySet<number> {
  const list = value ?? fallback;
  if (!Array.isArray(list))
    throw new InvalidArgumentError(`${name} must be an array of HTTP status codes, got ${describeValue(list)}`);
  list.forEach((c, i) => assertInteger(`${name}[${i}]`, c, 100, 599));
  return new Set(list as number[]);
}

function resolveRetry(
  retry: HttpRetryOptions | false | undefined,
  hedge: HedgeOptions | false | undefined,
): ResolvedRetry {
  let hedgeDelayMs = 0;
  if (hedge !== undefined && hedge !== false) {
    assertObject('hedge', hedge as unknown);
    assertKnownKeys('hedge', hedge as unknown as Record<string, unknown>, ['delayMs']);
    assertInteger('hedge.delayMs', hedge.delayMs, 1, DAY_MS);
    hedgeDelayMs = hedge.delayMs;
  }
  if (retry === false) {
    if (hedgeDelayMs > 0) throw new InvalidArgumentError('hedge needs retries: it cannot be set with retry: false');
    return Object.freeze({ maxAttempts: 1, statusCodes: new Set<number>(), perTryTimeoutMs: 0, hedgeDelayMs: 0 });
  }
  const r = retry ?? {};
  assertObject('retry', r as unknown);
  assertKnownKeys('retry', r as Record<string, unknown>, ['maxAttempts', 'statusCodes', 'perTryTimeoutMs']);
  const maxAttempts = r.maxAttempts ?? 3;
  assertInteger('retry.maxAttempts', maxAttempts, 1, 10);
  const perTry = r.perTryTimeoutMs ?? DEFAULT_PER_TRY_TIMEOUT_MS;
  if (perTry !== false) assertInteger('retry.perTryTimeoutMs', perTry, 1, DAY_MS);
  return Object.freeze({
    maxAttempts,
    statusCodes: statusList('retry.statusCodes', r.statusCodes, DEFAULT_STATUSES),
    perTryTimeoutMs: perTry === false ? 0 : perTry,
    hedgeDelayMs,
  });
}

/** Applies defaults, validates (errors name the option and the value) and freezes the dispatcher's options. */
export function resolveDispatcherOptions(input: ShoalDispatcherOptions = {}): ResolvedDispatcherOptions {
  assertObject('options', input as unknown);
  assertKnownKeys('options', input as Record<string, unknown>, KNOWN);
  if (input.watcher !== undefined && typeof (input.watcher as { watch?: unknown }).watch !== 'function') {
    throw new InvalidArgumentError(`watcher must be a ServiceWatcher, got ${describeValue(input.watcher)}`);
  }
  const names = new ServiceNameResolver(input.services ?? {}, input.domain ?? 'service.consul');
  const loadHeader = input.loadHeader ?? LOAD_HEADER;
  if (loadHeader !== false) assertString('loadHeader', loadHeader, { pattern: /^[A-Za-z0-9-]+$/ });
  const resolveTimeoutMs = input.resolveTimeoutMs ?? 5000;
  assertPositiveInteger('resolveTimeoutMs', resolveTimeoutMs);
  if (input.fallback !== undefined && typeof (input.fallback as { dispatch?: unknown }).dispatch !== 'function') {
    throw new InvalidArgumentError(`fallback must be an undici Dispatcher, got ${describeValue(input.fallback)}`);
  }
  if (input.pool !== undefined) assertObject('pool', input.pool as unknown);
  const clock = input.clock ?? realClock;
  const chosen: BalancerOptions = {};
  for (const key of BALANCER_KEYS) {
    if (input[key] !== undefined) (chosen as Record<string, unknown>)[key] = input[key];
  }
  // The balancer names its own options (`slowStart.windowMs ...`), which are the dispatcher's options too.
  const balancer = resolveBalancerOptions({ ...chosen, clock });
  if (typeof balancer.strategy === 'string' && getStrategyFactory(balancer.strategy) === undefined) {
    throw new InvalidArgumentError(
      `strategy must be one of ${strategyNames()
        .map((n) => JSON.stringify(n))
        .join(', ')}, got ${describeValue(balancer.strategy)}`,
    );
  }
  const logger = componentLogger(input.logger, 'http-dispatcher');
  const registry = input.registry ?? new Registry();
  return Object.freeze({
    watcher: input.watcher,
    consul: input.consul,
    names,
    activator: resolveActivator(input.activator, { logger, registry, clock }),
    balancer,
    retry: resolveRetry(input.retry, input.hedge),
    failureStatusCodes: statusList('failureStatusCodes', input.failureStatusCodes, DEFAULT_STATUSES),
    loadHeader: loadHeader === false ? undefined : loadHeader.toLowerCase(),
    pool: input.pool ?? {},
    fallback: input.fallback,
    resolveTimeoutMs,
    logger,
    registry,
    clock,
  });
}

function resolveActivator(
  input: ActivatorOptions | Activator | false | undefined,
  shared: { logger: Logger; registry: MetricsRegistry; clock: Clock },
): ResolvedDispatcherOptions['activator'] {
  if (input === undefined || input === false) return undefined;
  if (input instanceof Activator) return { activator: input, owned: false };
  assertObject('activator', input as unknown);
  // Validated first, so an error names `activator.<option>`.
  resolveActivatorOptions(input, 'activator');
  return { activator: new Activator({ ...shared, ...input }), owned: true };
}
