import {
  Backoff,
  EventEmitter,
  isShoalError,
  ProtocolError,
  errorFields,
  sleep,
  type Clock,
  type Event,
  type Logger,
} from '@shoal/core';
import type { Directive, LoadReport } from '@shoal/protocol';
import type { AgentSignals } from './agent-metrics.js';
import type { ResolvedCoordinatorOptions } from './agent-options.js';
import { BreakerOpenError, ReportBreaker, type BreakerState } from './report-breaker.js';
import { ReportBuffer } from './report-buffer.js';

export type { BreakerState } from './report-breaker.js';

/**
 * The coordinator answered "busy" (HTTP 429 or 503), with `Retry-After` in milliseconds when it sent one: the loop
 * waits at least that long before the next attempt.
 */
export class CoordinatorBusyError extends ProtocolError {
  constructor(
    message: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message, { retryable: true });
    this.name = 'CoordinatorBusyError';
  }
}

/** The coordinator refused this report as invalid (HTTP 400, 413, 415, 422): sending it again cannot help. */
export class ReportRejectedError extends ProtocolError {
  constructor(message: string) {
    super(message);
    this.name = 'ReportRejectedError';
  }
}

/** What the loop offers a transport: where to send what the coordinator says. */
export interface TransportLink {
  readonly clock: Clock;
  readonly logger: Logger;
  /** A directive that passed validation. */
  directive(directive: Directive): void;
  /** A directive that failed validation (logged and counted; the transport carries on). */
  invalidDirective(error: unknown): void;
  /**
   * A persistent transport's connection ended. `healthy`: it carried an answer or lived long enough, so the
   * reconnect starts from the first backoff step again.
   */
  lost(reason: { code?: number; details?: string; message?: string }, healthy: boolean): void;
}

/**
 * One way to reach the coordinator (OpenTelemetry's exporter to the loop's periodic reader). The loop owns the
 * schedule, the buffer, the breaker, the backoff and the events; a transport only moves bytes:
 * - persistent (gRPC): `connect()` opens a long-lived stream the loop keeps open (through the breaker, with
 *   backoff between attempts); `send()` writes one report on it; directives arrive at any time.
 * - per request (HTTP/JSON): `connect()` is not used; each `send()` is one request (through the breaker) whose
 *   answer may carry a directive.
 */
export interface ReportTransport {
  readonly persistent: boolean;
  /** Persistent: the connection is up; per request: always true. */
  readonly open: boolean;
  /** Persistent only: opens the connection; resolves once the coordinator accepted it. Bounded by the transport. */
  connect(): Promise<void>;
  /**
   * Delivers one report. Resolves once it is handed over (gRPC: written; HTTP: answered 2xx); rejects when it was
   * not (`ReportRejectedError`: never retry it; `CoordinatorBusyError`: wait at least its Retry-After).
   */
  send(report: LoadReport): Promise<void>;
  /** Releases sockets. Persistent: half-closes the stream and waits up to `graceMs` for the coordinator to end it. */
  close(graceMs: number): Promise<void>;
}

export interface ReporterDeps {
  clock: Clock;
  logger: Logger;
  metrics: AgentSignals;
  onDirective(directive: Directive): void;
  /** Randomness of the backoff's jitter, in [0, 1). Default Math.random (tests pin it). */
  random?: () => number;
  /** Who this agent is, for the refusal warning. */
  identity?: { service: string; instanceId: string };
  /** Where the refusal warning goes (`coordinator.warnOnRefusal`). Default `process.emitWarning`. */
  warn?: (message: string, options: { type: string; code: string }) => void;
}

/** Code of the process warning an agent emits when the coordinator refuses its reports. */
export const REPORTS_REFUSED_WARNING = 'SHOAL_AGENT_REPORTS_REFUSED';

/**
 * Why the coordinator refused this agent, when it did (a wrong or missing token, a service it does not serve, a
 * report it calls invalid); undefined for failures that are not refusals (network, timeouts, busy).
 */
