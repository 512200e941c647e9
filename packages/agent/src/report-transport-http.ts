import { PermissionDeniedError, ProtocolError, UnauthenticatedError } from '@shoal/core';
import {
  AUTHORIZATION_KEY,
  LIMITS,
  bearer,
  reportToJson,
  responseFromJson,
  type Hello,
  type LoadReport,
} from '@shoal/protocol';
import type { ResolvedCoordinatorOptions } from './agent-options.js';
import { KeepAliveConnection, type PendingPost, post } from './http-post.js';
import { CoordinatorBusyError, ReportRejectedError, type ReportTransport, type TransportLink } from './reporter.js';

const REJECTED_STATUSES = new Set([400, 413, 415, 422]);

/** `Retry-After` (seconds or an HTTP date) in milliseconds, or undefined. */
export function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/**
 * The HTTP/JSON transport: one `POST /v1/report` (body: the JSON mapping of ReportRequest, i.e. the Hello and one
 * LoadReport) per report, over the connection the previous one left open (keep-alive), through the small
 * socket-level client of http-post.ts (see there why not `node:http`). Loads neither grpc-js nor protobufjs.
 *
 * A 2xx JSON answer delivers the report (its directive is validated here; an invalid one is ignored, the report
 * still counts). 400/413/415/422 reject the report for good; 429/503 are "busy" (with `Retry-After`); anything
 * else (network error, `requestTimeoutMs`, 401/403, 5xx, a 2xx that is not JSON) is a failed attempt.
 */
export class HttpReportTransport implements ReportTransport {
  readonly persistent = false;
  readonly open = true;
  private readonly url: URL;
  /** The connection left open between reports (keep-alive), closed with the transport. */
  private readonly connection: KeepAliveConnection;
  private inFlight: PendingPost | undefined;
  private closed = false;

  constructor(
    private readonly options: ResolvedCoordinatorOptions,
    private readonly hello: Hello,
    private readonly link: TransportLink,
  ) {
    this.url = new URL(options.target);
    this.connection = new KeepAliveConnection(link.clock);
  }

  connect(): Promise<void> {
    return Promise.resolve();
  }

  async send(report: LoadReport): Promise<void> {
    if (this.closed) throw new ProtocolError('the report transport is closed');
    const o = this.options;
    const body = JSON.stringify(reportToJson({ hello: this.hello, report }));
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (o.token !== undefined) headers[AUTHORIZATION_KEY] = bearer(o.token);
    const pending = post({
      url: this.url,
      headers,
      body,
      timeoutMs: o.requestTimeoutMs,
      maxBodyBytes: LIMITS.maxMessageBytes,
      clock: this.link.clock,
      connection: this.connection,
      ...(o.secure
        ? {
            tls: {
              ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
              ...(o.tls.cert !== undefined ? { cert: o.tls.cert } : {}),
              ...(o.tls.key !== undefined ? { key: o.tls.key } : {}),
              ...(o.tls.serverName !== undefined ? { servername: o.tls.serverName } : {}),
            },
          }
        : {}),
    });
    this.inFlight = pending;
    try {
      const answer = await pending.response;
      this.interpret(answer.status, answer.body.toString('utf8'), answer.headers['retry-after']);
    } finally {
      if (this.inFlight === pending) this.inFlight = undefined;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    this.inFlight?.abort(new Error('reporter closed'));
    this.connection.close();
    return Promise.resolve();
  }

  /** Turns an answer into the outcome of the attempt: returns when delivered, throws otherwise. */
  private interpret(status: number, text: string, retryAfter: string | undefined): void {
    const detail = () => {
      try {
        const error = (JSON.parse(text) as { error?: unknown }).error;
        return typeof error === 'string' ? `: ${error.slice(0, 200)}` : '';
      } catch {
        return '';
      }
    };
    if (status >= 200 && status < 300) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ProtocolError(`coordinator answered HTTP ${status} with a body that is not JSON`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new ProtocolError(`coordinator answered HTTP ${status} with JSON that is not an object`);
      }
      let directive;
      try {
        directive = responseFromJson(parsed).directive;
      } catch (error) {
        this.link.invalidDirective(error);
        return;
      }
      if (directive !== undefined) this.link.directive(directive);
      return;
    }
    if (status === 401) throw new UnauthenticatedError(`coordinator refused the token (HTTP 401)${detail()}`);
    if (status === 403) throw new PermissionDeniedError(`coordinator refused the report (HTTP 403)${detail()}`);
    if (REJECTED_STATUSES.has(status)) {
      throw new ReportRejectedError(`coordinator rejected the report (HTTP ${status})${detail()}`);
    }
    if (status === 429 || status === 503) {
      throw new CoordinatorBusyError(
        `coordinator is busy (HTTP ${status})${detail()}`,
        retryAfterMs(retryAfter, this.link.clock.now()),
      );
    }
    throw new ProtocolError(`coordinator answered HTTP ${status}${detail()}`);
  }
}
