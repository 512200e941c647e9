/**
 * One request through the dispatcher (the handler side, as undici separates a `Dispatcher` from the handler of
 * each request): it picks instances, sends attempts, and decides which attempt's answer reaches the caller.
 *
 * - `BalancedRequest` holds the caller's handler and the request's decisions: retry after a failure, a per-try
 *   timeout, a hedge, which attempt commits. An answer commits when its response headers are handed to the
 *   caller; from then on nothing is retried and every other attempt is aborted.
 * - `Attempt` is the undici handler of one attempt on one instance: it completes that attempt's pick handle
 *   (outcome, latency, server load) and reports to its request.
 *
 * Only an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or `idempotent: true`) whose body can be
 * sent again (none, a string or bytes; never a stream) and that is not an upgrade is retried, timed out per try
 * or hedged. Every attempt after the first takes one retry from the service's retry budget.
 */
import type { Duplex } from 'node:stream';
import type { PickHandle } from '@shoal/balancer';
import { NoEndpointsError, ShoalError } from '@shoal/core';
import type { Dispatcher } from 'undici';
import type { BalancedService } from './balanced-service.js';
import { DeadlineEntry } from './deadline-queue.js';
import type { DeadlineQueue } from './deadline-queue.js';
import type { ResolvedDispatcherOptions } from './dispatcher-options.js';
import type { LegacyHandler } from './legacy-handler.js';
import { findRawHeader, parseLoadHeader } from './load-header.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function isReplayable(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** True when the request can be sent again as it is: a replayable body (none, a string, bytes), not an upgrade. */
export function isReplayableRequest(options: Dispatcher.DispatchOptions): boolean {
  return isReplayable(options.body) && options.upgrade == null;
}

/** True when the request may be sent more than once: idempotent and replayable. */
export function isRetryable(options: Dispatcher.DispatchOptions): boolean {
  const method = (options.method ?? 'GET').toUpperCase();
  return (options.idempotent ?? IDEMPOTENT.has(method)) && isReplayableRequest(options);
}

/** Connection errors that prove the request never left: any replayable request, POST too, may go elsewhere. */
const NOT_SENT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT']);

/** What every request of one dispatcher shares. */
export interface RequestContext {
  readonly opts: ResolvedDispatcherOptions;
  /** Per-try timeouts (undefined when off). */
  readonly perTry: DeadlineQueue | undefined;
  /** Hedge delays (undefined when off). */
  readonly hedge: DeadlineQueue | undefined;
}

/** The undici handler of one attempt. */
class Attempt extends DeadlineEntry implements LegacyHandler {
  readonly startedAt: number;
  /** The request gave up on this attempt (lost a hedge, timed out, request over): ignore what follows. */
  dead = false;
  /** The answer is read and discarded: the request is answered by another attempt. */
  swallowing = false;
  /** A retry was already paid for from the budget when this answer was set aside. */
  retryPaid = false;
  status = 0;
  load: ReturnType<typeof parseLoadHeader> = undefined;
  private abortFn: ((err?: Error) => void) | undefined;
  private handle: PickHandle | undefined;
  readonly instanceId: string;

  constructor(
    private readonly request: BalancedRequest,
    handle: PickHandle,
    startedAt: number,
  ) {
    super();
    this.handle = handle;
    this.instanceId = handle.instance.id;
    this.startedAt = startedAt;
  }

  /** Reports the attempt's outcome to the balancer (once). */
  complete(outcome: 'success' | 'failure', now: number): void {
    const handle = this.handle;
    if (!handle) return;
    this.handle = undefined;
    const latency = Math.max(0, now - this.startedAt);
    try {
      handle.complete(outcome, latency, this.load);
    } catch {
      handle.complete(outcome, latency);
    }
  }

  /** Gives the attempt up silently: aborts its exchange now, or as soon as undici hands over the abort function. */
  kill(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.queue?.remove(this);
    this.abortFn?.(err);
  }

  /** Aborts the attempt as the caller asked: its error goes through the normal path. */
  abort(err: Error): void {
    if (this.dead) return;
    if (this.abortFn) this.abortFn(err);
    else this.onError(err);
  }

  onDeadline(): void {
    this.request.onPerTryTimeout(this);
  }

