import { Counter } from 'prom-client';
import { memoizeMetrics } from '@shoal/core';
import type { MetricsRegistry } from '@shoal/core';

/** Per-service tallies kept as plain numbers on the hot path and added to the counters when scraped. */
export class ServiceTally {
  attempts = 0;
  successes = 0;
  failures = 0;
  errors = 0;
  constructor(readonly service: string) {}
}

export interface HttpMetrics {
  /** Registers a tally; returns a function that flushes it one last time and unregisters it. */
  track(tally: ServiceTally): () => void;
  retries: Counter<'service' | 'result'>;
}

/** The dispatcher's metrics, created once per registry. */
export const createHttpMetrics = memoizeMetrics((registry: MetricsRegistry): HttpMetrics => {
  const tallies = new Set<ServiceTally>();
  const flushAttempts = (counter: Counter<'service'>) => {
    for (const t of tallies) {
      if (t.attempts > 0) counter.inc({ service: t.service }, t.attempts);
      t.attempts = 0;
    }
  };
  const flushResponses = (counter: Counter<'service' | 'outcome'>) => {
    for (const t of tallies) {
      if (t.successes > 0) counter.inc({ service: t.service, outcome: 'success' }, t.successes);
      if (t.failures > 0) counter.inc({ service: t.service, outcome: 'failure' }, t.failures);
      if (t.errors > 0) counter.inc({ service: t.service, outcome: 'error' }, t.errors);
      t.successes = t.failures = t.errors = 0;
    }
  };
  const attempts: Counter<'service'> = new Counter({
    name: 'shoal_http_attempts_total',
    help: 'Requests sent to a service instance by the Shoal dispatcher, retries included.',
    labelNames: ['service'],
    registers: [registry],
    collect() {
      flushAttempts(this);
    },
  });
  const responses: Counter<'service' | 'outcome'> = new Counter({
    name: 'shoal_http_responses_total',
    help: 'Attempts finished, by outcome: success, failure (a failure status) or error (no response).',
    labelNames: ['service', 'outcome'],
    registers: [registry],
    collect() {
      flushResponses(this);
    },
  });
  return {
    track(tally) {
      tallies.add(tally);
      return () => {
        flushAttempts(attempts);
        flushResponses(responses);
        tallies.delete(tally);
      };
    },
    retries: new Counter({
      name: 'shoal_http_retries_total',
      help: 'Retry decisions: retried, or budget_exhausted when the retry budget refused one.',
      labelNames: ['service', 'result'],
      registers: [registry],
    }),
  };
});
