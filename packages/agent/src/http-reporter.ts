import type CircuitBreaker from 'opossum';
import {
  Backoff,
  EventEmitter,
  PermissionDeniedError,
  ProtocolError,
  UnauthenticatedError,
  errorFields,
  sleep,
  type Event,
} from '@shoal/core';
import {
  AUTHORIZATION_KEY,
  LIMITS,
  bearer,
  reportToJson,
  responseFromJson,
  type Hello,
  type LoadReport,
  type ReportResponse,
} from '@shoal/protocol';
import type { ResolvedCoordinatorOptions } from './agent-options.js';
import { KeepAliveConnection, type PendingPost, post } from './http-post.js';
import {
  applyDirective,
  breakerStateOf,
  createReportBreaker,
  ignoreInvalidDirective,
  ReportBuffer,
  type BreakerState,
  type Reporter,
  type ReporterDeps,
} from './reporter.js';

/**
 * The coordinator answered HTTP 429 or 503, with `Retry-After` in milliseconds when it sent one. A ProtocolError
 * (code SHOAL_ERR_PROTOCOL) for log readers; the reporter tells it apart by class.
 */
class CoordinatorBusyError extends ProtocolError {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message, { retryable: true });
    this.name = 'CoordinatorBusyError';
  }
}

/** The coordinator refused this report as invalid (HTTP 400, 413, 415, 422): sending it again cannot help. */
class ReportRejectedError extends ProtocolError {
  constructor(message: string) {
    super(message);
    this.name = 'ReportRejectedError';
  }
}

/** What one POST gave: the coordinator's answer, or the reason its directive was ignored. */
interface PostResult {
  response: ReportResponse;
  invalidDirective?: unknown;
}

const REJECTED_STATUSES = new Set([400, 413, 415, 422]);