  onConnect(abort: (err?: Error) => void, context?: unknown): void {
    this.abortFn = abort;
    if (this.dead) {
      abort(new Error('attempt abandoned'));
      return;
    }
    this.request.onAttemptConnect(context);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.dead) return false;
    this.status = statusCode;
    return this.request.onAttemptHeaders(this, statusCode, rawHeaders, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    if (this.dead) return false;
    if (this.swallowing) return true;
    return this.request.user.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    if (this.dead) return;
    this.dead = true;
    this.request.onAttemptComplete(this, trailers);
  }

  onError(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    this.queue?.remove(this);
    this.request.onAttemptError(this, err);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    if (this.dead) return;
    this.dead = true;
    this.request.onAttemptUpgrade(this, statusCode, rawHeaders, socket);
  }

  onResponseStarted(): void {
    if (!this.dead) this.request.onAttemptResponseStarted();
  }

  onBodySent(chunkSize: number, totalBytesSent: number): void {
    if (!this.dead) this.request.user.onBodySent?.(chunkSize, totalBytesSent);
  }
}

/** One request: picks, dispatches attempts, retries, times out per try, hedges. The hedge queue holds the request. */
export class BalancedRequest extends DeadlineEntry {
  private attempts = 0;
  /** Attempts started and not over. */
  private readonly live: Attempt[] = [];
  /** Instances this request tried (created with the second attempt). */
  private tried: Set<string> | undefined;
  private committed: Attempt | undefined;
  private userConnected = false;
  private responseStarted = false;
  private aborted: Error | undefined;
  /** Ends the wait for a wake (see `waitBeforeStart`). */
  private cancelWait: ((reason: Error) => void) | undefined;
  private finished = false;
  private readonly retryable: boolean;
  private readonly replayable: boolean;

  constructor(
    private readonly ctx: RequestContext,
    private readonly service: BalancedService,
    private readonly options: Dispatcher.DispatchOptions,
    readonly user: LegacyHandler,
  ) {
    super();
    this.replayable = ctx.opts.retry.maxAttempts > 1 && isReplayableRequest(options);
    this.retryable = this.replayable && isRetryable(options);
  }

  /** Sends the first attempt. */
  start(): void {
    if (this.send() && this.retryable && this.ctx.hedge) this.ctx.hedge.add(this, this.live[0]!.startedAt);
  }

  /** Fails the request before any attempt (e.g. the service never resolved); a caller's abort wins. */
  fail(error: Error): void {
    this.finish(this.aborted ?? error);
  }

  /**
   * The request waits before its first attempt (a wake from zero): the caller gets its abort function now, so an
   * abort ends the wait at once (`cancelWait`) instead of when the wait is over. Call `waitOver()` before `start()`.
   */
  waitBeforeStart(cancelWait: (reason: Error) => void): void {
    this.cancelWait = cancelWait;
    this.onAttemptConnect(undefined);
  }

  /** The wait is over (an instance passed, or it failed): an abort from now on goes to the attempts. */
  waitOver(): void {
    this.cancelWait = undefined;
  }

  /** Picks an instance (avoiding those tried) and dispatches an attempt; false when none started. */
  private send(hedge = false): boolean {
    if (this.aborted) {
      if (this.live.length === 0) this.finish(this.aborted);
      return false;
    }
    let handle: PickHandle;
    try {
      handle = this.pick(hedge);
    } catch (error) {
      if (hedge) return false; // a hedge that finds no other instance is simply not sent
      if (error instanceof ShoalError && error.code === 'SHOAL_ERR_NO_ENDPOINTS') {
        const service = JSON.stringify(this.service.route.service);
        this.finish(new NoEndpointsError(`no healthy instance of service ${service} to send to`, { cause: error }));
      } else this.finish(error as Error);
      return false;
    }
    if (this.tried !== undefined) this.tried.add(handle.instance.id);
    this.attempts++;
    const now = this.ctx.opts.clock.monotonic();
    const attempt = new Attempt(this, handle, now);
    this.live.push(attempt);
    this.service.tally.attempts++;
    if (this.retryable && this.ctx.perTry) this.ctx.perTry.add(attempt, now);
    // Pools take the origin from their own URL; `options.origin` (the service name) is ignored by them.
    this.service.poolFor(handle.instance).dispatch(this.options, attempt);
    return true;
  }

