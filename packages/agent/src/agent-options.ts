import {
  InvalidArgumentError,
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertString,
  defaultInstanceAddress,
  defaultInstanceId,
  describeValue,
  realClock,
  silentLogger,
  type Clock,
  type Logger,
  type MetricsRegistry,
} from '@shoal/core';
import { INSTANCE_ID_PATTERN, LIMITS, SERVICE_NAME_PATTERN, type Capacity } from '@shoal/protocol';
import type { ConsulConnectionOptions, ServiceRegistrationOptions } from '@shoal/consul';
import { loadShoalConsul } from './registration.js';

/** TLS for the coordinator connection (PEM contents, not file names). */
export interface CoordinatorTlsOptions {
  /** CA bundle that signs the coordinator's certificate. Default: Node's root CAs. */
  ca?: string | Buffer;
  /** Client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to check the certificate against when it differs from the host in `url`. */
  serverName?: string;
}

export interface CoordinatorConnectionOptions {
  /**
   * Where to report, which also picks the transport:
   * - `http://host:port[/prefix]` or `https://…`: HTTP/JSON, one `POST <prefix>/v1/report` per report (no
   *   grpc-js or protobufjs loaded);
   * - `grpc://host:port` (plaintext), `grpcs://host:port` (TLS), `host:port` or any grpc-js target
   *   (`dns:///h:p`): one long-lived gRPC `Connect` stream.
   */
  url: string;
  /** Bearer token sent as `authorization: Bearer <token>` (gRPC metadata or HTTP header). */
  token?: string;
  /** `true` or TLS options to use TLS (implied by `grpcs://` and `https://`). Default false. */
  tls?: boolean | CoordinatorTlsOptions;
  /** gRPC: bound on one connection attempt (open the stream, send the Hello, be accepted). Default 5000. */
  connectTimeoutMs?: number;
  /** HTTP: bound on one `POST /v1/report` (connect, send, read the answer). Default 5000. */
  requestTimeoutMs?: number;
  /** gRPC: quiet time after which an open stream on a READY channel counts as accepted. Default 250. */
  confirmAfterMs?: number;
  /** Reports kept while the coordinator is unreachable; the oldest is dropped beyond. Default 60. */
  maxBufferedReports?: number;
  /** HTTP: attempts per report (the first and its retries) before it is dropped and counted. Default 5. */
  maxAttempts?: number;
  /** Backoff between failed attempts (gRPC: reconnects; HTTP: retries), full jitter. Default { baseMs: 500, capMs: 30000 }. */
  backoff?: { baseMs?: number; capMs?: number };
  /** Circuit breaker (opossum) around connection attempts. */
  breaker?: {
    /** Percentage of failed attempts (gRPC: connections; HTTP: POSTs) in the rolling window that opens it. Default 50. */
    errorThresholdPercentage?: number;
    /** Attempts in the window before it may open. Default 3. */
    volumeThreshold?: number;
    /** Time it stays open before letting one trial attempt through (half-open). Default 10000. */
    resetTimeoutMs?: number;
    /** Rolling window. Default 60000. */
    rollingCountTimeoutMs?: number;
  };
  /** gRPC: HTTP/2 keepalive ping interval, detects a dead coordinator on an idle stream. Default 30000. */
  keepaliveMs?: number;
  /**
   * When the coordinator refuses this agent's reports (a wrong or missing token, a service it does not know, a
   * report it rejects as invalid), also emit a process warning (`process.emitWarning`, printed on stderr, type
   * `ShoalWarning`, code `SHOAL_AGENT_REPORTS_REFUSED`) once per episode, so the problem shows even without a
   * logger. Default true; `false` leaves only the logger's line.
   */
  warnOnRefusal?: boolean;
}

