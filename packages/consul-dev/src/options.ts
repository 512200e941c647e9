import {
  assertInteger,
  assertKnownKeys,
  assertObject,
  assertPort,
  assertPositiveInteger,
  assertString,
  realClock,
  silentLogger,
} from '@shoal/core';
import type { Clock, Logger, MetricsRegistry } from '@shoal/core';
import { InvalidArgumentError } from '@shoal/core';
import { overflowSafeClock } from './overflow-safe-clock.js';

export interface ConsulDevOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; 0 picks a free port. Default 8500. */
  port?: number;
  /** When set, ACLs are on: requests must carry this token (`X-Consul-Token`, `?token=` or `Authorization: Bearer`). */
  aclToken?: string;
  /** Time source for TTLs, blocking waits, sessions and the reaper. Default: the real clock. */
  clock?: Clock;
  logger?: Logger;
  /** Largest request body accepted; larger ones get 413. Default 524288 (Consul's kv_max_value_size). */
  maxBodyBytes?: number;
  /** Node name reported everywhere. Default `shoal-dev`. */
  nodeName?: string;
  /** Datacenter name. Default `dc1`. */
  datacenter?: string;
  /** Random source in [0, 1) for blocking-query jitter and check staggering. Default `Math.random`. */
  random?: () => number;
  /**
   * A prom-client `Registry`: when given, the server counts requests and serves `GET /metrics` (requests by endpoint
   * and code, blocking queries open, services, instances, sessions) from it. Default: none (no `/metrics`, and
   * prom-client is never loaded).
   */
  registry?: MetricsRegistry;
  /**
   * Connections open at once; further ones are closed as soon as they are accepted (counted in
   * `shoal_consul_dev_connections_refused_total`, logged at most once a minute). Default 2048.
   */
  maxConnections?: number;
  /**
   * Connections open at once from one client address (Consul's `http_max_conns_per_client`, whose default is 200).
   * Every local client shares `127.0.0.1`, so the default is higher: 1024.
   */
  maxConnectionsPerClient?: number;
  /** Largest request head (request line and headers); larger ones get 431. Default 16384 (Node's). */
  maxHeaderBytes?: number;
  /** A request's headers must arrive within this; otherwise 408 and the connection is closed. Default 10000. */
  headersTimeoutMs?: number;
  /**
   * The whole request (headers and body) must arrive within this; otherwise 408. It bounds receiving the request
   * only: a blocking query waits for its answer as long as its `wait` says. Default 30000.
   */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. Default 30000. */
  keepAliveTimeoutMs?: number;
}

export interface ResolvedConsulDevOptions {
  readonly host: string;
  readonly port: number;
  readonly aclToken: string | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  readonly nodeName: string;
  readonly datacenter: string;
  readonly random: () => number;
  readonly registry: MetricsRegistry | undefined;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

const KNOWN = [
  'host',
  'port',
  'aclToken',
  'clock',
  'logger',
  'maxBodyBytes',
  'nodeName',
  'datacenter',
  'random',
  'registry',
  'maxConnections',
  'maxConnectionsPerClient',
  'maxHeaderBytes',
  'headersTimeoutMs',
  'requestTimeoutMs',
  'keepAliveTimeoutMs',
];

/** `input[name]` (or `fallback`), an integer in [min, max]. */
function intOption(input: ConsulDevOptions, name: keyof ConsulDevOptions, fallback: number, min: number, max: number) {
  const value = input[name] ?? fallback;
  assertInteger(name, value, min, max);
  return value as number;
}

/** Applies defaults, validates and freezes `startConsulDev` options; throws InvalidArgumentError naming the option. */
export function resolveConsulDevOptions(input: ConsulDevOptions = {}): ResolvedConsulDevOptions {
  const raw: unknown = input;
  assertObject('options', raw);
  assertKnownKeys('options', raw, KNOWN);
  const host = input.host ?? '127.0.0.1';
  assertString('host', host);
  const port = input.port ?? 8500;
  assertPort('port', port);
  if (input.aclToken !== undefined) assertString('aclToken', input.aclToken);
  const maxBodyBytes = input.maxBodyBytes ?? 512 * 1024;
  assertPositiveInteger('maxBodyBytes', maxBodyBytes);
  assertInteger('maxBodyBytes', maxBodyBytes, 1, 1024 * 1024 * 1024);
  const nodeName = input.nodeName ?? 'shoal-dev';
  assertString('nodeName', nodeName, { pattern: /^[A-Za-z0-9_.-]+$/ });
  const datacenter = input.datacenter ?? 'dc1';
  assertString('datacenter', datacenter, { pattern: /^[A-Za-z0-9_-]+$/ });
  const clock: Clock = input.clock ?? realClock;
  if (typeof clock !== 'object' || clock === null || typeof clock.setTimeout !== 'function')
    throw new InvalidArgumentError(`clock must be a Clock, got ${typeof clock}`);
  const random: () => number = input.random ?? Math.random;
  if (typeof random !== 'function') throw new InvalidArgumentError(`random must be a function, got ${typeof random}`);
  if (input.registry !== undefined && typeof (input.registry as { metrics?: unknown }).metrics !== 'function') {
    throw new InvalidArgumentError('registry must be a prom-client Registry');
  }
  return Object.freeze({
    maxConnections: intOption(input, 'maxConnections', 2048, 1, 1_000_000),
    maxConnectionsPerClient: intOption(input, 'maxConnectionsPerClient', 1024, 1, 1_000_000),
    maxHeaderBytes: intOption(input, 'maxHeaderBytes', 16 * 1024, 1024, 1024 * 1024),
    headersTimeoutMs: intOption(input, 'headersTimeoutMs', 10_000, 1, 3_600_000),
    requestTimeoutMs: intOption(input, 'requestTimeoutMs', 30_000, 1, 3_600_000),
    keepAliveTimeoutMs: intOption(input, 'keepAliveTimeoutMs', 30_000, 1, 3_600_000),
    registry: input.registry,
    host,
    port,
    aclToken: input.aclToken,
    clock: overflowSafeClock(clock),
    logger: input.logger ?? silentLogger,
    maxBodyBytes,
    nodeName,
    datacenter,
    random,
  });
}
