import { EventEmitter as NodeEventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type Consul from 'consul';
import { AbortedError, ConsulUnavailableError, TimeoutError, type Clock } from '@shoal/core';
import { classifyConsulError, consulStatusCode } from './consul-errors.js';
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

/** A KV entry as `GET /v1/kv/:key` returns it, with `Value` decoded to a UTF-8 string (null for an empty value). */
export interface KvEntry {
  Key: string;
  Value: string | null;
  /** The session holding the key's lock, when it is locked. */
  Session?: string;
  Flags?: number;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex?: number;
}

/** Query flags of `PUT /v1/kv/:key`; at most one of them (Consul answers 400 to more). */
export interface KvWriteFlags {
  /** Check-and-set: write only if the key's ModifyIndex is this (0: only if the key does not exist). */
  cas?: number;
  /** Take the key's lock for this session (false when another session holds it, or during its lock-delay). */
  acquire?: string;
  /** Give up the key's lock held by this session (false when the session does not hold it). */
  release?: string;
}

/** What `PUT /v1/session/create` receives (PascalCase as Consul reads it). */
export interface SessionCreateBody {
  Name: string;
  TTL?: string;
  LockDelay: string;
  Behavior: 'release' | 'delete';
}

/** A session as `/v1/session/list` and `/v1/session/info/:id` describe it (the fields Shoal reads). */
export interface SessionEntry {
  ID: string;
  Name?: string;
  Node?: string;
  TTL?: string;
  Behavior?: string;
  LockDelay?: number;
  CreateIndex?: number;
}

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

  /** `GET /v1/kv/:key`; undefined when the key does not exist (Consul's 404). */
  async kvGet(key: string, options: CallOptions = {}): Promise<KvEntry | undefined> {
    const [, body] = await this.call('kv.get', options, (ctx) =>
      this.consul.kv.get({ key, ...this.dc(), ...this.common(ctx) } as never),
    );
    if (body === undefined || body === null) return undefined;
    if (typeof body !== 'object' || typeof (body as KvEntry).Key !== 'string') {
      throw new ConsulUnavailableError(
        `consul kv.get at ${this.target} answered with something that is not a KV entry`,
      );
    }
    return body as KvEntry;
  }

  /** `PUT /v1/kv/:key` with the value as its body; resolves Consul's true/false (false: a cas/acquire/release lost). */
  async kvSet(key: string, value: string, flags: KvWriteFlags = {}, options: CallOptions = {}): Promise<boolean> {
    const [, body] = await this.call('kv.set', options, (ctx) =>
      this.consul.kv.set({ key, value, ...flags, ...this.dc(), ...this.common(ctx) } as never),
    );
    return body === true || body === 'true';
  }

  /** `PUT /v1/session/create`; resolves the new session's ID. */
  async sessionCreate(body: SessionCreateBody, options: CallOptions = {}): Promise<string> {
    const [, result] = await this.call('session.create', options, (ctx) =>
      this.consul.session.create({
        name: body.Name,
        lockdelay: body.LockDelay,
        behavior: body.Behavior,
        ...(body.TTL !== undefined ? { ttl: body.TTL } : {}),
        ...this.dc(),
        ...this.common(ctx),
      } as never),
    );
    const id = (result as { ID?: unknown } | undefined)?.ID;
    if (typeof id !== 'string' || id.length === 0) {
      throw new ConsulUnavailableError(`consul session.create at ${this.target} answered without a session ID`);
    }
    return id;
  }

  /** `PUT /v1/session/renew/:id`; false when Consul no longer has the session (its 404). */
  async sessionRenew(id: string, options: CallOptions = {}): Promise<boolean> {
    try {
      const [, body] = await this.call('session.renew', options, (ctx) =>
        this.consul.session.renew({ id, ...this.dc(), ...this.common(ctx) } as never),
      );
      return Array.isArray(body) ? body.length > 0 : Boolean(body);
    } catch (error) {
      if (consulStatusCode(error) === 404) return false;
      throw error;
    }
  }

  /** `PUT /v1/session/destroy/:id` (idempotent: an unknown session is fine). */
  async sessionDestroy(id: string, options: CallOptions = {}): Promise<void> {
    await this.call('session.destroy', options, (ctx) =>
      this.consul.session.destroy({ id, ...this.dc(), ...this.common(ctx) } as never),
    );
  }

  /** `GET /v1/session/list`: every session in the datacenter. */
  async sessionList(options: CallOptions = {}): Promise<SessionEntry[]> {
    const [, body] = await this.call('session.list', options, (ctx) =>
      this.consul.session.list({ ...this.dc(), ...this.common(ctx) } as never),
    );
    if (!Array.isArray(body)) {
      throw new ConsulUnavailableError(
        `consul session.list at ${this.target} answered with a ${typeof body} instead of a JSON array`,
      );
    }
    return body as SessionEntry[];
  }

  /** Closes the keep-alive sockets. */
  destroy(): void {
    this.consul.destroy();
  }

  private dc(): { dc?: string } {
    return this.conn.datacenter !== undefined ? { dc: this.conn.datacenter } : {};
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
