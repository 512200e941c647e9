import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Backoff, componentLogger, errorFields, realClock, sleep, type Clock, type Logger } from '@shoal/core';

/** What KEDA on a follower reads of a service in the leader's `GET /v1/services` (a part of `ServiceStatus`). */
export interface LeaderServiceView {
  name: string;
  desiredReplicas?: number;
  instances: Array<{ ready: boolean; missing: boolean; draining: boolean; metrics: Record<string, unknown> }>;
}

/** What the leader answered to a proxied read. */
export interface LeaderAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

export interface LeaderViewOptions {
  /** The leader's certificate authority (`tls.caFile`, else `tls.certFile`) when coordinators serve TLS. */
  ca?: Buffer;
  /** The name the leader's certificate is checked against (`tls.serverName`). Default: the leader's host. */
  serverName?: string;
  /** Deadline of one request to the leader. Default 2000. */
  timeoutMs?: number;
  /** Requests per read, the first included (connection errors, timeouts, 502/503/504 are retried). Default 3. */
  attempts?: number;
  /** Backoff between attempts (full jitter). Default 100 ms doubling to 1 s. */
  backoff?: { baseMs: number; capMs: number };
  /** How long a fetched `/v1/services` serves KEDA calls before it is fetched again. Default 500. */
  maxAgeMs?: number;
  /** Largest answer read from the leader. Default 16 MiB. */
  maxBodyBytes?: number;
  /** The `authorization` header this follower sends for its own reads (KEDA): its read or operator token. */
  authorization?: () => string | undefined;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The leader could not be asked: unknown, unreachable, too slow, or it answered 5xx after every attempt. Internal:
 * a follower turns it into HTTP 503 (with `retry-after`) or gRPC UNAVAILABLE.
 */
export class LeaderUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LeaderUnavailableError';
  }
}

const RETRIED_STATUS = new Set([502, 503, 504]);

/** Set by a follower on a request it relays to the leader (its id): such a request is never relayed again. */
export const FORWARDED_HEADER = 'x-shoal-forwarded-by';

/**
 * A follower's window on the leader: it answers the read API (`/v1/services`, `/v1/sd`, rollout status) and KEDA
 * with what the leader sees, by asking the leader over HTTP(S) — each request with a deadline, retried a bounded
 * number of times with backoff. Proxying rather than sharing state through Consul KV: the leader's windows hold
 * every agent's last seconds of reports (thousands of samples per second at scale); writing them to Consul would
 * cost the KV far more than one proxied read per status call, and a follower's answer would lag by the write
 * period anyway.
 */
export class LeaderView {
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  /** How long a fetched view of the leader counts as fresh (answers built on it may be kept that long). */
  readonly maxAgeMs: number;
  private readonly maxBodyBytes: number;
  private leaderUrl: URL | undefined;
  private leaderId: string | undefined;
  private agent: HttpAgent | HttpsAgent | undefined;
  private cached: { atMs: number; leader: string; services: LeaderServiceView[] } | undefined;
  private inflight: Promise<LeaderServiceView[]> | undefined;
  private closed = false;

  constructor(private readonly options: LeaderViewOptions = {}) {
    this.log = componentLogger(options.logger, 'leader-view');
    this.clock = options.clock ?? realClock;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.attempts = options.attempts ?? 3;
    this.maxAgeMs = options.maxAgeMs ?? 500;
    this.maxBodyBytes = options.maxBodyBytes ?? 16 * 1024 * 1024;
  }

