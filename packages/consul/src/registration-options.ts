import { Registry } from 'prom-client';
import {
  InvalidArgumentError,
  MAX_INSTANCE_WEIGHT,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertPort,
  assertString,
  assertStringArray,
  componentLogger,
  createInstance,
  describeValue,
  realClock,
  resolveBackoffOptions,
  type Clock,
  type Instance,
  type Logger,
  type MetricsRegistry,
  type ResolvedBackoffOptions,
} from '@shoal/core';
import {
  resolveConsulConnectionOptions,
  type ConsulConnectionOptions,
  type ResolvedConsulConnectionOptions,
} from './connection-options.js';
import { defaultInstanceId, firstNonInternalIPv4 } from './default-address.js';

/** A TTL check the registration keeps passing with heartbeats (the default). */
export interface TtlCheckOptions {
  /** Time Consul waits for a heartbeat before marking the check critical, in ms. Default 15000. */
  ttlMs?: number;
  /** Heartbeat period in ms; must be below ttlMs. Default ttlMs / 3. */
  heartbeatIntervalMs?: number;
}

interface ActiveCheckCommon {
  /** How often Consul runs the check, in ms (>= 1000). Default 10000. */
  intervalMs?: number;
  /** Per-run timeout Consul applies, in ms. Default: Consul's (10 s). */
  timeoutMs?: number;
  /** How often the registration asks the agent whether it still has the instance, in ms. Default 10000. */
  presenceIntervalMs?: number;
}
/** Consul GETs this URL; 2xx passes, 429 warns, anything else fails. */
export interface HttpCheckOptions extends ActiveCheckCommon {
  http: string;
}
/** Consul opens a TCP connection to `host:port`. */
export interface TcpCheckOptions extends ActiveCheckCommon {
  tcp: string;
}
/** Consul calls grpc.health.v1.Health/Check on `host:port[/service]`. */
export interface GrpcCheckOptions extends ActiveCheckCommon {
  grpc: string;
  grpcUseTls?: boolean;
}

export type CheckOptions = TtlCheckOptions | HttpCheckOptions | TcpCheckOptions | GrpcCheckOptions;