export interface ResolvedCoordinatorOptions {
  readonly url: string;
  /** `http` for http(s):// URLs, else `grpc`. */
  readonly transport: 'grpc' | 'http';
  /** gRPC: the grpc-js target; HTTP: the full `POST` URL (`…/v1/report`). */
  readonly target: string;
  readonly secure: boolean;
  readonly token?: string;
  readonly tls: CoordinatorTlsOptions;
  readonly connectTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly confirmAfterMs: number;
  readonly maxBufferedReports: number;
  readonly maxAttempts: number;
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
  readonly breaker: {
    readonly errorThresholdPercentage: number;
    readonly volumeThreshold: number;
    readonly resetTimeoutMs: number;
    readonly rollingCountTimeoutMs: number;
  };
  readonly keepaliveMs: number;
  readonly warnOnRefusal: boolean;
}

export interface MetricsEndpointOptions {
  /** Serve /metrics on a small server of its own on this port (0 = a free port). Default: no own server. */
  port?: number;
  /** Host for the own server. Default '0.0.0.0'. */
  host?: string;
  /** Path. Default '/metrics'. */
  path?: string;
}

/** What the agent hands to `onDrained`. */
export interface DrainResult {
  reason: string;
  /** True when the deadline passed with requests still in flight. */
  timedOut: boolean;
  /** Requests still in flight when the drain ended (0 unless timed out). */
  inFlight: number;
}

/** Registration settings passed through to `@shoal/consul`'s `ServiceRegistration`. */
export interface AgentRegistrationOptions {
  tags?: string[];
  meta?: Record<string, string>;
  weight?: number;
  /** TTL check interval; the agent heartbeats it. Default 15000 (the ServiceRegistration default). */
  ttlMs?: number;
  deregisterCriticalServiceAfterMs?: number;
}

export interface AgentOptions {
  /** Service name (Consul name, protocol `Hello.service`). Required. */
  service: string;
  /** Port the service listens on (what clients connect to). Required. */
  port: number;
  /** Address clients use. Default: the first non-internal IPv4 address, else 127.0.0.1. */
  address?: string;
  /** Unique instance id. Default `<service>-<host name>-<port>-<8 hex random per process>` (`defaultInstanceId` of @shoal/core, as @shoal/consul's). */
  instanceId?: string;
  zone?: string;
  version?: string;
  capacity?: Capacity;
  /**
   * Consul connection to register through (`@shoal/consul`'s ConsulConnectionOptions; `{}` = the local agent at
   * http://127.0.0.1:8500). `undefined` or `false`: no registration.
   */
  consul?: ConsulConnectionOptions | false;
  registration?: AgentRegistrationOptions;
  /** The coordinator to report to. Default: none (signals still go to /metrics). */
  coordinator?: CoordinatorConnectionOptions;
  /** Report (and sampling) interval. Default 1000. */
  reportIntervalMs?: number;
  /** Bounds a coordinator-suggested interval is clamped to. Defaults 250 and 60000. */
  minReportIntervalMs?: number;
  maxReportIntervalMs?: number;
  /** How long start() waits for the Consul registration before going on (it keeps retrying). Default 10000. */
  registerTimeoutMs?: number;
  /** Deadline of a drain started by SIGTERM or `drain()` without argument. Default 30000. */
  drainDeadlineMs?: number;
  /** Wait after deregistering before refusing new work, so watchers see the change. Default 0. */
  drainGraceMs?: number;
  /**
   * On a handled signal (`handleSignals`, the kubelet's SIGTERM): how long the instance keeps serving after it went
   * unready and deregistered, before it refuses new work and drains — so Consul watchers, kube-proxy and ingress
   * controllers stop sending to it first (no `preStop` sleep needed). Used instead of `drainGraceMs` for signal
   * drains, within `drainDeadlineMs`. Default 5000.
   */
  terminationDelayMs?: number;
  /** `Retry-After` seconds on requests refused while draining. Default 1. */
  retryAfterSeconds?: number;
  /** Called once the drain finished. Default: `process.exit(0)`. */
  onDrained?: (result: DrainResult) => void | Promise<void>;
  /** Drain on these signals (`true` = SIGTERM). Default false (the application decides). */
  handleSignals?: boolean | NodeJS.Signals[];
  /** /metrics endpoint: `false` to leave it out of the Consul metadata. Default {} (handler only). */
  metrics?: MetricsEndpointOptions | false;
  /** Resolution of the event-loop delay monitor. Default 20. */
  eventLoopResolutionMs?: number;
  logger?: Logger;
  registry?: MetricsRegistry;
  clock?: Clock;
}