export function refusalReason(error: unknown): string | undefined {
  if (error instanceof ReportRejectedError) return error.message;
  if (
    isShoalError(error) &&
    (error.code === 'SHOAL_ERR_UNAUTHENTICATED' || error.code === 'SHOAL_ERR_PERMISSION_DENIED')
  ) {
    return error.message;
  }
  const e = error as { code?: unknown; details?: unknown; message?: unknown } | undefined;
  // grpc-js status codes: 3 INVALID_ARGUMENT, 7 PERMISSION_DENIED, 16 UNAUTHENTICATED.
  const names: Record<number, string> = { 3: 'INVALID_ARGUMENT', 7: 'PERMISSION_DENIED', 16: 'UNAUTHENTICATED' };
  if (typeof e?.code === 'number' && names[e.code] !== undefined) {
    const details = typeof e.details === 'string' ? e.details : typeof e.message === 'string' ? e.message : '';
    return `${names[e.code]}${details ? `: ${details}` : ''}`;
  }
  return undefined;
}

export type TransportFactory = (link: TransportLink) => ReportTransport;

/**
 * The agent's one report loop: reports wait in a bounded buffer and go out in order through a transport; failed
 * attempts (network errors, timeouts, refusals, garbage) go through an opossum circuit breaker and a full-jitter
 * exponential backoff (core's `Backoff`; at least `Retry-After` when the coordinator is busy) whose every wait, and
 * the breaker's open time, is also at most half the time since the coordinator was last reachable (see
 * `waitCeilingMs`); a report is tried at
 * most `maxAttempts` times on a per-request transport, and dropped at once when refused as invalid; directives
 * are validated by the transport and applied here; nothing throws into the caller or blocks the event loop.
 * `close()` sends what it can (the last report) within a grace period, then releases everything.
 */
export class Reporter {
  private readonly transport: ReportTransport;
  private readonly buffer: ReportBuffer;
  private readonly breaker: ReportBreaker;
  private readonly backoff: Backoff;
  private readonly abort = new AbortController();
  private readonly connectionEmitter = new EventEmitter<boolean>();
  private readonly breakerEmitter = new EventEmitter<BreakerState>();
  /** Attempts spent on the report at the head of the buffer. */
  private headAttempts = 0;
  private isConnected = false;
  /** A persistent connection was lost: wait a backoff step before the next connect. */
  private reconnectWait = false;
  private failuresInARow = 0;
  /** When (monotonic ms) the coordinator was last known reachable: a healthy stream, an accepted report, or start. */
  private lastContactAt: number;
  /** A refusal was warned about; cleared once the coordinator accepts again. */
  private refusalWarned = false;
  private closing = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  /** Fires true when the coordinator is reachable (stream established / a report accepted), false when lost. */
  readonly onConnectionChange: Event<boolean> = this.connectionEmitter.event;
  /** Fires when the circuit breaker changes state. */
  readonly onBreakerChange: Event<BreakerState> = this.breakerEmitter.event;

  constructor(
    private readonly options: ResolvedCoordinatorOptions,
    private readonly deps: ReporterDeps,
    transport: TransportFactory,
  ) {
    this.buffer = new ReportBuffer(options.maxBufferedReports, deps.metrics);
    this.backoff = new Backoff({
      baseMs: options.backoff.baseMs,
      capMs: options.backoff.capMs,
      ...(deps.random !== undefined ? { random: deps.random } : {}),
    });
    this.lastContactAt = deps.clock.monotonic();
    this.breaker = new ReportBreaker(options.breaker, deps.clock, deps.logger, deps.metrics, this.breakerEmitter, () =>
      this.nextWaitMs(),
    );
    deps.metrics.connected.set(0);
    this.transport = transport({
      clock: deps.clock,
      logger: deps.logger,
      directive: (directive) => this.applyDirective(directive),
      invalidDirective: (error) => this.ignoreInvalidDirective(error),
      lost: (reason, healthy) => this.lost(reason, healthy),
    });
  }

