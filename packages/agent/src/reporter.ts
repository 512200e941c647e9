import CircuitBreaker from 'opossum';
import type { Clock, Event, EventEmitter, Logger } from '@shoal/core';
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
