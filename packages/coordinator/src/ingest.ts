import * as grpc from '@grpc/grpc-js';
import {
  componentLogger,
  errorFields,
  isShoalError,
  realClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@shoal/core';
import {
  AUTHORIZATION_KEY,
  LIMITS,
  validateHello,
  validateReport,
  validateReportRequest,
  type CoordinatorClient,
  type CoordinatorMessage,
  type Directive,
  type Hello,
  type LoadReport,
  type ReportRequest,
  type ReportResponse,
  type WireAgentMessage,
  type WireCoordinatorMessage,
  loadCoordinatorService,
} from '@shoal/protocol';
import type { TokenAuthenticator } from './auth.js';
import type { CoordinatorMetrics } from './metrics.js';
import { RateLimiter } from './rate-limiter.js';
import { CapacityError, type ServiceWindow } from './service-window.js';

export type Transport = 'stream' | 'unary' | 'http';

/** A refusal with the gRPC status and HTTP status that carry it. */
export class IngestRefusal extends Error {
  constructor(
    readonly grpcCode: grpc.status,
    readonly httpStatus: number,
    readonly reason:
      'invalid' | 'unauthenticated' | 'permission_denied' | 'rate_limited' | 'capacity' | 'no_hello' | 'unavailable',
    message: string,
  ) {
    super(message);
    this.name = 'IngestRefusal';
  }
}

export interface IngestOptions {
  auth: TokenAuthenticator;
  windows: (service: string) => ServiceWindow | undefined;
  metrics: CoordinatorMetrics;
  reportsPerSecondPerInstance: number;
  maxStreams: number;
  /** A stream must say hello within this time. Default 10000. */
  helloTimeoutMs?: number;
  /** Called with the receipt→window latency of each accepted report, in ms, and the report (benchmarks). */
  onAccepted?: (latencyMs: number, report: LoadReport) => void;
  logger?: Logger;
  clock?: Clock;
}

interface Waiter {
  resolve: () => void;
}

/** One agent stream, local or relayed to the leader. */
class AgentSession {
  hello: Hello | undefined;
  lastReport: LoadReport | undefined;
  upstream: grpc.ClientDuplexStream<unknown, WireCoordinatorMessage> | undefined;
  upstreamRetry: TimerHandle | undefined;
  /** Relay attempts in a row that ended without a word from the leader (drives the relay backoff). */
  upstreamFailures = 0;
  helloTimer: TimerHandle | undefined;
  closed = false;
  constructor(
    readonly call: grpc.ServerDuplexStream<WireAgentMessage, CoordinatorMessage>,
    readonly authorization: string | undefined,
  ) {}
}

/**
 * Everything agents send comes through here: the gRPC `Connect` stream and unary `Report`, and `POST /v1/report`.
 * Each message is authenticated (the service's bearer token), validated (`@shoal/protocol`), rate-limited per
 * instance, and put into the service's window — or, on a follower, relayed to the leader over a stream of its own,
 * so the leader decides on complete data and its directives (drain) reach agents connected to any replica.
 */
export class Ingest {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly sessions = new Map<string, AgentSession>();
  private readonly allStreams = new Set<AgentSession>();
  private readonly drainWaiters = new Map<string, Waiter[]>();
  private readonly helloTimeoutMs: number;
  private local = true;
  private leaderAddress: string | undefined;
  private leaderClient: CoordinatorClient | undefined;
  private readonly Client = loadCoordinatorService(grpc).CoordinatorClient;

  constructor(private options: IngestOptions) {
    this.log = componentLogger(options.logger, 'ingest');
    this.clock = options.clock ?? realClock;
    this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
    // Burst of 3 so an agent reconnecting (hello + catch-up) is not refused; keys bounded by maxStreams × 2.
    this.limiter = new RateLimiter(
      options.reportsPerSecondPerInstance,
      Math.max(3, options.reportsPerSecondPerInstance),
      options.maxStreams * 2,
    );
  }

  /** Swaps the token table (config reload). */
  setAuth(auth: TokenAuthenticator): void {
    this.options = { ...this.options, auth };
  }

  get streamCount(): number {
    return this.allStreams.size;
  }

  /** Local (leader or alone) or relaying to `leaderGrpcAddress` (host:port). */
  setMode(local: boolean, leaderGrpcAddress?: string): void {
    const changed = local !== this.local || leaderGrpcAddress !== this.leaderAddress;
    if (!changed) return;
    const wasLocal = this.local;
    this.local = local;
    this.leaderAddress = local ? undefined : leaderGrpcAddress;
    this.leaderClient?.close();
    this.leaderClient = undefined;
    if (!local && leaderGrpcAddress) {
      try {
        this.leaderClient = new this.Client(leaderGrpcAddress, grpc.credentials.createInsecure());
      } catch (error) {
        // The leader advertised an address grpc-js cannot parse: relay nothing (agents hear "no leader known").
        this.log.warn({ leader: leaderGrpcAddress, ...errorFields(error) }, 'cannot relay to the leader');
      }
    }
    for (const s of this.allStreams) {
      if (!s.hello) continue;
      this.closeUpstream(s);
      if (local && !wasLocal) this.localHello(s.hello, 'stream', s);
      if (!local && wasLocal) this.options.windows(s.hello.service)?.connected(s.hello.instanceId, -1);
      if (!local) this.openUpstream(s);
    }
  }

  // ---- gRPC handlers -------------------------------------------------------------------------------------------

  readonly connect = (call: grpc.ServerDuplexStream<WireAgentMessage, CoordinatorMessage>): void => {
    const authorization = metadataValue(call.metadata, AUTHORIZATION_KEY);
    const session = new AgentSession(call, authorization);
    if (this.allStreams.size >= this.options.maxStreams) {
      this.refuseStream(
        session,
        new IngestRefusal(
          grpc.status.RESOURCE_EXHAUSTED,
          503,
          'capacity',
          `too many agent streams (${this.options.maxStreams})`,
        ),
      );
      return;
    }
    this.allStreams.add(session);
    this.options.metrics.streams.set(this.allStreams.size);
    session.helloTimer = this.clock.setTimeout(() => {
      if (!session.hello) {
        this.refuseStream(
          session,
          new IngestRefusal(grpc.status.INVALID_ARGUMENT, 400, 'no_hello', `no hello within ${this.helloTimeoutMs} ms`),
        );
      }
    }, this.helloTimeoutMs);
    session.helloTimer.unref();
    call.on('data', (message: WireAgentMessage) => {
      if (session.closed) return;
      try {
        this.onStreamMessage(session, message);
      } catch (error) {
        this.refuseStream(session, toRefusal(error));
      }
    });
    call.on('end', () => {
      this.endSession(session);
      call.end();
    });
    call.on('cancelled', () => this.endSession(session));
    call.on('error', () => this.endSession(session));
  };

  readonly report = (
    call: grpc.ServerUnaryCall<unknown, ReportResponse>,
    callback: grpc.sendUnaryData<ReportResponse>,
  ): void => {
    const authorization = metadataValue(call.metadata, AUTHORIZATION_KEY);
    this.acceptUnary(call.request, authorization, 'unary', true).then(
      (response) => callback(null, response),
      (error: unknown) => {
        const r = toRefusal(error);
        callback({ code: r.grpcCode, details: r.message });
      },
    );
  };

  /**
   * A unary report (gRPC `Report` or `POST /v1/report`). `request` is unvalidated unless `validated`.
   */
  async acceptUnary(
    request: unknown,
    authorization: string | undefined,
    transport: Transport,
    needsValidation: boolean,
  ): Promise<ReportResponse> {
    const at = this.clock.monotonic();
    let valid: ReportRequest;
    try {
      valid = needsValidation ? validateReportRequest(request) : (request as ReportRequest);
    } catch (error) {
      throw this.count(toRefusal(error), transport);
    }
    this.authorize(valid.hello.service, authorization, transport);
    if (!this.limiter.take(`${valid.hello.service}/${valid.hello.instanceId}`, this.clock.now())) {
      throw this.count(
        new IngestRefusal(
          grpc.status.RESOURCE_EXHAUSTED,
          429,
          'rate_limited',
          'report rate limit exceeded for this instance',
        ),
        transport,
      );
    }
    if (!this.local) return this.forwardUnary(valid, authorization, transport);
    this.localHello(valid.hello, transport);
    this.localReport(valid.hello, valid.report, transport, at);
    const directive = this.pendingDrain(valid.hello.service, valid.hello.instanceId);
    return directive ? { directive } : {};
  }

  /**
   * Sends `drain` to an instance and resolves once it is gone (its stream ended, or it reported not ready with
   * nothing in flight) or after `timeoutMs`. Resolves to how it ended.
   */
  async drain(
    service: string,
    instanceId: string,
    timeoutMs: number,
    reason: string,
  ): Promise<'drained' | 'timeout' | 'not-connected'> {
    const key = `${service}/${instanceId}`;
    this.options.windows(service)?.markDraining(instanceId);
    const session = this.sessions.get(key);
    const directive: Directive = { drain: { deadlineMs: timeoutMs, reason } };
    let sent = false;
    if (session && !session.closed) {
      session.call.write({ directive });
      sent = true;
    } else {
      this.pendingDrains.set(key, directive);
    }
    const waiter: Waiter = { resolve: () => {} };
    const done = new Promise<'drained'>((resolve) => (waiter.resolve = () => resolve('drained')));
    const list = this.drainWaiters.get(key) ?? [];
    list.push(waiter);
    this.drainWaiters.set(key, list);
    let timer: TimerHandle | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const result = await Promise.race([done, timeout]);
    this.clock.clearTimeout(timer);
    this.drainWaiters.delete(key);
    this.pendingDrains.delete(key);
    return result === 'timeout' && !sent ? 'not-connected' : result;
  }

  private readonly pendingDrains = new Map<string, Directive>();
  private readonly counters = new Map<string, { inc(): void }>();

  /** The labelled counter child, cached: hashing label sets on every report is measurable at 10,000 reports/s. */
  private receivedCounter(service: string, transport: Transport): { inc(): void } {
    const key = `${service}\u0000${transport}`;
    let c = this.counters.get(key);
    if (!c) {
      c = this.options.metrics.reportsReceived.labels({ service, transport });
      this.counters.set(key, c);
    }
    return c;
  }

  private pendingDrain(service: string, instanceId: string): Directive | undefined {
    return this.pendingDrains.get(`${service}/${instanceId}`);
  }

  /** Sends a directive to a connected instance; false when it has no stream here. */
  sendDirective(service: string, instanceId: string, directive: Directive): boolean {
    const s = this.sessions.get(`${service}/${instanceId}`);
    if (!s || s.closed) return false;
    s.call.write({ directive });
    return true;
  }

  close(): void {
    for (const s of [...this.allStreams]) {
      this.closeUpstream(s);
      if (!s.closed) s.call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'coordinator shutting down' });
      this.endSession(s);
    }
    this.leaderClient?.close();
    this.leaderClient = undefined;
    for (const list of this.drainWaiters.values()) for (const w of list) w.resolve();
    this.drainWaiters.clear();
  }

  // ---- internals -----------------------------------------------------------------------------------------------

  private count(refusal: IngestRefusal, transport: Transport): IngestRefusal {
    this.options.metrics.reportsRefused.inc({ reason: refusal.reason, transport });
    return refusal;
  }

  private authorize(service: string, authorization: string | undefined, transport: Transport): void {
    if (!this.options.windows(service)) {
      throw this.count(
        new IngestRefusal(
          grpc.status.PERMISSION_DENIED,
          403,
          'permission_denied',
          `service "${service}" is not configured on this coordinator`,
        ),
        transport,
      );
    }
    const result = this.options.auth.check(service, authorization);
    if (!result.ok) {
      throw this.count(
        result.status === 'unauthenticated'
          ? new IngestRefusal(grpc.status.UNAUTHENTICATED, 401, 'unauthenticated', result.reason)
          : new IngestRefusal(grpc.status.PERMISSION_DENIED, 403, 'permission_denied', result.reason),
        transport,
      );
    }
  }

  private onStreamMessage(session: AgentSession, message: WireAgentMessage): void {
    const at = this.clock.monotonic();
    const kind = message?.msg ?? (message?.hello ? 'hello' : message?.report ? 'report' : undefined);
    if (kind === 'hello') {
      if (session.hello)
        throw this.count(
          new IngestRefusal(grpc.status.INVALID_ARGUMENT, 400, 'invalid', 'hello sent twice on one stream'),
          'stream',
        );
      let hello: Hello;
      try {
        hello = validateHello(message.hello);
      } catch (error) {
        throw this.count(toRefusal(error), 'stream');
      }
      this.authorize(hello.service, session.authorization, 'stream');
      const key = `${hello.service}/${hello.instanceId}`;
      const previous = this.sessions.get(key);
      if (previous && previous !== session) {
        // The same instance reconnected: the new stream wins.
        this.closeUpstream(previous);
        previous.call.emit('error', {
          code: grpc.status.ALREADY_EXISTS,
          details: 'replaced by a newer stream for this instance',
        });
        this.endSession(previous);
      }
      if (this.local) this.localHello(hello, 'stream', session);
      session.hello = hello;
      this.sessions.set(key, session);
      this.clock.clearTimeout(session.helloTimer);
      // Answer a valid hello at once: the agent counts its stream as accepted on the first directive, and learns
      // the interval this service reports at.
      const interval = this.options.windows(hello.service)?.reportIntervalMs;
      if (interval !== undefined) {
        session.call.write({
          directive: {
            reportIntervalMs: Math.min(LIMITS.maxReportIntervalMs, Math.max(LIMITS.minReportIntervalMs, interval)),
          },
        });
      }
      if (!this.local) this.openUpstream(session);
      return;
    }
    if (kind === 'report') {
      if (!session.hello)
        throw this.count(
          new IngestRefusal(
            grpc.status.INVALID_ARGUMENT,
            400,
            'no_hello',
            'the first message on a stream must be hello',
          ),
          'stream',
        );
      let report: LoadReport;
      try {
        report = validateReport(message.report);
      } catch (error) {
        throw this.count(toRefusal(error), 'stream');
      }
      const key = `${session.hello.service}/${session.hello.instanceId}`;
      if (!this.limiter.take(key, this.clock.now())) {
        // Dropped and counted; a stream that keeps flooding is not worth closing (it costs O(1) per message).
        this.count(new IngestRefusal(grpc.status.RESOURCE_EXHAUSTED, 429, 'rate_limited', 'rate limited'), 'stream');
        return;
      }
      session.lastReport = report;
      if (this.local) this.localReport(session.hello, report, 'stream', at);
      else session.upstream?.write({ report });
      return;
    }
    throw this.count(
      new IngestRefusal(grpc.status.INVALID_ARGUMENT, 400, 'invalid', 'message must hold hello or report'),
      'stream',
    );
  }

  private localHello(hello: Hello, transport: Transport, session?: AgentSession): void {
    const window = this.options.windows(hello.service);
    if (!window) return;
    try {
      const isNew = !window.has(hello.instanceId);
      window.hello(hello, this.clock.now());
      if (session && (isNew || transport === 'stream')) window.connected(hello.instanceId, 1);
    } catch (error) {
      if (error instanceof CapacityError) {
        throw this.count(new IngestRefusal(grpc.status.RESOURCE_EXHAUSTED, 503, 'capacity', error.message), transport);
      }
      throw error;
    }
  }

  private localReport(hello: Hello, report: LoadReport, transport: Transport, receivedAt: number): void {
    const window = this.options.windows(hello.service);
    if (!window) return;
    window.report(hello.instanceId, report, this.clock.now());
    this.receivedCounter(hello.service, transport).inc();
    this.options.onAccepted?.(this.clock.monotonic() - receivedAt, report);
    if (!report.ready && report.inFlight === 0 && window.isDraining(hello.instanceId)) {
      this.resolveDrain(`${hello.service}/${hello.instanceId}`);
    }
  }

  private resolveDrain(key: string): void {
    const list = this.drainWaiters.get(key);
    if (list) for (const w of list) w.resolve();
  }

  private endSession(session: AgentSession): void {
    if (session.closed) return;
    session.closed = true;
    this.clock.clearTimeout(session.helloTimer);
    this.closeUpstream(session);
    this.allStreams.delete(session);
    this.options.metrics.streams.set(this.allStreams.size);
    if (session.hello) {
      const key = `${session.hello.service}/${session.hello.instanceId}`;
      if (this.sessions.get(key) === session) {
        this.sessions.delete(key);
        this.options.windows(session.hello.service)?.connected(session.hello.instanceId, -1);
        this.resolveDrain(key);
      }
    }
  }

  private refuseStream(session: AgentSession, refusal: IngestRefusal): void {
    this.log.debug({ reason: refusal.reason, details: refusal.message }, 'stream refused');
    if (!session.closed) session.call.emit('error', { code: refusal.grpcCode, details: refusal.message });
    this.endSession(session);
  }

  private openUpstream(session: AgentSession): void {
    const client = this.leaderClient;
    const hello = session.hello;
    if (!client || !hello || session.closed) return;
    const metadata = new grpc.Metadata();
    if (session.authorization) metadata.set(AUTHORIZATION_KEY, session.authorization);
    const upstream = client.connect(metadata) as unknown as grpc.ClientDuplexStream<unknown, WireCoordinatorMessage>;
    session.upstream = upstream;
    upstream.on('data', (m: WireCoordinatorMessage) => {
      // Directives from the leader go down to the agent as they are (the agent validates them).
      session.upstreamFailures = 0; // the leader answered: the relay works
      if (!session.closed && m?.directive) session.call.write({ directive: m.directive as Directive });
    });
    const retry = (error?: { code?: number; details?: string }) => {
      if (session.upstream !== upstream) return;
      session.upstream = undefined;
      if (session.closed || this.local) return;
      // The leader refused the agent itself: pass the refusal on instead of retrying.
      if (
        error &&
        (error.code === grpc.status.UNAUTHENTICATED ||
          error.code === grpc.status.PERMISSION_DENIED ||
          error.code === grpc.status.INVALID_ARGUMENT)
      ) {
        this.refuseStream(
          session,
          new IngestRefusal(error.code, 400, 'invalid', error.details ?? 'refused by the leader'),
        );
        return;
      }
      session.upstreamRetry = this.clock.setTimeout(
        () => this.openUpstream(session),
        relayRetryDelayMs(session.upstreamFailures++),
      );
      session.upstreamRetry.unref();
    };
    upstream.on('error', (e: grpc.ServiceError) => retry(e));
    upstream.on('end', () => retry());
    upstream.write({ hello });
    if (session.lastReport) upstream.write({ report: session.lastReport });
  }

  private closeUpstream(session: AgentSession): void {
    this.clock.clearTimeout(session.upstreamRetry);
    session.upstreamRetry = undefined;
    const up = session.upstream;
    session.upstream = undefined;
    if (up) {
      up.on('error', () => {});
      up.cancel();
    }
  }

  private forwardUnary(
    request: ReportRequest,
    authorization: string | undefined,
    transport: Transport,
  ): Promise<ReportResponse> {
    const client = this.leaderClient;
    if (!client) {
      return Promise.reject(
        this.count(
          new IngestRefusal(grpc.status.UNAVAILABLE, 503, 'unavailable', 'no leader known yet; retry'),
          transport,
        ),
      );
    }
    const metadata = new grpc.Metadata();
    if (authorization) metadata.set(AUTHORIZATION_KEY, authorization);
    return new Promise((resolve, reject) => {
      client.report(request, metadata, { deadline: Date.now() + 5000 }, (error, response) => {
        if (error) {
          reject(
            new IngestRefusal(
              error.code,
              error.code === grpc.status.UNAVAILABLE ? 503 : 400,
              'unavailable',
              error.details,
            ),
          );
          return;
        }
        resolve((response ?? {}) as ReportResponse);
      });
    });
  }
}

/**
 * Wait before relay attempt `failures + 1`: exponential from 500 ms to 15 s, with the upper half jittered, so a leader
 * that refuses (or drops) every relayed stream sees each follower session back off instead of retrying twice a second.
 */
function relayRetryDelayMs(failures: number): number {
  const ceiling = Math.min(RELAY_RETRY_CAP_MS, RELAY_RETRY_BASE_MS * 2 ** Math.min(failures, 16));
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}

const RELAY_RETRY_BASE_MS = 500;
const RELAY_RETRY_CAP_MS = 15_000;

function metadataValue(metadata: grpc.Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

function toRefusal(error: unknown): IngestRefusal {
  if (error instanceof IngestRefusal) return error;
  if (isShoalError(error)) return new IngestRefusal(grpc.status.INVALID_ARGUMENT, 400, 'invalid', error.message);
  return new IngestRefusal(grpc.status.INTERNAL, 500, 'invalid', 'internal error');
}
