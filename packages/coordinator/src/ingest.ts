import * as grpc from '@grpc/grpc-js';
import { componentLogger, realClock, type Clock, type Logger } from '@shoal/core';
import {
  AUTHORIZATION_KEY,
  LIMITS,
  validateHello,
  validateReport,
  validateReportRequest,
  type CoordinatorMessage,
  type Directive,
  type Hello,
  type LoadReport,
  type ReportRequest,
  type ReportResponse,
  type WireAgentMessage,
} from '@shoal/protocol';
import type { TokenAuthenticator } from './auth.js';
import { AgentSession, instanceKey } from './ingest/agent-session.js';
import { DrainTracker, type DrainOutcome } from './ingest/drain-tracker.js';
import { IngestRefusal, refuse, toRefusal, type Transport } from './ingest/refusal.js';
import { RefusalLog, type RefusedSender } from './ingest/refusal-log.js';
import { LeaderRelay } from './ingest/relay.js';
import type { CoordinatorMetrics } from './metrics.js';
import type { PeerCall } from './peer-identity.js';
import { RateLimiter } from './rate-limiter.js';
import { CapacityError, StaleSequenceError, type ServiceWindow } from './service-window.js';

export { IngestRefusal, type Transport } from './ingest/refusal.js';

export interface IngestOptions {
  auth: TokenAuthenticator;
  windows: (service: string) => ServiceWindow | undefined;
  metrics: CoordinatorMetrics;
  reportsPerSecondPerInstance: number;
  maxStreams: number;
  /** Instances one service may have (its streams are bounded at twice this). Default 1000. */
  maxInstancesPerService?: number;
  /** A stream must say hello within this time. Default 10000. */
  helloTimeoutMs?: number;
  /**
   * Mutual TLS: the names of a call's verified client certificate. When set, a hello or report for service S is
   * refused (PERMISSION_DENIED) unless S is one of them.
   */
  peerNames?: (call: PeerCall) => string[];
  /**
   * With `peerNames`: the name in the certificate followers relay with (`ha.relay.name`). A hello or report on a
   * connection whose certificate carries it is a follower's relay: the follower checked the agent's certificate, so
   * only the token is checked here.
   */
  relayPeerName?: string;
  /** Credentials a follower dials the leader with (the coordinator's TLS). Default: insecure. */
  relayCredentials?: () => grpc.ChannelCredentials;
  /** Channel options of the relay's client (TLS server name). Default: none. */
  relayChannelOptions?: () => grpc.ChannelOptions;
  /** Called with the receipt→window latency of each accepted report, in ms, and the report (benchmarks). */
  onAccepted?: (latencyMs: number, report: LoadReport) => void;
  logger?: Logger;
  clock?: Clock;
}

/**
 * Everything agents send comes through here: the gRPC `Connect` stream and unary `Report`, and `POST /v1/report`.
 * Each message is authenticated (the service's bearer token), validated (`@shoal/protocol`), rate-limited per
 * instance, and put into the service's window — or, on a follower, relayed to the leader (`LeaderRelay`), so the
 * leader decides on complete data and its directives (drain) reach agents connected to any replica. Sessions
 * (`AgentSession`), drains in progress (`DrainTracker`) and refusals (`IngestRefusal`) each have a file.
 */
export class Ingest {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly sessions = new Map<string, AgentSession>();
  private readonly allStreams = new Set<AgentSession>();
  private readonly drains: DrainTracker;
  private readonly relay: LeaderRelay;
  private readonly helloTimeoutMs: number;
  private local = true;
  private leaderAddress: string | undefined;
  private readonly counters = new Map<string, { inc(): void }>();
  /** Open authenticated streams per service (a token's streams are bounded by its service's instance limit). */
  private readonly streamsPerService = new Map<string, number>();
  private readonly maxStreamsPerService: number;
  private readonly refusals: RefusalLog;