  /**
   * Picks an instance this request has not tried. A retry (not a hedge) whose every pickable instance was tried —
   * the others are ejected or unavailable, so `balancer.size` still counts them — may go to a tried one again, as
   * when every instance was tried.
   */
  private pick(hedge: boolean): PickHandle {
    const balancer = this.service.balancer;
    if (this.tried === undefined || this.tried.size === 0) return balancer.pick();
    try {
      return balancer.pick({ exclude: this.tried });
    } catch (error) {
      if (hedge || !(error instanceof ShoalError && error.code === 'SHOAL_ERR_NO_ENDPOINTS')) throw error;
      this.tried.clear();
      return balancer.pick();
    }
  }

  /**
   * Whether another attempt may start: retryable (or replayable when the last attempt was never sent), nothing
   * delivered, not aborted, attempts left.
   */
  private mayStartAnother(notSent = false): boolean {
    return (
      (this.retryable || (notSent && this.replayable)) &&
      this.committed === undefined &&
      !this.finished &&
      !this.aborted &&
      this.attempts < this.ctx.opts.retry.maxAttempts
    );
  }

  /** Takes one retry from the service's retry budget (counted in the metrics when refused). */
  private takeBudget(): boolean {
    if (this.service.balancer.tryRetry()) return true;
    this.service.metrics.retries.inc({ service: this.service.route.service, result: 'budget_exhausted' });
    return false;
  }

  /** Marks every instance this request has used, so the next pick avoids them. */
  private rememberTried(): Set<string> {
    this.tried ??= new Set();
    for (const a of this.live) this.tried.add(a.instanceId);
    return this.tried;
  }

  /** Takes `attempt` off the live list; `avoid` = later picks of this request avoid its instance. */
  private forget(attempt: Attempt, avoid: boolean): void {
    const i = this.live.indexOf(attempt);
    if (i >= 0) this.live.splice(i, 1);
    if (avoid) this.rememberTried().add(attempt.instanceId);
  }

  /** Sends the next attempt after a failure (the budget already paid); every instance tried allows them again. */
  private retryNow(reason: string): void {
    const { metrics, route } = this.service;
    metrics.retries.inc({ service: route.service, result: 'retried' });
    this.service.logger.debug(
      { service: route.service, reason, attempt: this.attempts },
      'retrying on another instance',
    );
    if (this.tried && this.tried.size >= this.service.balancer.size) this.tried.clear();
    this.send();
  }

  /** After an attempt failed or was set aside: wait for another live attempt, retry, or fail with `error`. */
  private retryOrFail(reason: string, error: Error, paid: boolean, notSent = false): void {
    if (this.finished || this.live.length > 0) return; // a live attempt (a hedge) answers instead
    if (this.mayStartAnother(notSent) && (paid || this.takeBudget())) {
      queueMicrotask(() => {
        if (!this.finished && this.live.length === 0) this.retryNow(reason);
      });
      return;
    }
    this.finish(error);
  }

  private finish(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.ctx.hedge?.remove(this);
    const now = this.ctx.opts.clock.monotonic();
    for (const a of this.live.splice(0)) {
      a.complete('failure', now);
      a.kill(error);
    }
    this.user.onError(error);
  }

  /** Commits `attempt`: its answer goes to the caller; every other attempt is aborted. */
  private commit(attempt: Attempt): void {
    this.committed = attempt;
    attempt.queue?.remove(attempt);
    this.ctx.hedge?.remove(this);
    if (this.live.length === 1) return;
    const { clock, failureStatusCodes } = this.ctx.opts;
    const now = clock.monotonic();
    for (const other of this.live) {
      if (other === attempt) continue;
      // A slower duplicate, not a failure of its instance: its latency so far is what the balancer learns.
      other.complete(failureStatusCodes.has(other.status) ? 'failure' : 'success', now);
      other.kill(new Error('another attempt answered first'));
    }
    this.live.length = 0;
    this.live.push(attempt);
  }

  // ---- per-try timeout and hedging ---------------------------------------------------------------------------

