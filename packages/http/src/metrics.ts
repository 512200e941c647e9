import { Counter } from 'prom-client';
import { memoizeMetrics } from '@shoal/core';
import type { MetricsRegistry } from '@shoal/core';

export interface HttpMetrics {
  requests: Counter<'service'>;
  responses: Counter<'service' | 'outcome'>;
  retries: Counter<'service' | 'result'>;
}

/** The dispatcher's metrics, created once per registry. */
export const createHttpMetrics = memoizeMetrics((registry: MetricsRegistry): HttpMetrics => ({
  requests: new Counter({
    name: 'shoal_http_attempts_total',
    help: 'Requests sent to a service instance by the Shoal dispatcher, retries included.',
    labelNames: ['service'],
    registers: [registry],
  }),
  responses: new Counter({
    name: 'shoal_http_responses_total',
    help: 'Attempts finished, by outcome: success, failure (a failure status) or error (no response).',
    labelNames: ['service', 'outcome'],
    registers: [registry],
  }),
  retries: new Counter({
    name: 'shoal_http_retries_total',
    help: 'Retry decisions: retried, or budget_exhausted when the retry budget refused one.',
    labelNames: ['service', 'result'],
    registers: [registry],
  }),
}));
