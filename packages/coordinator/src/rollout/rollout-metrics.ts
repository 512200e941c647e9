import { Counter, Gauge } from 'prom-client';
import { memoizeMetrics, type MetricsRegistry } from '@shoal/core';

export const ROLLOUT_STATES = ['none', 'rolling-out', 'rolling-back', 'completed', 'rolled-back'] as const;

/** Rollout metrics (labels take only values from the config and fixed sets, never from agents). */
export const createRolloutMetrics = memoizeMetrics((registry: MetricsRegistry) => ({
  state: new Gauge({
    name: 'shoal_coordinator_rollout_state',
    help: "1 for the service's current rollout state (none, rolling-out, rolling-back, completed, rolled-back), 0 for the others.",
    labelNames: ['service', 'state'] as const,
    registers: [registry],
  }),
  paused: new Gauge({
    name: 'shoal_coordinator_rollout_paused',
    help: '1 while the service has a paused rollout.',
    labelNames: ['service'] as const,
    registers: [registry],
  }),
  replicas: new Gauge({
    name: 'shoal_coordinator_rollout_replicas',
    help: 'Replicas during a rollout, by side (old: the version being replaced, new: the target) and readiness.',
    labelNames: ['service', 'side', 'ready'] as const,
    registers: [registry],
  }),
  rollouts: new Counter({
    name: 'shoal_coordinator_rollouts_total',
    help: 'Rollouts finished, by outcome (completed, rolled_back).',
    labelNames: ['service', 'outcome'] as const,
    registers: [registry],
  }),
  rollbacks: new Counter({
    name: 'shoal_coordinator_rollout_rollbacks_total',
    help: 'Rollbacks started, by cause (errors, latency, crash_loop, not_ready, manual).',
    labelNames: ['service', 'cause'] as const,
    registers: [registry],
  }),
}));

export type RolloutMetrics = ReturnType<typeof createRolloutMetrics>;
