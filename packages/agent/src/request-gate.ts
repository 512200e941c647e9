import type { AgentSignals } from './agent-metrics.js';
import type { LoadTracker } from './load-tracker.js';

/**
 * What every instrumentation (HTTP wrapper, Express, Fastify, gRPC) shares: the tracker that counts, the metrics,
 * and whether new work is refused because the instance drains.
 */
export interface RequestGate {
  readonly tracker: LoadTracker;
  readonly metrics: AgentSignals;
  /** True once new requests must be refused. */
  refusing: boolean;
  /** Seconds for the `Retry-After` header of refused HTTP requests. */
  readonly retryAfterSeconds: number;
  /** The shared response-close listener of the HTTP instrumentations (created on first use). */
  onHttpClose?: (this: never) => void;
}

/** Ends a counted request: one call per request, from whichever instrumentation began it. */
export function finishRequest(gate: RequestGate, start: number, failed: boolean): void {
  gate.tracker.end(start, failed); // Prometheus reads the tracker's totals at scrape time
}
