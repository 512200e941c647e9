import * as grpc from '@grpc/grpc-js';
import { Backoff, componentLogger, errorFields, type Clock, type Logger, type TimerHandle } from '@shoal/core';
import {
  AUTHORIZATION_KEY,
  loadCoordinatorService,
  type CoordinatorClient,
  type Directive,
  type LoadReport,
  type ReportRequest,
  type ReportResponse,
  type WireCoordinatorMessage,
} from '@shoal/protocol';
import type { AgentSession } from './agent-session.js';
import { IngestRefusal, refuse } from './refusal.js';

/** Relay backoff: 500 ms doubling to 15 s, equal jitter (each wait in the upper half, never an immediate retry). */
const RELAY_BACKOFF = { baseMs: 500, capMs: 15_000, jitter: 'equal' } as const;
/** A relayed unary report's deadline. */
const FORWARD_DEADLINE_MS = 5000;

interface Link {
  upstream: grpc.ClientDuplexStream<unknown, WireCoordinatorMessage> | undefined;
  retryTimer: TimerHandle | undefined;
  /** Attempts in a row that ended without a word from the leader. */
  backoff: Backoff;
}

export interface LeaderRelayOptions {
  clock: Clock;
  logger?: Logger;
  /**
   * Credentials to dial the leader with: the coordinator's TLS (its CA) when it serves TLS, so followers reach a
   * `grpcs://` leader. Default: insecure (a plaintext leader).
   */
  credentials?: () => grpc.ChannelCredentials;
  /** Channel options of the client to the leader (e.g. `grpc.ssl_target_name_override` for `tls.serverName`). */
  channelOptions?: () => grpc.ChannelOptions;
  /** The leader refused a relayed agent itself (bad token, invalid hello): end the agent's stream with it. */
  onRefused(session: AgentSession, refusal: IngestRefusal): void;
}

/**
 * A follower's path to the leader: each agent stream gets a stream of its own to the leader (hello, then reports;
 * the leader's directives go down to the agent as they are), retried with core's backoff while the leader is
 * unreachable or refuses for a reason other than the agent's own. Unary reports are forwarded as unary calls.
 */
export class LeaderRelay {
  private readonly log: Logger;
  private readonly links = new Map<AgentSession, Link>();
  private client: CoordinatorClient | undefined;
  private active = false;
  private readonly Client = loadCoordinatorService(grpc).CoordinatorClient;

  constructor(private readonly options: LeaderRelayOptions) {
    this.log = componentLogger(options.logger, 'ingest');
  }

  /** Relaying (a follower) to `address` (host:port), or not (leader or alone). */
  setLeader(active: boolean, address: string | undefined): void {
    this.active = active;
    this.client?.close();
    this.client = undefined;
    if (!active || !address) return;
    try {
      const credentials = this.options.credentials?.() ?? grpc.credentials.createInsecure();
      this.client = new this.Client(address, credentials, this.options.channelOptions?.() ?? {});
    } catch (error) {
      // The leader advertised an address grpc-js cannot parse: relay nothing (agents hear "no leader known").
      this.log.warn({ leader: address, ...errorFields(error) }, 'cannot relay to the leader');
    }
  }

  /** Whether there is a leader to relay to. */
  get hasLeader(): boolean {
    return this.client !== undefined;
  }

  /** Opens (or reopens) the session's stream to the leader: hello, then its last report. */
  open(session: AgentSession): void {
    const client = this.client;
    const hello = session.hello;
    if (!client || !hello || session.closed) return;
    const link = this.link(session);
    const metadata = new grpc.Metadata();
    if (session.authorization) metadata.set(AUTHORIZATION_KEY, session.authorization);
    const upstream = client.connect(metadata) as unknown as grpc.ClientDuplexStream<unknown, WireCoordinatorMessage>;
    link.upstream = upstream;
    upstream.on('data', (m: WireCoordinatorMessage) => {
      link.backoff.reset(); // the leader answered: the relay works
      // Directives from the leader go down to the agent as they are (the agent validates them).
      if (!session.closed && m?.directive) session.call.write({ directive: m.directive as Directive });
    });
    upstream.on('error', (e: grpc.ServiceError) => this.retry(session, link, upstream, e));
    upstream.on('end', () => this.retry(session, link, upstream));
    upstream.write({ hello });
    if (session.lastReport) upstream.write({ report: session.lastReport });
  }

  /** Passes a report on the session's stream to the leader (dropped while it reconnects; the next one follows). */
  send(session: AgentSession, report: LoadReport): void {
    this.links.get(session)?.upstream?.write({ report });
  }

  /** Ends the session's stream to the leader and any retry. */
  close(session: AgentSession): void {
    const link = this.links.get(session);
    if (!link) return;
    this.links.delete(session);
    this.options.clock.clearTimeout(link.retryTimer);
    const up = link.upstream;
    link.upstream = undefined;
    if (up) {
      up.on('error', () => {});
      up.cancel();
    }
  }

  /** Forwards a validated unary report to the leader. */
  forward(request: ReportRequest, authorization: string | undefined): Promise<ReportResponse> {
    const client = this.client;
    if (!client) return Promise.reject(refuse.unavailable('no leader known yet; retry'));
    const metadata = new grpc.Metadata();
    if (authorization) metadata.set(AUTHORIZATION_KEY, authorization);
    return new Promise((resolve, reject) => {
      client.report(request, metadata, { deadline: Date.now() + FORWARD_DEADLINE_MS }, (error, response) => {
        if (error) {
          const http = error.code === grpc.status.UNAVAILABLE ? 503 : 400;
          reject(new IngestRefusal(error.code, http, 'unavailable', error.details));
          return;
        }
        resolve((response ?? {}) as ReportResponse);
      });
    });
  }

  /** Closes every link and the client. */
  closeAll(): void {
    for (const session of [...this.links.keys()]) this.close(session);
    this.client?.close();
    this.client = undefined;
  }

  private link(session: AgentSession): Link {
    let link = this.links.get(session);
    if (!link) {
      link = { upstream: undefined, retryTimer: undefined, backoff: new Backoff(RELAY_BACKOFF) };
      this.links.set(session, link);
    }
    return link;
  }

  /** The stream to the leader ended: pass the leader's refusal of the agent on, or try again after a backoff. */
  private retry(
    session: AgentSession,
    link: Link,
    upstream: grpc.ClientDuplexStream<unknown, WireCoordinatorMessage>,
    error?: { code?: number; details?: string },
  ): void {
    if (link.upstream !== upstream) return;
    link.upstream = undefined;
    if (session.closed || !this.active || this.links.get(session) !== link) return;
    if (
      error &&
      (error.code === grpc.status.UNAUTHENTICATED ||
        error.code === grpc.status.PERMISSION_DENIED ||
        error.code === grpc.status.INVALID_ARGUMENT)
    ) {
      this.options.onRefused(
        session,
        new IngestRefusal(error.code, 400, 'invalid', error.details ?? 'refused by the leader'),
      );
      return;
    }
    link.retryTimer = this.options.clock.setTimeout(
      () => this.open(session),
      link.backoff.next() ?? RELAY_BACKOFF.capMs,
    );
    link.retryTimer.unref();
  }
}