export interface ServiceRegistrationOptions {
  consul?: ConsulConnectionOptions;
  /** Service name, e.g. `orders`. */
  service: string;
  /** Instance (Consul service) id. Default `<service>-<hostname>-<port>-<random per process>`. */
  id?: string;
  /** Address other services reach this instance on. Default: the first non-internal IPv4 of this host. */
  address?: string;
  port: number;
  tags?: string[];
  /** Extra service meta (string values; keys [A-Za-z0-9_-], at most 64 pairs). */
  meta?: Record<string, string>;
  /** Availability zone, sent as meta `zone`. */
  zone?: string;
  /** Version, sent as meta `version`. */
  version?: string;
  /** Relative weight 1..10000, sent as meta `weight` and as Consul `Weights.Passing`. Default 1. */
  weight?: number;
  /** Consul's own weights (used by DNS SRV). Default { passing: weight, warning: 1 }. */
  weights?: { passing?: number; warning?: number };
  /** The health check. Default a TTL check: { ttlMs: 15000 }. */
  check?: CheckOptions;
  /** Consul removes the instance after its check has been critical this long, in ms (Consul's minimum: 60000). Default 60000. */
  deregisterCriticalServiceAfterMs?: number;
  /**
   * Backoff between register attempts and between heartbeat retries while Consul is unreachable or failing. Default
   * { baseMs: 250, capMs: 2000 }: a registration notices within 2 s that Consul is back (a heartbeat answered 404
   * "unknown check" by a Consul that lost its state) and registers again at once.
   */
  backoff?: { baseMs?: number; capMs?: number; random?: () => number };
  /** close() gives up deregistering after this long, in ms. Default 5000. */
  closeTimeoutMs?: number;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export type ResolvedCheck =
  | { readonly kind: 'ttl'; readonly ttlMs: number; readonly heartbeatIntervalMs: number }
  | {
      readonly kind: 'http' | 'tcp' | 'grpc';
      readonly target: string;
      readonly intervalMs: number;
      readonly timeoutMs?: number;
      readonly grpcUseTls?: boolean;
      readonly presenceIntervalMs: number;
    };

export interface ResolvedServiceRegistrationOptions {
  readonly consul: ResolvedConsulConnectionOptions;
  readonly instance: Instance;
  readonly weights: { readonly passing: number; readonly warning: number };
  readonly check: ResolvedCheck;
  readonly deregisterCriticalServiceAfterMs: number;
  readonly backoff: ResolvedBackoffOptions;
  readonly closeTimeoutMs: number;
  readonly logger: Logger;
  readonly registry: MetricsRegistry;
  readonly clock: Clock;
}

const KEYS = [
  'consul',
  'service',
  'id',
  'address',
  'port',
  'tags',
  'meta',
  'zone',
  'version',
  'weight',
  'weights',
  'check',
  'deregisterCriticalServiceAfterMs',
  'backoff',
  'closeTimeoutMs',
  'logger',
  'registry',
  'clock',
] as const;
const SERVICE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const META_KEY_RE = /^[A-Za-z0-9_-]+$/;
const ACTIVE_KEYS = ['intervalMs', 'timeoutMs', 'presenceIntervalMs'];

export function resolveServiceRegistrationOptions(
  input: ServiceRegistrationOptions,
  interfaces?: Parameters<typeof firstNonInternalIPv4>[0],
): ResolvedServiceRegistrationOptions {
  assertObject('options', input as unknown);
  assertKnownKeys('ServiceRegistration options', input as unknown as Record<string, unknown>, KEYS);
  const consul = resolveConsulConnectionOptions(input.consul);

  assertString('service', input.service, { maxLength: 128 });
  if (!SERVICE_RE.test(input.service)) {
    throw new InvalidArgumentError(
      `service must start with a letter or digit and hold only letters, digits, '.', '_' and '-', got ${describeValue(input.service)}`,
    );
  }
  assertPort('port', input.port);
  if (input.port === 0)
    throw new InvalidArgumentError('port must be the port the instance listens on (1-65535), got 0');
  const id = input.id ?? defaultInstanceId(input.service, input.port);
  assertString('id', id, { maxLength: 256, pattern: /^[^/\s?#%]+$/ });

  let address = input.address;
  if (address === undefined) {
    address = firstNonInternalIPv4(interfaces) ?? '127.0.0.1';
  }
  assertString('address', address, { maxLength: 255 });
  if (address === '0.0.0.0' || address === '::' || address === '[::]') {
    throw new InvalidArgumentError(
      `address must be an address others can reach, not a wildcard, got ${describeValue(address)}`,
    );
  }

  const tags = input.tags ?? [];
  assertStringArray('tags', tags);

  const meta: Record<string, string> = {};
  if (input.meta !== undefined) {
    assertObject('meta', input.meta);
    const entries = Object.entries(input.meta);
    if (entries.length > 64) throw new InvalidArgumentError(`meta must have at most 64 keys, got ${entries.length}`);
    for (const [k, v] of entries) {
      if (!META_KEY_RE.test(k) || k.length > 128 || k.toLowerCase().startsWith('consul-')) {
        throw new InvalidArgumentError(
          `meta keys must be 1-128 characters of [A-Za-z0-9_-] and not start with "consul-", got ${describeValue(k)}`,
        );
      }
      if (typeof v !== 'string' || v.length > 512) {
        throw new InvalidArgumentError(`meta.${k} must be a string of at most 512 characters, got ${describeValue(v)}`);
      }
      meta[k] = v;
    }
  }
  for (const key of ['zone', 'version'] as const) {
    const value = input[key];
    if (value === undefined) continue;
    assertString(key, value, { maxLength: 128 });
    if (meta[key] !== undefined && meta[key] !== value) {
      throw new InvalidArgumentError(
        `meta.${key} (${describeValue(meta[key])}) conflicts with ${key} (${describeValue(value)})`,
      );
    }
    meta[key] = value;
  }
  const weight = input.weight ?? 1;
  assertInteger('weight', weight, 1, MAX_INSTANCE_WEIGHT);
  if (input.weight !== undefined) {
    if (meta.weight !== undefined && meta.weight !== String(weight)) {
      throw new InvalidArgumentError(`meta.weight (${describeValue(meta.weight)}) conflicts with weight (${weight})`);
    }
    meta.weight = String(weight);
  }

  let weights = { passing: weight, warning: 1 };
  if (input.weights !== undefined) {
    assertObject('weights', input.weights);
    assertKnownKeys('weights', input.weights as Record<string, unknown>, ['passing', 'warning']);
    weights = { passing: input.weights.passing ?? weight, warning: input.weights.warning ?? 1 };
    assertInteger('weights.passing', weights.passing, 1, 65535);
    assertInteger('weights.warning', weights.warning, 1, 65535);
  }
  if (Object.keys(meta).length > 64)
    throw new InvalidArgumentError('meta with zone/version/weight must have at most 64 keys');

  const check = resolveCheck(input.check);

  const deregisterCriticalServiceAfterMs = input.deregisterCriticalServiceAfterMs ?? 60_000;
  assertInteger('deregisterCriticalServiceAfterMs', deregisterCriticalServiceAfterMs, 1_000);
  if (input.backoff !== undefined) assertObject('backoff', input.backoff);
  const backoff = resolveBackoffOptions({ baseMs: 250, capMs: 2000, ...input.backoff });
  const closeTimeoutMs = input.closeTimeoutMs ?? 5_000;
  assertInteger('closeTimeoutMs', closeTimeoutMs, 1);

  const zone = input.zone ?? meta.zone;
  const instance = createInstance({
    id,
    service: input.service,
    address,
    port: input.port,
    ...(zone !== undefined ? { zone } : {}),
    weight,
    tags,
    meta,
  });

  return Object.freeze({
    consul,
    instance,
    weights: Object.freeze(weights),
    check,
    deregisterCriticalServiceAfterMs,
    backoff,
    closeTimeoutMs,
    logger: componentLogger(input.logger, 'consul-registration', { service: input.service, instanceId: id }),
    registry: input.registry ?? new Registry(),
    clock: input.clock ?? realClock,
  });
}

function resolveCheck(input: CheckOptions | undefined): ResolvedCheck {
  const check = (input ?? {}) as Record<string, unknown>;
  assertObject('check', check);
  const kinds = (['http', 'tcp', 'grpc'] as const).filter((k) => check[k] !== undefined);
  if (kinds.length === 0) {
    assertKnownKeys('check', check, ['ttlMs', 'heartbeatIntervalMs']);
    const ttlMs = (check.ttlMs as number | undefined) ?? 15_000;
    assertInteger('check.ttlMs', ttlMs, 1_000);
    const heartbeatIntervalMs = (check.heartbeatIntervalMs as number | undefined) ?? Math.floor(ttlMs / 3);
    assertInteger('check.heartbeatIntervalMs', heartbeatIntervalMs, 100, ttlMs - 1);
    return Object.freeze({ kind: 'ttl', ttlMs, heartbeatIntervalMs });
  }
  if (kinds.length > 1) {
    throw new InvalidArgumentError(
      `check must have exactly one of http, tcp, grpc or ttlMs, got ${kinds.join(' and ')}`,
    );
  }
  const kind = kinds[0]!;
  assertKnownKeys('check', check, [kind, ...ACTIVE_KEYS, ...(kind === 'grpc' ? ['grpcUseTls'] : [])]);
  const target = check[kind];
  assertString(`check.${kind}`, target, { maxLength: 2048 });
  if (kind === 'http' && !/^https?:\/\/[^/\s]+/i.test(target)) {
    throw new InvalidArgumentError(`check.http must be an http(s) URL, got ${describeValue(target)}`);
  }
  if (kind !== 'http' && !/:\d+(\/.*)?$/.test(target)) {
    throw new InvalidArgumentError(
      `check.${kind} must be host:port${kind === 'grpc' ? '[/service]' : ''}, got ${describeValue(target)}`,
    );
  }
  const intervalMs = (check.intervalMs as number | undefined) ?? 10_000;
  assertInteger('check.intervalMs', intervalMs, 1_000);
  if (check.timeoutMs !== undefined) assertInteger('check.timeoutMs', check.timeoutMs, 1);
  const presenceIntervalMs = (check.presenceIntervalMs as number | undefined) ?? 10_000;
  assertInteger('check.presenceIntervalMs', presenceIntervalMs, 100);
  if (check.grpcUseTls !== undefined && typeof check.grpcUseTls !== 'boolean') {
    throw new InvalidArgumentError(`check.grpcUseTls must be a boolean, got ${describeValue(check.grpcUseTls)}`);
  }
  return Object.freeze({
    kind,
    target,
    intervalMs,
    presenceIntervalMs,
    ...(check.timeoutMs !== undefined ? { timeoutMs: check.timeoutMs as number } : {}),
    ...(check.grpcUseTls !== undefined ? { grpcUseTls: check.grpcUseTls as boolean } : {}),
  });
}

/** A Go duration string for `ms` ("15s", "1500ms"). */
export function goDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