export interface ResolvedAgentOptions {
  readonly service: string;
  readonly port: number;
  readonly address: string;
  readonly instanceId: string;
  readonly zone?: string;
  readonly version?: string;
  readonly capacity?: Capacity;
  readonly consul: ConsulConnectionOptions | false;
  readonly registration: AgentRegistrationOptions;
  /** With `consul`: the ServiceRegistration options, validated once by createAgent(). */
  readonly consulRegistration?: ServiceRegistrationOptions;
  readonly coordinator?: ResolvedCoordinatorOptions;
  readonly reportIntervalMs: number;
  readonly minReportIntervalMs: number;
  readonly maxReportIntervalMs: number;
  readonly registerTimeoutMs: number;
  readonly drainDeadlineMs: number;
  readonly drainGraceMs: number;
  readonly terminationDelayMs: number;
  readonly retryAfterSeconds: number;
  readonly onDrained: (result: DrainResult) => void | Promise<void>;
  readonly signals: readonly NodeJS.Signals[];
  readonly metrics: false | { readonly port?: number; readonly host: string; readonly path: string };
  readonly eventLoopResolutionMs: number;
  readonly logger: Logger;
  /** The registry given; `undefined` when none was (the agent then creates one only when metrics are asked for). */
  readonly registry?: MetricsRegistry;
  readonly clock: Clock;
}

/** The default `terminationDelayMs`: a few Consul blocking-query round trips and an endpoints update by kube-proxy. */
export const DEFAULT_TERMINATION_DELAY_MS = 5000;

const AGENT_KEYS = [
  'service',
  'port',
  'address',
  'instanceId',
  'zone',
  'version',
  'capacity',
  'consul',
  'registration',
  'coordinator',
  'reportIntervalMs',
  'minReportIntervalMs',
  'maxReportIntervalMs',
  'registerTimeoutMs',
  'drainDeadlineMs',
  'drainGraceMs',
  'terminationDelayMs',
  'retryAfterSeconds',
  'onDrained',
  'handleSignals',
  'metrics',
  'eventLoopResolutionMs',
  'logger',
  'registry',
  'clock',
] as const;

const COORDINATOR_KEYS = [
  'url',
  'token',
  'tls',
  'connectTimeoutMs',
  'requestTimeoutMs',
  'confirmAfterMs',
  'maxBufferedReports',
  'maxAttempts',
  'backoff',
  'breaker',
  'keepaliveMs',
  'warnOnRefusal',
] as const;

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  assertBoolean(name, value);
  return value;
}

function exitProcess(): void {
  process.exit(0);
}

function optionalString(name: string, value: unknown, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  assertString(name, value, { maxLength });
  return value;
}

/** Checks an http(s) coordinator URL and returns the `POST` URL of its report endpoint (`<prefix>/v1/report`). */
function httpReportUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`coordinator.url is not a valid URL, got ${describeValue(url)}`);
  }
  if (parsed.hostname === '') throw new InvalidArgumentError(`coordinator.url has no host, got ${describeValue(url)}`);
  if (parsed.username !== '' || parsed.password !== '') {
    // Never echo credentials: the token option carries them.
    throw new InvalidArgumentError('coordinator.url must not hold credentials (user:password@); use coordinator.token');
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new InvalidArgumentError(
      `coordinator.url must not have a query or a fragment (the agent posts to <url>/v1/report), got ${describeValue(url)}`,
    );
  }
  const prefix = parsed.pathname.replace(/\/+$/, '');
  return `${parsed.protocol}//${parsed.host}${prefix}/v1/report`;
}

