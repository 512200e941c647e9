import CircuitBreaker from 'opossum';
import { errorFields, type Clock, type Event, type EventEmitter, type Logger } from '@shoal/core';
import type { Directive, LoadReport } from '@shoal/protocol';
import type { AgentSignals } from './agent-metrics.js';
import type { ResolvedCoordinatorOptions } from './agent-options.js';

export type BreakerState = 'closed' | 'halfOpen' | 'open';

/** What the agent needs from a report transport (gRPC stream or HTTP/JSON POSTs). */
export interface Reporter {
  /** gRPC: the stream is established; HTTP: the last POST was accepted. */
  readonly connected: boolean;
  readonly breakerState: BreakerState;
  /** Reports waiting to be sent. */
  readonly buffered: number;
  /** Reports handed to the coordinator / dropped (buffer full or refused as invalid) since start. */
  readonly sent: number;
  readonly dropped: number;
  readonly onConnectionChange: Event<boolean>;
  readonly onBreakerChange: Event<BreakerState>;
  start(): void;
  /** Queues a report (dropping the oldest when the buffer is full) and sends what it can. Never throws. */
  enqueue(report: LoadReport): void;
  /** Sends `finalReport` if it can within `graceMs`, then releases everything. Never rejects. */
  close(finalReport?: LoadReport, graceMs?: number): Promise<void>;
}

export interface ReporterDeps {
  clock: Clock;
  logger: Logger;
  metrics: AgentSignals;
  onDirective(directive: Directive): void;
}

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, halfOpen: 1, open: 2 };

/**
 * The opossum circuit breaker both transports put around their attempts (gRPC: connecting; HTTP: one POST). It
 * has no timeout of its own (each attempt bounds itself on the injected clock); its state goes to the
 * `shoal_agent_coordinator_breaker_state` gauge, the log and `emitter`.
 */
export function createReportBreaker<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  options: ResolvedCoordinatorOptions,
  deps: ReporterDeps,
  emitter: EventEmitter<BreakerState>,
): CircuitBreaker<A, R> {
  const breaker = new CircuitBreaker(action, {
    timeout: false,
    errorThresholdPercentage: options.breaker.errorThresholdPercentage,
    volumeThreshold: options.breaker.volumeThreshold,
    resetTimeout: options.breaker.resetTimeoutMs,
    rollingCountTimeout: options.breaker.rollingCountTimeoutMs,
    rollingCountBuckets: 10,
  });
  const onState = (state: BreakerState) => () => {
    deps.metrics.breakerState.set(BREAKER_GAUGE[state]);
    deps.logger[state === 'open' ? 'warn' : 'info']({ breaker: state }, `coordinator circuit breaker ${state}`);
    emitter.emit(state);
  };
  breaker.on('open', onState('open'));
  breaker.on('halfOpen', onState('halfOpen'));
  breaker.on('close', onState('closed'));
  deps.metrics.breakerState.set(0);
  deps.metrics.connected.set(0);
  return breaker;
}

export function breakerStateOf(breaker: CircuitBreaker<never, unknown>): BreakerState {
  return breaker.opened ? 'open' : breaker.halfOpen ? 'halfOpen' : 'closed';
}

/**
 * The bounded queue both transports keep while the coordinator is unreachable: when full, the oldest report is
 * dropped and counted; `pendingDropped` is what the coordinator has not been told yet (it travels in the next
 * report's `droppedReports`).
 */
export class ReportBuffer {
  private readonly items: LoadReport[] = [];
  /** Dropped reports the coordinator has not been told about. */
  pendingDropped = 0;
  /** Reports handed to the coordinator / dropped since start. */
  sent = 0;
  dropped = 0;

  constructor(
    private readonly capacity: number,
    private readonly metrics: AgentSignals,
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** The oldest report, or undefined when empty. */
  get head(): LoadReport | undefined {
    return this.items[0];
  }

  /** Appends a report, dropping (and counting) the oldest beyond the capacity. */
  push(report: LoadReport): void {
    this.items.push(report);
    while (this.items.length > this.capacity) this.dropHead();
  }

  /** Removes the oldest report, counted as dropped. */
  dropHead(): void {
    if (this.items.shift() === undefined) return;
    this.pendingDropped++;
    this.dropped++;
    this.metrics.reports.inc({ result: 'dropped' });
  }

  /** Removes the oldest report, counted as sent. */
  shiftSent(): LoadReport | undefined {
    const report = this.items.shift();
    if (report !== undefined) this.markSent();
    return report;
  }

  /** Counts one report as sent (for a transport that removes it itself). */
  markSent(): void {
    this.sent++;
    this.metrics.reports.inc({ result: 'sent' });
  }
}

/** Hands a validated directive to the agent; a throwing handler is logged, never propagated. */
export function applyDirective(deps: ReporterDeps, directive: Directive): void {
  deps.metrics.directives.inc({ result: 'applied' });
  try {
    deps.onDirective(directive);
  } catch (error) {
    deps.logger.error({ ...errorFields(error) }, 'applying a directive failed');
  }
}

/** Counts and logs a directive that failed validation; the transport carries on. */
export function ignoreInvalidDirective(deps: ReporterDeps, error: unknown): void {
  deps.metrics.directives.inc({ result: 'invalid' });
  deps.logger.warn({ ...errorFields(error) }, 'ignoring an invalid directive from the coordinator');
}