  constructor(private options: IngestOptions) {
    this.log = componentLogger(options.logger, 'ingest');
    this.clock = options.clock ?? realClock;
    this.refusals = new RefusalLog(this.log, this.clock);
    this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
    // Room for every instance plus a reconnect overlap each (an old stream ends after its replacement opened).
    this.maxStreamsPerService = Math.max(1, (options.maxInstancesPerService ?? 1000) * 2);
    // Burst of 3 so an agent reconnecting (hello + catch-up) is not refused; keys bounded by maxStreams × 2.
    this.limiter = new RateLimiter(
      options.reportsPerSecondPerInstance,
      Math.max(3, options.reportsPerSecondPerInstance),
      options.maxStreams * 2,
    );
    this.drains = new DrainTracker(this.clock);
    this.relay = new LeaderRelay({
      clock: this.clock,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.relayCredentials ? { credentials: options.relayCredentials } : {}),
      ...(options.relayChannelOptions ? { channelOptions: options.relayChannelOptions } : {}),
      onRefused: (session, refusal) => this.refuseStream(session, refusal),
    });
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
    this.relay.setLeader(!local, this.leaderAddress);
    for (const s of this.allStreams) {
      if (!s.hello) continue;
      this.relay.close(s);
      if (local && !wasLocal) this.localHello(s.hello, 'stream', s);
      if (!local && wasLocal) this.options.windows(s.hello.service)?.connected(s.hello.instanceId, -1);
      if (!local) this.relay.open(s);
    }
  }

  // ---- gRPC handlers -------------------------------------------------------------------------------------------

  readonly connect = (call: grpc.ServerDuplexStream<WireAgentMessage, CoordinatorMessage>): void => {
    const session = new AgentSession(call, metadataValue(call.metadata, AUTHORIZATION_KEY));
    if (this.options.peerNames) session.peerNames = this.options.peerNames(call);
    // Authenticated when it opens, before it counts against any limit or holds a timer: an anonymous stream costs
    // one refusal and nothing else.
    const identity = this.options.auth.identify(session.authorization);
    if (!identity.ok) {
      this.refuseStream(session, this.count(refuse.unauthenticated(identity.reason), 'stream'));
      return;
    }
    if (identity.service !== undefined) {
      const streams = this.streamsPerService.get(identity.service) ?? 0;
      if (streams >= this.maxStreamsPerService) {
        this.refuseStream(
          session,
          this.count(
            refuse.capacity(`too many streams for service "${identity.service}" (${this.maxStreamsPerService})`),
            'stream',
          ),
        );
        return;
      }
      session.owner = identity.service;
      this.streamsPerService.set(identity.service, streams + 1);
    }
    if (this.allStreams.size >= this.options.maxStreams) {
      this.refuseStream(session, refuse.capacity(`too many agent streams (${this.options.maxStreams})`));
      return;
    }
    this.allStreams.add(session);
    this.options.metrics.streams.set(this.allStreams.size);
    session.helloTimer = this.clock.setTimeout(() => {
      if (!session.hello) this.refuseStream(session, refuse.noHello(`no hello within ${this.helloTimeoutMs} ms`));
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
    const peer = this.options.peerNames?.(call);
    this.acceptUnary(call.request, authorization, 'unary', true, peer, peerOf(call)).then(
      (response) => callback(null, response),
      (error: unknown) => {
        const r = toRefusal(error);
        callback({ code: r.grpcCode, details: r.message });
      },
    );
  };

  /**
   * A unary report (gRPC `Report` or `POST /v1/report`). `request` is unvalidated unless `needsValidation` is
   * false. A refusal is logged (rate-limited) with the sender's service, instance and `peer` address.
   */
  async acceptUnary(
    request: unknown,
    authorization: string | undefined,
    transport: Transport,
    needsValidation: boolean,
    peerNames?: readonly string[],
    peer?: string,
  ): Promise<ReportResponse> {
    try {
      return await this.acceptUnaryReport(request, authorization, transport, needsValidation, peerNames);
    } catch (error) {
      if (error instanceof IngestRefusal) this.refusals.note(error, transport, { ...claimedSender(request), peer });
      throw error;
    }
  }

  private async acceptUnaryReport(
    request: unknown,
    authorization: string | undefined,
    transport: Transport,
    needsValidation: boolean,
    peerNames?: readonly string[],
  ): Promise<ReportResponse> {
    const at = this.clock.monotonic();
    let valid: ReportRequest;
    try {
      valid = needsValidation ? validateReportRequest(request) : (request as ReportRequest);
    } catch (error) {
      throw this.count(toRefusal(error), transport);
    }
    this.authorize(valid.hello.service, authorization, transport, peerNames);
    const key = instanceKey(valid.hello.service, valid.hello.instanceId);
    if (!this.limiter.take(key, this.clock.now())) {
      throw this.count(refuse.rateLimited('report rate limit exceeded for this instance'), transport);
    }
    if (!this.local) {
      if (!this.relay.hasLeader) throw this.count(refuse.unavailable('no leader known yet; retry'), transport);
      return this.relay.forward(valid, authorization);
    }
    this.localHello(valid.hello, transport);
    this.localReport(valid.hello, valid.report, transport, at);
    const directive = this.drains.pendingFor(key);
    return directive ? { directive } : {};
  }

  /**
   * Sends `drain` to an instance and resolves once it is gone (its stream ended, or it reported not ready with
   * nothing in flight) or after `timeoutMs`. Resolves to how it ended.
   */
  async drain(service: string, instanceId: string, timeoutMs: number, reason: string): Promise<DrainOutcome> {
    this.options.windows(service)?.markDraining(instanceId);
    const directive: Directive = { drain: { deadlineMs: timeoutMs, reason } };
    const sent = this.sendDirective(service, instanceId, directive);
    return this.drains.wait(instanceKey(service, instanceId), directive, sent, timeoutMs);
  }

  /** Sends a directive to a connected instance; false when it has no stream here. */
  sendDirective(service: string, instanceId: string, directive: Directive): boolean {
    const s = this.sessions.get(instanceKey(service, instanceId));
    if (!s || s.closed) return false;
    s.call.write({ directive });
    return true;
  }

  close(): void {
    for (const s of [...this.allStreams]) {
      this.relay.close(s);
      s.fail(grpc.status.UNAVAILABLE, 'coordinator shutting down');
      this.endSession(s);
    }
    this.relay.closeAll();
    this.drains.close();
  }

  // ---- internals -----------------------------------------------------------------------------------------------

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

  private count(refusal: IngestRefusal, transport: Transport): IngestRefusal {
    this.options.metrics.reportsRefused.inc({ reason: refusal.reason, transport });
    return refusal;
  }

  /** Whether client certificates are checked (the HTTP API asks before reading a report). */
  get checksPeers(): boolean {
    return this.options.peerNames !== undefined;
  }

  private authorize(
    service: string,
    authorization: string | undefined,
    transport: Transport,
    peerNames?: readonly string[],
  ): void {
    if (!this.options.windows(service)) {
      throw this.count(
        refuse.permissionDenied(`service "${service}" is not configured on this coordinator`),
        transport,
      );
    }
    const result = this.options.auth.check(service, authorization);
    if (!result.ok) {
      throw this.count(
        result.status === 'unauthenticated'
          ? refuse.unauthenticated(result.reason)
          : refuse.permissionDenied(result.reason),
        transport,
      );
    }
    const names = peerNames ?? [];
    const relayed = this.options.relayPeerName !== undefined && names.includes(this.options.relayPeerName);
    if (this.options.peerNames && !names.includes(service) && !relayed) {
      throw this.count(
        refuse.permissionDenied(`the client certificate does not name service "${service}" (CN or DNS SAN)`),
        transport,
      );
    }
  }

  private onStreamMessage(session: AgentSession, message: WireAgentMessage): void {
    const at = this.clock.monotonic();
    const kind = message?.msg ?? (message?.hello ? 'hello' : message?.report ? 'report' : undefined);
    if (kind === 'hello') this.onHello(session, message.hello);
    else if (kind === 'report') this.onReport(session, message.report, at);
    else throw this.count(refuse.invalid('message must hold hello or report'), 'stream');
  }

  private onHello(session: AgentSession, raw: unknown): void {
    if (session.hello) throw this.count(refuse.invalid('hello sent twice on one stream'), 'stream');
    let hello: Hello;
    try {
      hello = validateHello(raw);
    } catch (error) {
      throw this.count(toRefusal(error), 'stream');
    }
    session.claimed = { service: hello.service, instanceId: hello.instanceId };
    this.authorize(hello.service, session.authorization, 'stream', session.peerNames);
    const key = instanceKey(hello.service, hello.instanceId);
    const previous = this.sessions.get(key);
    if (previous && previous !== session) {
      // The same instance reconnected: the new stream wins.
      this.relay.close(previous);
      previous.fail(grpc.status.ALREADY_EXISTS, 'replaced by a newer stream for this instance');
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
    if (!this.local) this.relay.open(session);
  }

  private onReport(session: AgentSession, raw: unknown, at: number): void {
    const hello = session.hello;
    if (!hello) throw this.count(refuse.noHello('the first message on a stream must be hello'), 'stream');
    let report: LoadReport;
    try {
      report = validateReport(raw);
    } catch (error) {
      throw this.count(toRefusal(error), 'stream');
    }
    if (!this.limiter.take(instanceKey(hello.service, hello.instanceId), this.clock.now())) {
      // Dropped, counted and logged (rate-limited); a stream that keeps flooding is not worth closing (it costs
      // O(1) per message).
      this.refusals.note(this.count(refuse.rateLimited('rate limited'), 'stream'), 'stream', this.senderOf(session));
      return;
    }
    session.lastReport = report;
    if (this.local) this.localReport(hello, report, 'stream', at);
    else this.relay.send(session, report);
  }

  private localHello(hello: Hello, transport: Transport, session?: AgentSession): void {
    const window = this.options.windows(hello.service);
    if (!window) return;
    try {
      const isNew = !window.has(hello.instanceId);
      window.hello(hello, this.clock.now());
      if (session && (isNew || transport === 'stream')) window.connected(hello.instanceId, 1);
    } catch (error) {
      if (error instanceof CapacityError) throw this.count(refuse.capacity(error.message), transport);
      throw error;
    }
  }

  private localReport(hello: Hello, report: LoadReport, transport: Transport, receivedAt: number): void {
    const window = this.options.windows(hello.service);
    if (!window) return;
    try {
      window.report(hello.instanceId, report, this.clock.now());
    } catch (error) {
      if (error instanceof StaleSequenceError) throw this.count(refuse.invalid(error.message), transport);
      throw error;
    }
    this.receivedCounter(hello.service, transport).inc();
    this.options.onAccepted?.(this.clock.monotonic() - receivedAt, report);
    if (!report.ready && report.inFlight === 0 && window.isDraining(hello.instanceId)) {
      this.drains.resolve(instanceKey(hello.service, hello.instanceId));
    }
  }

  private endSession(session: AgentSession): void {
    if (session.closed) return;
    session.closed = true;
    this.clock.clearTimeout(session.helloTimer);
    this.relay.close(session);
    if (this.allStreams.delete(session)) this.options.metrics.streams.set(this.allStreams.size);
    if (session.owner !== undefined) {
      const n = (this.streamsPerService.get(session.owner) ?? 1) - 1;
      if (n > 0) this.streamsPerService.set(session.owner, n);
      else this.streamsPerService.delete(session.owner);
      session.owner = undefined;
    }
    const key = session.key;
    if (session.hello && key !== undefined && this.sessions.get(key) === session) {
      this.sessions.delete(key);
      this.options.windows(session.hello.service)?.connected(session.hello.instanceId, -1);
      this.drains.resolve(key);
    }
  }

  private senderOf(session: AgentSession): RefusedSender {
    const who = session.hello ?? session.claimed;
    return { service: who?.service ?? session.owner, instance: who?.instanceId, peer: peerOf(session.call) };
  }

  private refuseStream(session: AgentSession, refusal: IngestRefusal): void {
    this.refusals.note(refusal, 'stream', this.senderOf(session));
    session.fail(refusal.grpcCode, refusal.message);
    this.endSession(session);
  }
}

/** The remote address of a gRPC call, when grpc-js knows it. */
function peerOf(call: { getPeer?: () => string }): string | undefined {
  try {
    return call.getPeer?.();
  } catch {
    return undefined;
  }
}

/** The service and instance an unvalidated request says it is from (strings only; the log clips them). */
function claimedSender(request: unknown): RefusedSender {
  const hello = (request as { hello?: { service?: unknown; instanceId?: unknown } } | undefined)?.hello;
  return {
    service: typeof hello?.service === 'string' ? hello.service : undefined,
    instance: typeof hello?.instanceId === 'string' ? hello.instanceId : undefined,
  };
}

function metadataValue(metadata: grpc.Metadata, key: string): string | undefined {
  const v = metadata.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}