function resolveCoordinator(input: unknown): ResolvedCoordinatorOptions {
  assertObject('coordinator', input);
  assertKnownKeys('coordinator', input, COORDINATOR_KEYS);
  const c = input as unknown as CoordinatorConnectionOptions;
  assertString('coordinator.url', c.url, { maxLength: 2048 });
  let target = c.url;
  let secure = false;
  let transport: 'grpc' | 'http' = 'grpc';
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/(?!\/)(.*)$/i.exec(c.url);
  if (scheme) {
    const name = (scheme[1] as string).toLowerCase();
    if (name === 'grpc') target = scheme[2] as string;
    else if (name === 'grpcs') {
      target = scheme[2] as string;
      secure = true;
    } else if (name === 'http' || name === 'https') {
      transport = 'http';
      target = httpReportUrl(c.url);
      secure = name === 'https';
    } else {
      throw new InvalidArgumentError(
        `coordinator.url must be host:port, grpc://host:port, grpcs://host:port, http(s)://host:port[/prefix] or a grpc-js target, got ${describeValue(c.url)}`,
      );
    }
    if (transport === 'grpc') target = target.replace(/\/+$/, '');
    if (target.length === 0) {
      throw new InvalidArgumentError(`coordinator.url has no host, got ${describeValue(c.url)}`);
    }
  }
  if (c.token !== undefined) {
    // The value is a secret: the message describes it without quoting it.
    if (typeof c.token !== 'string' || !/^[\x21-\x7e]{1,4096}$/.test(c.token)) {
      throw new InvalidArgumentError(
        `coordinator.token must be 1..4096 printable ASCII characters without spaces, got ${
          typeof c.token === 'string' ? `a string of length ${c.token.length} (not shown)` : describeValue(c.token)
        }`,
      );
    }
  }
  let tls: CoordinatorTlsOptions = {};
  if (c.tls !== undefined && typeof c.tls !== 'boolean' && (typeof c.tls !== 'object' || c.tls === null)) {
    throw new InvalidArgumentError(`coordinator.tls must be a boolean or an object, got ${describeValue(c.tls)}`);
  }
  if (c.tls !== undefined && c.tls !== false) {
    if (transport === 'http' && !secure) {
      throw new InvalidArgumentError(
        `coordinator.tls needs an https:// coordinator.url (an http:// URL is plaintext), got ${describeValue(c.url)}`,
      );
    }
    secure = true;
    if (c.tls !== true) {
      assertObject('coordinator.tls', c.tls);
      assertKnownKeys('coordinator.tls', c.tls as Record<string, unknown>, ['ca', 'cert', 'key', 'serverName']);
      for (const k of ['ca', 'cert', 'key'] as const) {
        const v = c.tls[k];
        if (v !== undefined && typeof v !== 'string' && !Buffer.isBuffer(v)) {
          throw new InvalidArgumentError(
            `coordinator.tls.${k} must be a PEM string or Buffer, got ${describeValue(v)}`,
          );
        }
      }
      if ((c.tls.cert === undefined) !== (c.tls.key === undefined)) {
        throw new InvalidArgumentError('coordinator.tls.cert and coordinator.tls.key must be given together');
      }
      optionalString('coordinator.tls.serverName', c.tls.serverName, 253);
      tls = { ...c.tls };
    }
  }
  const int = (name: string, value: unknown, fallback: number, min: number, max: number): number => {
    const v = value ?? fallback;
    assertInteger(`coordinator.${name}`, v, min, max);
    return v;
  };
  const backoffIn = c.backoff ?? {};
  assertObject('coordinator.backoff', backoffIn);
  assertKnownKeys('coordinator.backoff', backoffIn, ['baseMs', 'capMs']);
  const baseMs = int('backoff.baseMs', backoffIn.baseMs, 500, 1, 3_600_000);
  const capMs = int('backoff.capMs', backoffIn.capMs, Math.max(30_000, baseMs), baseMs, 3_600_000);
  const breakerIn = c.breaker ?? {};
  assertObject('coordinator.breaker', breakerIn);
  assertKnownKeys('coordinator.breaker', breakerIn, [
    'errorThresholdPercentage',
    'volumeThreshold',
    'resetTimeoutMs',
    'rollingCountTimeoutMs',
  ]);
  return Object.freeze({
    url: c.url,
    transport,
    target,
    secure,
    ...(c.token !== undefined ? { token: c.token } : {}),
    tls: Object.freeze(tls),
    connectTimeoutMs: int('connectTimeoutMs', c.connectTimeoutMs, 5000, 1, 600_000),
    requestTimeoutMs: int('requestTimeoutMs', c.requestTimeoutMs, 5000, 1, 600_000),
    confirmAfterMs: int('confirmAfterMs', c.confirmAfterMs, 250, 0, 600_000),
    maxBufferedReports: int('maxBufferedReports', c.maxBufferedReports, 60, 1, 100_000),
    maxAttempts: int('maxAttempts', c.maxAttempts, 5, 1, 1000),
    backoff: Object.freeze({ baseMs, capMs }),
    breaker: Object.freeze({
      errorThresholdPercentage: int('breaker.errorThresholdPercentage', breakerIn.errorThresholdPercentage, 50, 1, 100),
      volumeThreshold: int('breaker.volumeThreshold', breakerIn.volumeThreshold, 3, 0, 1_000_000),
      resetTimeoutMs: int('breaker.resetTimeoutMs', breakerIn.resetTimeoutMs, 10_000, 1, 3_600_000),
      rollingCountTimeoutMs: int(
        'breaker.rollingCountTimeoutMs',
        breakerIn.rollingCountTimeoutMs,
        60_000,
        10,
        3_600_000,
      ),
    }),
    keepaliveMs: int('keepaliveMs', c.keepaliveMs, 30_000, 1000, 3_600_000),
    warnOnRefusal: flag('coordinator.warnOnRefusal', c.warnOnRefusal, true),
  });
}