  /** The leader to ask (its id and `httpUrl`), or none (this coordinator leads, or no leader is known). */
  setLeader(leader: { id: string; httpUrl?: string } | undefined): void {
    const url = leader?.httpUrl;
    if (leader?.id === this.leaderId && url === this.leaderUrl?.origin) return;
    this.agent?.destroy();
    this.agent = undefined;
    this.cached = undefined;
    this.inflight = undefined;
    this.leaderId = leader?.id;
    this.leaderUrl = undefined;
    if (!url) return;
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`scheme ${parsed.protocol}`);
      this.leaderUrl = parsed;
    } catch (error) {
      this.log.warn({ leader: leader.id, ...errorFields(error) }, 'the leader advertised an unusable HTTP address');
      return;
    }
    this.agent =
      this.leaderUrl.protocol === 'https:'
        ? new HttpsAgent({
            keepAlive: true,
            maxSockets: 16,
            ...(this.options.ca ? { ca: this.options.ca } : {}),
            ...(this.options.serverName ? { servername: this.options.serverName } : {}),
          })
        : new HttpAgent({ keepAlive: true, maxSockets: 16 });
  }

  /** The id of the leader this view asks, if any. */
  get leader(): string | undefined {
    return this.leaderUrl ? this.leaderId : undefined;
  }

  /** `GET <path>` on the leader, with the caller's `authorization`. Throws LeaderUnavailableError. */
  async get(path: string, authorization: string | undefined): Promise<LeaderAnswer> {
    const backoff = new Backoff({ ...(this.options.backoff ?? { baseMs: 100, capMs: 1000 }), jitter: 'full' });
    let lastError: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) await sleep(this.clock, backoff.next() ?? 0, undefined, true);
      const url = this.leaderUrl;
      const agent = this.agent;
      if (this.closed || !url || !agent) throw new LeaderUnavailableError('no leader known yet; retry');
      try {
        const answer = await this.request(url, agent, path, authorization);
        if (!RETRIED_STATUS.has(answer.status)) return answer;
        lastError = new Error(`the leader answered ${answer.status}`);
      } catch (error) {
        lastError = error;
      }
    }
    this.log.warn({ leader: this.leaderId, path, ...errorFields(lastError) }, 'cannot read from the leader');
    throw new LeaderUnavailableError(
      `the leader ${this.leaderId ?? ''} did not answer after ${this.attempts} attempts: ${(lastError as Error)?.message}`,
      { cause: lastError },
    );
  }

  /**
   * `POST <path>` on the leader with a JSON `body` (already validated by this follower) and the caller's
   * `authorization`: one attempt within the view's deadline (the caller retries with its own backoff). `forwardedBy`
   * marks the request as relayed, so a coordinator that is no longer leading refuses it instead of relaying it again.
   * Throws LeaderUnavailableError when the leader cannot be asked.
   */
  async post(
    path: string,
    authorization: string | undefined,
    body: string,
    forwardedBy: string,
  ): Promise<LeaderAnswer> {
    const url = this.leaderUrl;
    const agent = this.agent;
    if (this.closed || !url || !agent) throw new LeaderUnavailableError('no leader known yet; retry');
    try {
      return await this.request(url, agent, path, authorization, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', [FORWARDED_HEADER]: forwardedBy },
      });
    } catch (error) {
      this.log.warn({ leader: this.leaderId, path, ...errorFields(error) }, 'cannot forward to the leader');
      throw new LeaderUnavailableError(
        `the leader ${this.leaderId ?? ''} did not answer: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  /** The leader's `/v1/services` (for KEDA on a follower), fetched at most once per `maxAgeMs`. */
  async services(): Promise<LeaderServiceView[]> {
    const leader = this.leaderId ?? '';
    const cached = this.cached;
    if (cached && cached.leader === leader && this.clock.now() - cached.atMs < this.maxAgeMs) return cached.services;
    if (this.inflight) return this.inflight;
    const run = (async () => {
      const answer = await this.get('/v1/services', this.options.authorization?.());
      if (answer.status !== 200) throw new LeaderUnavailableError(`the leader answered ${answer.status}`);
      const parsed = JSON.parse(answer.body.toString('utf8')) as { services?: LeaderServiceView[] };
      const services = Array.isArray(parsed.services) ? parsed.services : [];
      if (this.leaderId === leader) this.cached = { atMs: this.clock.now(), leader, services };
      return services;
    })();
    this.inflight = run;
    try {
      return await run;
    } finally {
      if (this.inflight === run) this.inflight = undefined;
    }
  }

  /** The last `/v1/services` fetched from the current leader, if it is younger than `maxAgeMs` (default: the option). */
  lastServices(maxAgeMs = this.maxAgeMs): LeaderServiceView[] | undefined {
    const cached = this.cached;
    if (!cached || cached.leader !== (this.leaderId ?? '') || this.clock.now() - cached.atMs >= maxAgeMs)
      return undefined;
    return cached.services;
  }

  close(): void {
    this.closed = true;
    this.agent?.destroy();
    this.agent = undefined;
    this.cached = undefined;
  }

  private request(
    base: URL,
    agent: HttpAgent | HttpsAgent,
    path: string,
    authorization: string | undefined,
    write?: { method: 'POST'; body: string; headers: Record<string, string> },
  ): Promise<LeaderAnswer> {
    const headers: Record<string, string> = { accept: 'application/json', ...write?.headers };
    if (authorization) headers.authorization = authorization;
    if (write) headers['content-length'] = String(Buffer.byteLength(write.body));
    const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<LeaderAnswer>((resolve, reject) => {
      const req = send(
        {
          protocol: base.protocol,
          hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: base.port,
          path,
          method: write?.method ?? 'GET',
          headers,
          agent,
          ...(this.options.serverName ? { servername: this.options.serverName } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.maxBodyBytes) {
              req.destroy(new Error(`the leader's answer is larger than ${this.maxBodyBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            resolve({
              status: res.statusCode ?? 502,
              contentType: contentTypeOf(res.headers),
              body: Buffer.concat(chunks),
            });
          });
          res.on('error', reject);
        },
      );
      // One deadline for the whole exchange (connect, TLS, headers, body), on the injected clock.
      const deadline = this.clock.setTimeout(
        () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      deadline.unref();
      req.on('close', () => this.clock.clearTimeout(deadline));
      req.on('error', reject);
      req.end(write?.body);
    });
  }
}

function contentTypeOf(headers: IncomingHttpHeaders): string {
  return headers['content-type'] ?? 'application/octet-stream';
}
