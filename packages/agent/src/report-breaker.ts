import { EventEmitter as NodeEventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { Clock, EventEmitter, Logger, TimerHandle } from '@shoal/core';
import { ProtocolError } from '@shoal/core';
import type { AgentSignals } from './agent-metrics.js';
import type { ResolvedCoordinatorOptions } from './agent-options.js';

export type BreakerState = 'closed' | 'halfOpen' | 'open';

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, halfOpen: 1, open: 2 };

/** Longest timer Node accepts: opossum's own reset timer is set to this and never fires (the clock drives it). */
const NEVER_MS = 2_147_483_647;

/** The breaker is open: the attempt was refused locally, the coordinator saw nothing. */
export class BreakerOpenError extends ProtocolError {
  constructor() {
    super('the coordinator circuit breaker is open', { retryable: true });
    this.name = 'BreakerOpenError';
  }
}

/**
 * The opossum circuit breaker around the report loop's attempts, run entirely on the injected clock: opossum counts
 * failures over its rolling window (whose buckets rotate on the clock, through `rotateBucketController`) and
 * decides when to open; the reset timeout and the single half-open trial are timed here on the clock (opossum's
 * own reset timer is real time, so it is set beyond reach). The state goes to the
 * `shoal_agent_coordinator_breaker_state` gauge, the log and `emitter`.
 */
export class ReportBreaker {
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  private readonly rotate = new NodeEventEmitter();
  private rotateTimer: TimerHandle | undefined;
  private resetTimer: TimerHandle | undefined;
  private current: BreakerState = 'closed';
  /** When (monotonic ms) an open breaker lets its trial through. */
  private halfOpenAt = 0;
  private stopped = false;

  constructor(
    private readonly options: ResolvedCoordinatorOptions['breaker'],
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics: AgentSignals,
    private readonly emitter: EventEmitter<BreakerState>,
    /**
     * How long it stays open this time: `resetTimeoutMs` unless the loop asks for less (the agent's report loop
     * bounds it like its backoff, with jitter, so a breaker opened early in an outage finds a restarted coordinator
     * quickly and many agents' trials do not come at once).
     */
    private readonly resetDelayMs: () => number = () => options.resetTimeoutMs,
  ) {
    this.breaker = new CircuitBreaker((action: () => Promise<unknown>) => action(), {
      timeout: false,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      resetTimeout: NEVER_MS,
      rollingCountTimeout: options.rollingCountTimeoutMs,
      rollingCountBuckets: 10,
      rotateBucketController: this.rotate,
      enableSnapshots: false,
      rollingPercentilesEnabled: false,
    });
    this.breaker.on('open', () => this.opened());
    this.scheduleRotation();
    metrics.breakerState.set(0);
  }

  get state(): BreakerState {
    return this.current;
  }

  /**
   * Runs `action` unless the breaker is open (then rejects with BreakerOpenError without calling it). Half-open:
   * this is the one trial; its success closes the breaker, its failure opens it for another reset timeout.
   */
  async fire<R>(action: () => Promise<R>): Promise<R> {
    if (this.current === 'open') throw new BreakerOpenError();
    if (this.current === 'halfOpen') {
      let result: R;
      try {
        result = await action();
      } catch (error) {
        if (!this.stopped) this.opened();
        throw error;
      }
      if (!this.stopped) {
        this.breaker.close();
        this.setState('closed');
      }
      return result;
    }
    return (await this.breaker.fire(action)) as R;
  }

  /** Open: milliseconds until it lets its trial through; otherwise 0. */
  get remainingOpenMs(): number {
    return this.current === 'open' ? Math.max(0, this.halfOpenAt - this.clock.monotonic()) : 0;
  }

  /** Stops the clock timers and opossum. */
  shutdown(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.rotateTimer);
    this.clock.clearTimeout(this.resetTimer);
    this.breaker.shutdown();
  }

  private opened(): void {
    this.setState('open');
    this.clock.clearTimeout(this.resetTimer);
    const delay = Math.max(0, Math.min(this.options.resetTimeoutMs, this.resetDelayMs()));
    this.halfOpenAt = this.clock.monotonic() + delay;
    this.resetTimer = this.clock.setTimeout(() => {
      this.resetTimer = undefined;
      if (!this.stopped) this.setState('halfOpen');
    }, delay);
    this.resetTimer.unref();
  }

  private scheduleRotation(): void {
    const bucketMs = Math.max(1, Math.floor(this.options.rollingCountTimeoutMs / 10));
    this.rotateTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      this.rotate.emit('rotate');
      this.scheduleRotation();
    }, bucketMs);
    this.rotateTimer.unref();
  }

  private setState(state: BreakerState): void {
    if (this.current === state) return;
    this.current = state;
    this.metrics.breakerState.set(BREAKER_GAUGE[state]);
    this.logger[state === 'open' ? 'warn' : 'info']({ breaker: state }, `coordinator circuit breaker ${state}`);
    this.emitter.emit(state);
  }
}