/** `Retry-After` (seconds or an HTTP date) in milliseconds, or undefined. */
function retryAfterMs(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/**
 * Reports over HTTP/JSON: one `POST /v1/report` (body: the JSON mapping of ReportRequest, i.e. the Hello and one
 * LoadReport) per report, each on its own connection through the small socket-level client of http-post.ts (see
 * there why not `node:http`). Loads neither grpc-js nor protobufjs.
 *
 * - Each POST is bounded by `requestTimeoutMs` and goes through the same opossum breaker as the gRPC transport.
 * - A failed POST (network error, timeout, 401/403, 429, 5xx, a 2xx that is not JSON) keeps the report at the
 *   head of the bounded buffer and waits a full-jitter exponential backoff (at least `Retry-After` on 429/503)
 *   before the next attempt; a report is tried at most `maxAttempts` times, then dropped and counted.
 * - A report the coordinator refuses as invalid (400/413/415/422) is dropped and counted, not retried.
 * - The directive in an answer is validated and applied exactly like a streamed one; an invalid one is logged
 *   and ignored (the report still counts as delivered).
 * - Nothing here throws into the caller or blocks the event loop.
 */
export class HttpReporter implements Reporter {
  private readonly url: URL;
  private readonly breaker: CircuitBreaker<[LoadReport], PostResult>;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  /** The connection left open between reports (keep-alive), closed with the reporter. */
  private readonly connection: KeepAliveConnection;
  private readonly connectionEmitter = new EventEmitter<boolean>();
  private readonly breakerEmitter = new EventEmitter<BreakerState>();
  private readonly buffer: ReportBuffer;
  /** Attempts spent on the report at the head of the buffer. */
  private headAttempts = 0;
  private isConnected = false;
  private closing = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private inFlight: PendingPost | undefined;
  private failuresInARow = 0;

  readonly onConnectionChange: Event<boolean> = this.connectionEmitter.event;
  readonly onBreakerChange: Event<BreakerState> = this.breakerEmitter.event;

  constructor(
    private readonly options: ResolvedCoordinatorOptions,
    private readonly hello: Hello,
    private readonly deps: ReporterDeps,
  ) {
    this.buffer = new ReportBuffer(options.maxBufferedReports, deps.metrics);
    this.url = new URL(options.target);
    this.connection = new KeepAliveConnection(deps.clock);
    this.backoff = new Backoff({ baseMs: options.backoff.baseMs, capMs: options.backoff.capMs });
    this.breaker = createReportBreaker((report: LoadReport) => this.post(report), options, deps, this.breakerEmitter);
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get breakerState(): BreakerState {
    return breakerStateOf(this.breaker as never);
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Reports the coordinator accepted since start. */
  get sent(): number {
    return this.buffer.sent;
  }

  /** Reports dropped (buffer full, attempts spent, refused as invalid) since start. */
  get dropped(): number {
    return this.buffer.dropped;
  }

  start(): void {
    this.loop ??= this.run();
  }

  enqueue(report: LoadReport): void {
    if (this.closed || this.closing) return;
    this.buffer.push(report);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async close(finalReport?: LoadReport, graceMs = 1000): Promise<void> {
    if (this.closed || this.closing) return;
    if (finalReport !== undefined) this.enqueue(finalReport);
    this.closing = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    // The loop sends what is buffered (stopping at the first failure) for at most graceMs.
    if (this.loop !== undefined && this.buffer.length > 0) {
      const grace = new AbortController();
      await Promise.race([this.loop, sleep(this.deps.clock, graceMs, grace.signal, true).catch(() => undefined)]);
      grace.abort();
    }
    this.closed = true;
    this.abort.abort();
    this.inFlight?.abort(new Error('reporter closed'));
    await this.loop;
    this.connection.close();
    this.breaker.shutdown();
    this.setConnected(false);
    this.connectionEmitter.clear();
    this.breakerEmitter.clear();
  }

  private dropHead(): void {
    this.buffer.dropHead();
    this.headAttempts = 0;
  }

  private setConnected(connected: boolean): void {
    if (this.isConnected === connected) return;
    this.isConnected = connected;
    this.deps.metrics.connected.set(connected ? 1 : 0);
    if (connected) this.deps.logger.info({ coordinator: this.options.url }, 'reporting to the coordinator over HTTP');
    this.connectionEmitter.emit(connected);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const report = this.buffer.head;
      if (report === undefined) {
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      let retryAfter: number | undefined;
      try {
        this.headAttempts++;
        const result = await this.breaker.fire(report);
        if (this.buffer.head === report) {
          this.buffer.shiftSent();
          this.headAttempts = 0;
        } else {
          this.buffer.markSent();
        }
        this.failuresInARow = 0;
        this.backoff.reset();
        this.setConnected(true);
        this.handleResult(result);
        continue;
      } catch (error) {
        if (this.closed) return;
        if (error instanceof ReportRejectedError) {
          this.deps.logger.warn({ ...errorFields(error) }, 'the coordinator refused a report as invalid; dropped');
          if (this.buffer.head === report) this.dropHead();
        } else if (this.buffer.head === report && this.headAttempts >= this.options.maxAttempts) {
          this.dropHead();
        }
        this.failuresInARow++;
        this.deps.metrics.connectFailures.inc();
        this.setConnected(false);
        if (error instanceof CoordinatorBusyError) retryAfter = error.retryAfterMs;
        this.deps.logger[this.failuresInARow === 1 ? 'warn' : 'debug'](
          { ...errorFields(error), coordinator: this.options.url, failures: this.failuresInARow },
          'cannot report to the coordinator; reports are buffered',
        );
      }
      if (this.closing) return; // no retries while closing: the grace period is for one attempt
      const jitter = this.backoff.next() ?? this.options.backoff.capMs;
      const delay = Math.min(this.options.backoff.capMs, Math.max(jitter, retryAfter ?? 0));
      try {
        await sleep(this.deps.clock, delay, this.abort.signal, true);
      } catch {
        return;
      }
    }
  }

  private handleResult(result: PostResult): void {
    if (result.invalidDirective !== undefined) {
      ignoreInvalidDirective(this.deps, result.invalidDirective);
      return;
    }
    const directive = result.response.directive;
    if (directive !== undefined) applyDirective(this.deps, directive);
  }

  /** One `POST /v1/report`, bounded by requestTimeoutMs. Resolves on a 2xx JSON answer, rejects otherwise. */
  private async post(report: LoadReport): Promise<PostResult> {
    const o = this.options;
    const dropped = this.buffer.pendingDropped;
    const body = JSON.stringify(
      reportToJson({
        hello: this.hello,
        report: dropped > 0 ? { ...report, droppedReports: report.droppedReports + dropped } : report,
      }),
    );
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (o.token !== undefined) headers[AUTHORIZATION_KEY] = bearer(o.token);
    const pending = post({
      url: this.url,
      headers,
      body,
      timeoutMs: o.requestTimeoutMs,
      maxBodyBytes: LIMITS.maxMessageBytes,
      clock: this.deps.clock,
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
      const [error, result] = this.interpret(
        answer.status,
        answer.body.toString('utf8'),
        answer.headers['retry-after'],
      );
      if (error !== undefined) throw error;
      // The coordinator now knows about the reports dropped before this one.
      this.buffer.pendingDropped -= Math.min(dropped, this.buffer.pendingDropped);
      return result as PostResult;
    } finally {
      if (this.inFlight === pending) this.inFlight = undefined;
    }
  }

  /** Turns an answer into the outcome of the attempt. */
  private interpret(status: number, text: string, retryAfter: string | undefined): [Error | undefined, PostResult?] {
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
        return [new ProtocolError(`coordinator answered HTTP ${status} with a body that is not JSON`)];
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        return [new ProtocolError(`coordinator answered HTTP ${status} with JSON that is not an object`)];
      }
      try {
        return [undefined, { response: responseFromJson(parsed) }];
      } catch (error) {
        return [undefined, { response: {}, invalidDirective: error }];
      }
    }
    if (status === 401) return [new UnauthenticatedError(`coordinator refused the token (HTTP 401)${detail()}`)];
    if (status === 403) return [new PermissionDeniedError(`coordinator refused the report (HTTP 403)${detail()}`)];
    if (REJECTED_STATUSES.has(status)) {
      return [new ReportRejectedError(`coordinator rejected the report (HTTP ${status})${detail()}`)];
    }
    if (status === 429 || status === 503) {
      return [
        new CoordinatorBusyError(
          `coordinator is busy (HTTP ${status})${detail()}`,
          retryAfterMs(retryAfter, this.deps.clock.now()),
        ),
      ];
    }
    return [new ProtocolError(`coordinator answered HTTP ${status}${detail()}`)];
  }
}
