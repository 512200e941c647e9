import { EventEmitter as NodeEventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type Consul from 'consul';
import { AbortedError, ConsulUnavailableError, TimeoutError, type Clock } from '@shoal/core';
import { classifyConsulError } from './consul-errors.js';
import type { ResolvedConsulConnectionOptions } from './connection-options.js';

/** The part of a `/v1/health/service/:name` entry that Shoal reads (Consul sends PascalCase keys). */
export interface HealthServiceEntry {
  Node?: { Node?: string; Address?: string; Datacenter?: string } | null;
  Service?: {
    ID?: string;
    Service?: string;
    Address?: string;
    Port?: number;
    Tags?: string[] | null;
    Meta?: Record<string, string> | null;
    Weights?: { Passing?: number; Warning?: number } | null;
  } | null;
  Checks?: Array<{ CheckID?: string; Status?: string; ServiceID?: string }> | null;
}

export interface HealthServiceQuery {
  service: string;
  passing: boolean;
  tag?: string;
  filter?: string;
  datacenter?: string;
  /** Blocking index; 0n (or absent) answers at once. */
  index?: bigint;
  /** Blocking wait in ms (only used with an index > 0). */
  waitMs?: number;
}

export interface HealthServiceResult {
  entries: HealthServiceEntry[];
  /** `X-Consul-Index`, or undefined when the response had none (or an unparseable one). */
  index: bigint | undefined;
}

/** What Shoal sends to `PUT /v1/agent/service/register`. */
export interface ServiceDefinition {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Tags: string[];
  Meta: Record<string, string>;
  Weights: { Passing: number; Warning: number };
  Check: Record<string, string | boolean>;
}

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * The `consul` npm client is loaded when the first ConsulClient is built, not when @shoal/consul is imported, so
 * a process that imports this package without talking to Consul does not pay for the client's code.
 */
function loadConsulModule(): typeof Consul {
  return createRequire(import.meta.url)('consul') as typeof Consul;
}

interface ConsulInternals {
  _put(req: Record<string, unknown>, ...middleware: unknown[]): Promise<unknown>;
}

/**
 * The one place Shoal talks to the `consul` npm client. It adds what 2.0.1 lacks: a timeout and an abort signal on
 * every call (on the injected clock), `X-Consul-Index` from blocking queries, `Weights` and
 * `?replace-existing-checks` on register, typed results, and Shoal error codes.
 */
export class ConsulClient {
  readonly target: string;
  private readonly consul: Consul;

  constructor(
    private readonly conn: ResolvedConsulConnectionOptions,
    private readonly clock: Clock,
  ) {
    this.target = conn.url;
    const options: Record<string, unknown> = { baseUrl: `${conn.url}/v1` };
    if (conn.ca !== undefined) options.ca = conn.ca;
    // `baseUrl`/`ca` are real constructor options (papi passes them to http(s).request) that 2.0.1's d.ts omits.
    this.consul = new (loadConsulModule())(options as ConstructorParameters<typeof Consul>[0]);
  }

  /** Registers (or re-registers) the service, replacing checks a previous definition left behind. */
  async registerService(definition: ServiceDefinition, options: CallOptions = {}): Promise<void> {
    // node-consul 2.0.1's agent.service.register drops Weights and cannot send ?replace-existing-checks, so this
    // goes through the client's own papi transport with the body built here (reference §1.4).
    const internals = this.consul as unknown as ConsulInternals;
    await this.call('agent.service.register', options, (ctx) =>
      internals._put(
        {
          name: 'agent.service.register',
          path: '/agent/service/register',
          query: { 'replace-existing-checks': 'true' },
          headers: this.conn.token ? { 'x-consul-token': this.conn.token } : {},
          type: 'json',
          body: definition,
          ctx,
        },
        emptyResult,
      ),
    );
  }

  async deregisterService(id: string, options: CallOptions = {}): Promise<void> {
    await this.call('agent.service.deregister', options, (ctx) =>
      this.consul.agent.service.deregister({ id, ...this.common(ctx) } as never),
    );
  }

  /** pass/warn/fail a TTL check; `note` becomes the check's Output. */
  async updateTtlCheck(checkId: string, status: CheckStatus, note: string | undefined, options: CallOptions = {}) {
    const op = status === 'passing' ? 'pass' : status === 'warning' ? 'warn' : 'fail';
    await this.call(`agent.check.${op}`, options, (ctx) =>
      this.consul.agent.check[op]({
        id: checkId,
        ...(note !== undefined ? { note } : {}),
        ...this.common(ctx),
      } as never),
    );
  }

  /** IDs of the services the agent has registered (for presence checks of non-TTL registrations). */
  async agentServiceIds(options: CallOptions = {}): Promise<Set<string>> {
    const [, body] = await this.call('agent.service.list', options, (ctx) =>
      this.consul.agent.service.list(this.common(ctx) as never),
    );
    return new Set(Object.keys((body ?? {}) as Record<string, unknown>));
  }

  async healthService(query: HealthServiceQuery, options: CallOptions = {}): Promise<HealthServiceResult> {
    const params: Record<string, unknown> = { service: query.service, ...this.common(undefined) };
    if (query.passing) params.passing = true;
    if (query.tag !== undefined) params.tag = query.tag;
    if (query.filter !== undefined) params.filter = query.filter;
    const dc = query.datacenter ?? this.conn.datacenter;
    if (dc !== undefined) params.dc = dc;
    if (query.index !== undefined && query.index > 0n) {
      params.index = query.index.toString();
      if (query.waitMs !== undefined) params.wait = `${Math.max(1, Math.round(query.waitMs))}ms`;
    }
    const [res, body] = await this.call('health.service', options, (ctx) =>
      // health.service accepts index/wait/ctx at runtime; 2.0.1's types omit them (reference §1.11).
      this.consul.health.service({ ...params, ctx } as never),
    );
    if (!Array.isArray(body)) {
      throw new ConsulUnavailableError(
        `consul health.service at ${this.target} answered with a ${typeof body} instead of a JSON array`,
      );
    }
    return { entries: body as HealthServiceEntry[], index: parseIndex(res?.headers['x-consul-index']) };
  }

  /** Closes the keep-alive sockets. */
  destroy(): void {
    this.consul.destroy();
  }

  private common(ctx: NodeEventEmitter | undefined): Record<string, unknown> {
    return {
      ...(this.conn.token ? { token: this.conn.token } : {}),
      ...(ctx ? { ctx } : {}),
    };
  }

  /**
   * Runs one client call with a timeout and an abort signal. The client resolves `[response, body]` because the
   * ctx asks for `includeResponse`; aborting emits `cancel` on the ctx, which destroys the request.
   */
  private async call(
    operation: string,
    options: CallOptions,
    run: (ctx: NodeEventEmitter) => Promise<unknown>,
  ): Promise<[IncomingMessage | undefined, unknown]> {
    const timeoutMs = options.timeoutMs ?? this.conn.requestTimeoutMs;
    const signal = options.signal;
    if (signal?.aborted) throw new AbortedError(`consul ${operation} aborted before it was sent`);
    const ctx = ctx0();
    let timedOut = false;
    const cancel = () => ctx.emit('cancel');
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      cancel();
    }, timeoutMs);
    timer.unref();
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      const result = await run(ctx);
      if (Array.isArray(result) && result.length >= 1) {
        return [result[0] as IncomingMessage, result[1]];
      }
      return [undefined, result];
    } catch (error) {
      if (timedOut) {
        throw new ConsulUnavailableError(`consul ${operation} at ${this.target} timed out after ${timeoutMs} ms`, {
          cause: new TimeoutError(`timed out after ${timeoutMs} ms`, { cause: error }),
        });
      }
      throw classifyConsulError(error, operation, this.target);
    } finally {
      this.clock.clearTimeout(timer);
      signal?.removeEventListener('abort', cancel);
    }
  }
}

/** papi middleware that resolves with nothing (or `[response]` when the ctx asks for it). */
function emptyResult(
  request: { err?: unknown; res?: unknown; ctx?: { includeResponse?: boolean } },
  next: (stop: false, err?: unknown, value?: unknown) => void,
): void {
  if (request.err) {
    next(false, request.err);
    return;
  }
  next(false, undefined, request.ctx?.includeResponse ? [request.res] : undefined);
}

type Ctx = NodeEventEmitter & { includeResponse?: boolean };

function ctx0(): Ctx {
  const ctx = new NodeEventEmitter() as Ctx;
  ctx.includeResponse = true;
  return ctx;
}

function parseIndex(header: string | string[] | undefined): bigint | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  try {
    return BigInt(value);
  } catch {
    return undefined;
  }
}