  /** `attempt` had no answer within the per-try timeout: abandon it for another instance when that is allowed. */
  onPerTryTimeout(attempt: Attempt): void {
    if (attempt.dead || this.committed !== undefined || this.finished) return;
    const retry = this.mayStartAnother() && this.takeBudget();
    if (!retry && this.live.length < 2) return; // the last allowed attempt keeps waiting
    attempt.complete('failure', this.ctx.opts.clock.monotonic());
    this.service.tally.errors++;
    attempt.kill(new Error('per-try timeout'));
    this.forget(attempt, true);
    if (retry) this.retryNow('per-try timeout');
  }

  /** The hedge delay passed without an answer: send another attempt to an instance not tried yet. */
  onDeadline(): void {
    if (!this.mayStartAnother() || this.live.length === 0) return;
    if (this.rememberTried().size >= this.service.balancer.size) return; // no other instance to hedge to
    if (!this.takeBudget()) return;
    if (!this.send(true)) return;
    this.service.metrics.retries.inc({ service: this.service.route.service, result: 'hedged' });
    if (this.mayStartAnother()) this.ctx.hedge!.add(this, this.live[this.live.length - 1]!.startedAt);
  }

  // ---- events from attempts ----------------------------------------------------------------------------------

  onAttemptConnect(context: unknown): void {
    if (this.userConnected) return;
    this.userConnected = true;
    const onConnect = this.user.onConnect as ((abort: (err?: Error) => void, context?: unknown) => void) | undefined;
    onConnect?.call(
      this.user,
      (err?: Error) => {
        if (this.aborted || this.finished) return;
        this.aborted = err ?? new Error('aborted');
        this.ctx.hedge?.remove(this);
        for (const a of [...this.live]) a.abort(this.aborted);
        const cancelWait = this.cancelWait;
        this.cancelWait = undefined;
        cancelWait?.(this.aborted);
      },
      context,
    );
  }

  onAttemptResponseStarted(): void {
    if (this.responseStarted) return;
    this.responseStarted = true;
    this.user.onResponseStarted?.();
  }

  onAttemptHeaders(
    attempt: Attempt,
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    const { opts } = this.ctx;
    if (opts.loadHeader !== undefined) attempt.load = parseLoadHeader(findRawHeader(rawHeaders, opts.loadHeader));
    if (opts.retry.statusCodes.has(statusCode) && this.committed === undefined && this.mayStartAnotherOrWait()) {
      // Read and discard this answer: another attempt (running, or a retry paid for now) answers instead.
      attempt.swallowing = true;
      attempt.queue?.remove(attempt);
      if (this.live.length < 2) attempt.retryPaid = true;
      return true;
    }
    this.commit(attempt);
    return this.user.onHeaders?.(statusCode, rawHeaders, resume, statusText) ?? true;
  }

  /** Whether an answer with a retryable status may be set aside: another attempt is live, or a retry is paid. */
  private mayStartAnotherOrWait(): boolean {
    if (!this.retryable || this.aborted) return false;
    if (this.live.length > 1) return true;
    return this.mayStartAnother() && this.takeBudget();
  }

  onAttemptComplete(attempt: Attempt, trailers: string[] | null): void {
    const { opts } = this.ctx;
    const failed = opts.failureStatusCodes.has(attempt.status);
    attempt.complete(failed ? 'failure' : 'success', opts.clock.monotonic());
    if (failed) this.service.tally.failures++;
    else this.service.tally.successes++;
    this.forget(attempt, attempt.swallowing);
    if (attempt.swallowing) {
      return this.retryOrFail(`status ${attempt.status}`, new Error(`status ${attempt.status}`), attempt.retryPaid);
    }
    this.finished = true;
    this.user.onComplete?.(trailers);
  }

  onAttemptError(attempt: Attempt, err: Error): void {
    attempt.complete('failure', this.ctx.opts.clock.monotonic());
    this.service.tally.errors++;
    this.forget(attempt, true);
    if (this.committed === attempt) return this.finish(err);
    const code = (err as { code?: unknown }).code;
    this.retryOrFail(err.message, err, attempt.retryPaid, typeof code === 'string' && NOT_SENT.has(code));
  }

  onAttemptUpgrade(attempt: Attempt, statusCode: number, rawHeaders: Buffer[] | string[] | null, socket: Duplex): void {
    this.commit(attempt);
    attempt.complete('success', this.ctx.opts.clock.monotonic());
    this.forget(attempt, false);
    this.finished = true;
    this.user.onUpgrade?.(statusCode, rawHeaders, socket);
  }
}