/** `capacity`: the app's own hints, validated. */
function resolveCapacity(input: AgentOptions['capacity']): Capacity | undefined {
  if (input === undefined) return undefined;
  assertObject('capacity', input);
  assertKnownKeys('capacity', input as Record<string, unknown>, ['maxConcurrency', 'maxRps']);
  if (input.maxConcurrency !== undefined) {
    assertInteger('capacity.maxConcurrency', input.maxConcurrency, 1, LIMITS.maxConcurrencyHint);
  }
  const rps = input.maxRps;
  if (rps !== undefined && (typeof rps !== 'number' || !Number.isFinite(rps) || rps <= 0 || rps > LIMITS.maxRpsHint)) {
    throw new InvalidArgumentError(`capacity.maxRps must be a finite number > 0, got ${describeValue(rps)}`);
  }
  return { ...input };
}

/** `handleSignals`: false, true (SIGTERM) or a list of signal names. */
function resolveSignals(input: AgentOptions['handleSignals']): NodeJS.Signals[] {
  const hs = input ?? false;
  if (hs === true) return ['SIGTERM'];
  if (Array.isArray(hs)) {
    hs.forEach((s, i) => assertString(`handleSignals[${i}]`, s, { pattern: /^SIG[A-Z0-9]+$/ }));
    return [...hs];
  }
  if (hs !== false) {
    throw new InvalidArgumentError(
      `handleSignals must be a boolean or an array of signal names, got ${describeValue(hs)}`,
    );
  }
  return [];
}