  get connected(): boolean {
    return this.isConnected;
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** Reports waiting to be sent. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Reports handed to the coordinator since start. */
  get sent(): number {
    return this.buffer.sent;
  }

  /** Reports dropped (buffer full, attempts spent, refused as invalid) since start. */
  get dropped(): number {
    return this.buffer.dropped;
  }

  start(): void {
    if (this.closing) return;
    if (this.loop === undefined) this.lastContactAt = this.deps.clock.monotonic();
    this.loop ??= this.run();
  }

  /**
   * The ceiling of the next wait: half the time since the coordinator was last reachable, never below
   * `backoff.baseMs` (the backoff's own ceiling and `capMs` still apply). A coordinator that restarts in a few
   * seconds is found again within about half that time more (on average a quarter), and only an outage of a minute
   * or more lets the waits reach the 30 s cap — while full jitter spreads every agent's attempts uniformly under the
   * ceiling, so the agents of a restarted coordinator come back spread over that window, never at once.
   */
  private waitCeilingMs(): number {
    const outageMs = this.deps.clock.monotonic() - this.lastContactAt;
    return Math.max(this.options.backoff.baseMs, outageMs / 2);
  }

  /** The next backoff wait (full jitter under the backoff's ceiling, `capMs` and `waitCeilingMs`). */
  private nextWaitMs(): number {
    return this.backoff.next(this.waitCeilingMs()) ?? this.options.backoff.capMs;
  }

  /** Queues a report (dropping the oldest when the buffer is full) and wakes the loop. Never throws. */
  enqueue(report: LoadReport): void {
    if (this.closing) return;
    this.buffer.push(report);
    this.poke();
  }

  /**
   * Stops reporting: sends `finalReport` (and whatever is buffered) if it can within `graceMs` — a persistent
   * transport only on an open connection, no retries — then releases the transport, the breaker and the timers.
   * Never rejects; a second call returns the same promise.
   */
  close(finalReport?: LoadReport, graceMs = 1000): Promise<void> {
    this.closePromise ??= this.shutdown(finalReport, graceMs);
    return this.closePromise;
  }

  private async shutdown(finalReport: LoadReport | undefined, graceMs: number): Promise<void> {
    if (finalReport !== undefined) this.buffer.push(finalReport);
    this.closing = true;
    this.abort.abort(); // ends any backoff wait: the loop now makes at most one more attempt
    this.poke();
    const { clock } = this.deps;
    const startedAt = clock.monotonic();
    if (this.loop !== undefined && this.buffer.length > 0) {
      const grace = new AbortController();
      await Promise.race([this.loop, sleep(clock, graceMs, grace.signal, true).catch(() => undefined)]);
      grace.abort();
    }
    this.closed = true;
    this.poke();
    await this.transport.close(Math.max(0, graceMs - (clock.monotonic() - startedAt)));
    await this.loop;
    this.breaker.shutdown();
    this.setConnected(false);
    this.connectionEmitter.clear();
    this.breakerEmitter.clear();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      if (!this.transport.open) {
        if (this.closing) return; // no new connection just for the last report
        if (this.reconnectWait && !(await this.pause(this.nextWaitMs()))) return;
        this.reconnectWait = false;
        await this.attempt(() => this.breaker.fire(() => this.transport.connect()), undefined);
        continue;
      }
      const report = this.buffer.head;
      if (report === undefined) {
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const ok = await this.attempt(() => this.deliver(report), report);
      if (!ok && this.closing) return; // the grace period is for one attempt
    }
  }

  /** Sends `report` with the drop count the coordinator has not heard of yet. */
  private async deliver(report: LoadReport): Promise<void> {
    const dropped = this.buffer.pendingDropped;
    const send = () =>
      this.transport.send(dropped > 0 ? { ...report, droppedReports: report.droppedReports + dropped } : report);
    // A persistent transport's breaker guards its connects; a per-request transport's, each request.
    await (this.transport.persistent ? send() : this.breaker.fire(send));
    this.buffer.pendingDropped -= Math.min(dropped, this.buffer.pendingDropped);
  }

  /**
   * One attempt (a connect, or sending `report`) and what follows: bookkeeping on success, backoff on failure.
   * Resolves true when it succeeded.
   */
  private async attempt(action: () => Promise<void>, report: LoadReport | undefined): Promise<boolean> {
    if (report !== undefined) this.headAttempts++;
    try {
      await action();
    } catch (error) {
      if (!this.closed) await this.failed(error, report);
      return false;
    }
    if (report !== undefined) {
      this.buffer.delivered(report);
      this.headAttempts = 0;
    }
    this.failuresInARow = 0;
    this.refusalWarned = false;
    // A persistent transport resets its backoff when a stream proves healthy (see lost()), not on connect: a
    // coordinator that accepts and then drops every stream must not pull the agent into a tight loop.
    if (!this.transport.persistent) {
      this.backoff.reset();
      this.lastContactAt = this.deps.clock.monotonic();
    }
    // (a stream can end between its acceptance and now)
    this.setConnected(this.transport.open);
    return true;
  }

  private async failed(error: unknown, report: LoadReport | undefined): Promise<void> {
    const { logger, metrics } = this.deps;
    const refusedLocally = error instanceof BreakerOpenError;
    // A refusal by the open breaker is not an attempt: the coordinator saw nothing.
    if (refusedLocally && report !== undefined) this.headAttempts--;
    if (report !== undefined && this.buffer.head === report) {
      if (error instanceof ReportRejectedError) {
        logger.warn({ ...errorFields(error) }, 'the coordinator refused a report as invalid; dropped');
        this.dropHead();
      } else if (!this.transport.persistent && this.headAttempts >= this.options.maxAttempts) {
        this.dropHead();
      }
    }
    this.failuresInARow++;
    if (!refusedLocally) metrics.connectFailures.inc();
    this.noteRefusal(error);
    if (!this.transport.persistent) this.setConnected(false);
    // The first failure in a row is worth a warning; the rest (often the open breaker) only a debug line.
    logger[this.failuresInARow === 1 ? 'warn' : 'debug'](
      { ...errorFields(error), coordinator: this.options.url, failures: this.failuresInARow },
      'cannot report to the coordinator; reports are buffered',
    );
    if (this.closing) return; // the grace period is for one attempt: no retries
    // Refused by the open breaker: wait for its trial (its open time was drawn like a backoff wait), not one more step.
    if (refusedLocally) {
      await this.pause(Math.max(1, this.breaker.remainingOpenMs));
      return;
    }
    const retryAfter = error instanceof CoordinatorBusyError ? (error.retryAfterMs ?? 0) : 0;
    await this.pause(Math.min(this.options.backoff.capMs, Math.max(this.nextWaitMs(), retryAfter)));
  }

  /** Waits `ms` on the clock; false when the reporter started closing meanwhile. */
  private async pause(ms: number): Promise<boolean> {
    try {
      await sleep(this.deps.clock, ms, this.abort.signal, true);
      return !this.closed;
    } catch {
      return false;
    }
  }

  private dropHead(): void {
    this.buffer.dropHead();
    this.headAttempts = 0;
  }

  /**
   * A refusal is a misconfiguration that retrying will not fix: logged at error level, and (unless
   * `warnOnRefusal: false`) emitted once per episode as a process warning, so it shows on stderr without a logger.
   * The message names the coordinator and the reason, never the token.
   */
  private noteRefusal(error: unknown): void {
    const reason = refusalReason(error);
    if (reason === undefined || this.refusalWarned || this.closing) return;
    this.refusalWarned = true;
    const who = this.deps.identity ? ` "${this.deps.identity.service}/${this.deps.identity.instanceId}"` : '';
    const message =
      `Shoal agent${who}: the coordinator at ${this.options.url} refused its reports (${reason}); ` +
      'this instance is not counted in scaling decisions until this is fixed ' +
      '(check coordinator.token and the service name against the coordinator config)';
    this.deps.logger.error({ coordinator: this.options.url, reason }, "the coordinator refused this agent's reports");
    if (!this.options.warnOnRefusal) return;
    const warn = this.deps.warn ?? ((m, o) => process.emitWarning(m, o));
    warn(message, { type: 'ShoalWarning', code: REPORTS_REFUSED_WARNING });
  }

  private lost(reason: { code?: number; details?: string; message?: string }, healthy: boolean): void {
    this.noteRefusal(reason);
    if (healthy) {
      this.backoff.reset();
      this.lastContactAt = this.deps.clock.monotonic();
    }
    this.reconnectWait = true;
    if (!this.closing) {
      this.deps.logger.warn(
        { coordinator: this.options.url, code: reason.code, details: reason.details ?? reason.message },
        'report stream to the coordinator ended; reconnecting',
      );
    }
    this.setConnected(false);
    this.poke();
  }

  private setConnected(connected: boolean): void {
    if (this.isConnected === connected) return;
    this.isConnected = connected;
    this.deps.metrics.connected.set(connected ? 1 : 0);
    if (connected && !this.closed)
      this.deps.logger.info({ coordinator: this.options.url }, 'reporting to the coordinator');
    this.connectionEmitter.emit(connected);
  }

  /** Hands a validated directive to the agent; a throwing handler is logged, never propagated. */
  private applyDirective(directive: Directive): void {
    this.deps.metrics.directives.inc({ result: 'applied' });
    try {
      this.deps.onDirective(directive);
    } catch (error) {
      this.deps.logger.error({ ...errorFields(error) }, 'applying a directive failed');
    }
  }

  /** Counts and logs a directive that failed validation; the transport carries on. */
  private ignoreInvalidDirective(error: unknown): void {
    this.deps.metrics.directives.inc({ result: 'invalid' });
    this.deps.logger.warn({ ...errorFields(error) }, 'ignoring an invalid directive from the coordinator');
  }
}