/** `metrics`: false, or where the agent serves its own /metrics. */
function resolveMetrics(input: AgentOptions['metrics']): ResolvedAgentOptions['metrics'] {
  if (input === false) return false;
  const m = input ?? {};
  assertObject('metrics', m);
  assertKnownKeys('metrics', m as Record<string, unknown>, ['port', 'host', 'path']);
  if (m.port !== undefined) assertInteger('metrics.port', m.port, 0, 65535);
  const host = m.host ?? '0.0.0.0';
  assertString('metrics.host', host, { maxLength: 253 });
  const path = m.path ?? '/metrics';
  assertString('metrics.path', path, { maxLength: 256, pattern: /^\/[\x21-\x7e]*$/ });
  return Object.freeze({ ...(m.port !== undefined ? { port: m.port } : {}), host, path });
}

/** Applies defaults to `createAgent` options, validates them (errors name the option and the value), freezes. */
export function resolveAgentOptions(input: AgentOptions): ResolvedAgentOptions {
  assertObject('options', input);
  assertKnownKeys('options', input as unknown as Record<string, unknown>, AGENT_KEYS);
  assertString('service', input.service, { maxLength: LIMITS.maxServiceNameLength, pattern: SERVICE_NAME_PATTERN });
  assertInteger('port', input.port, 1, 65535);
  // The one default identity (@shoal/core), the same as @shoal/consul's ServiceRegistration uses.
  const address = input.address ?? defaultInstanceAddress();
  assertString('address', address, { maxLength: LIMITS.maxAddressLength });
  const instanceId = input.instanceId ?? defaultInstanceId(input.service, input.port);
  assertString('instanceId', instanceId, { maxLength: LIMITS.maxInstanceIdLength, pattern: INSTANCE_ID_PATTERN });
  const zone = optionalString('zone', input.zone, LIMITS.maxZoneLength);
  const version = optionalString('version', input.version, LIMITS.maxVersionLength);
  const capacity = resolveCapacity(input.capacity);
  const consul = input.consul ?? false;
  const registration = input.registration ?? {};
  assertObject('registration', registration);
  assertKnownKeys('registration', registration as Record<string, unknown>, [
    'tags',
    'meta',
    'weight',
    'ttlMs',
    'deregisterCriticalServiceAfterMs',
  ]);

  const minReportIntervalMs = input.minReportIntervalMs ?? 250;
  assertInteger('minReportIntervalMs', minReportIntervalMs, 10, LIMITS.maxReportIntervalMs);
  const maxReportIntervalMs = input.maxReportIntervalMs ?? LIMITS.maxReportIntervalMs;
  assertInteger('maxReportIntervalMs', maxReportIntervalMs, minReportIntervalMs, LIMITS.maxIntervalMs);
  const reportIntervalMs = input.reportIntervalMs ?? Math.min(Math.max(1000, minReportIntervalMs), maxReportIntervalMs);
  assertInteger('reportIntervalMs', reportIntervalMs, minReportIntervalMs, maxReportIntervalMs);
  const registerTimeoutMs = input.registerTimeoutMs ?? 10_000;
  assertInteger('registerTimeoutMs', registerTimeoutMs, 1, 3_600_000);
  const drainDeadlineMs = input.drainDeadlineMs ?? 30_000;
  assertInteger('drainDeadlineMs', drainDeadlineMs, 0, LIMITS.maxDrainDeadlineMs);
  const drainGraceMs = input.drainGraceMs ?? 0;
  assertInteger('drainGraceMs', drainGraceMs, 0, LIMITS.maxDrainDeadlineMs);
  // Default: 5 s, or half a short drain deadline, so in-flight work always keeps time to finish.
  const terminationDelayMs =
    input.terminationDelayMs ?? Math.min(DEFAULT_TERMINATION_DELAY_MS, Math.floor(drainDeadlineMs / 2));
  assertInteger('terminationDelayMs', terminationDelayMs, 0, LIMITS.maxDrainDeadlineMs);
  if (terminationDelayMs > 0 && terminationDelayMs >= drainDeadlineMs) {
    throw new InvalidArgumentError(
      `terminationDelayMs (${terminationDelayMs}) must be less than drainDeadlineMs (${drainDeadlineMs}): the drain bounds the delay and then needs time for in-flight work`,
    );
  }
  const retryAfterSeconds = input.retryAfterSeconds ?? 1;
  assertInteger('retryAfterSeconds', retryAfterSeconds, 0, 3600);
  if (input.onDrained !== undefined && typeof input.onDrained !== 'function') {
    throw new InvalidArgumentError(`onDrained must be a function, got ${describeValue(input.onDrained)}`);
  }
  const signals = resolveSignals(input.handleSignals);
  const metrics = resolveMetrics(input.metrics);
  const eventLoopResolutionMs = input.eventLoopResolutionMs ?? 20;
  assertInteger('eventLoopResolutionMs', eventLoopResolutionMs, 1, 1000);
  if (input.clock !== undefined && (typeof input.clock !== 'object' || typeof input.clock.setTimeout !== 'function')) {
    throw new InvalidArgumentError(`clock must be a Clock, got ${describeValue(input.clock)}`);
  }
  if (input.logger !== undefined && (typeof input.logger !== 'object' || typeof input.logger.child !== 'function')) {
    throw new InvalidArgumentError(`logger must be a pino-compatible logger, got ${describeValue(input.logger)}`);
  }
  if (
    input.registry !== undefined &&
    (typeof input.registry !== 'object' || typeof input.registry.metrics !== 'function')
  ) {
    throw new InvalidArgumentError(`registry must be a prom-client Registry, got ${describeValue(input.registry)}`);
  }

  // The registration, built and validated once here (this is when @shoal/consul, and only if `consul` is set, gets
  // loaded); start() adds the scrape Meta and the registry.
  let consulRegistration: ServiceRegistrationOptions | undefined;
  if (consul !== false) {
    const r = registration as AgentRegistrationOptions;
    consulRegistration = Object.freeze({
      consul,
      service: input.service,
      id: instanceId,
      address,
      port: input.port,
      ...(r.tags !== undefined ? { tags: [...r.tags] } : {}),
      meta: { ...r.meta },
      ...(zone !== undefined ? { zone } : {}),
      ...(version !== undefined ? { version } : {}),
      ...(r.weight !== undefined ? { weight: r.weight } : {}),
      check: { ttlMs: r.ttlMs ?? 15_000 },
      ...(r.deregisterCriticalServiceAfterMs !== undefined
        ? { deregisterCriticalServiceAfterMs: r.deregisterCriticalServiceAfterMs }
        : {}),
      logger: input.logger ?? silentLogger,
      clock: input.clock ?? realClock,
    });
    // A Meta key of the agent's own stands in for the scrape Meta added at start, so its size limits count.
    loadShoalConsul().resolveServiceRegistrationOptions({
      ...consulRegistration,
      meta: { ...consulRegistration.meta, shoal_metrics_port: '1' },
    });
  }

  return Object.freeze({
    service: input.service,
    port: input.port,
    address,
    instanceId,
    ...(zone !== undefined ? { zone } : {}),
    ...(version !== undefined ? { version } : {}),
    ...(capacity !== undefined ? { capacity } : {}),
    consul,
    registration: { ...registration },
    ...(consulRegistration !== undefined ? { consulRegistration } : {}),
    ...(input.coordinator !== undefined ? { coordinator: resolveCoordinator(input.coordinator) } : {}),
    reportIntervalMs,
    minReportIntervalMs,
    maxReportIntervalMs,
    registerTimeoutMs,
    drainDeadlineMs,
    drainGraceMs,
    terminationDelayMs,
    retryAfterSeconds,
    onDrained: input.onDrained ?? exitProcess,
    signals,
    metrics,
    eventLoopResolutionMs,
    logger: input.logger ?? silentLogger,
    ...(input.registry !== undefined ? { registry: input.registry } : {}),
    clock: input.clock ?? realClock,
  });
}
